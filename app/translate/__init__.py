"""Pure translation between the client APIs and the backend's OpenAI API.

Nothing in this package imports Flask or does I/O (a test walks the imports to keep it so):
dicts and typed requests in, dicts and bytes out. Routes do the I/O around it.
"""
