"""Request pieces several suites share."""

# The tool of the weather round trip, in the OpenAI shape Ollama also uses.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get weather",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string", "description": "City"}},
        },
    },
}
