"""How much one request may ask for: list lengths no real client reaches, so that the work a
request can cause is bounded before anything iterates it (a gevent worker that spends seconds
on one request stalls every other connection it serves).

Each must also fit a model's context window, which is where the real limit lies; these only
stop what no model could take.
"""

MAX_MESSAGES = 50_000
MAX_TOOLS = 1_000  # OpenAI takes 128
MAX_TOOL_CALLS = 1_000  # in one assistant message
MAX_IMAGES = 1_000  # in one message, or one generate
# Token ids (Ollama's `context`), or this proxy's packed conversation (3 bytes an integer):
# 6 MB of compressed conversation, more than any model's window.
MAX_CONTEXT = 2_097_152
MAX_OPTIONS = 1_000  # keys of `options`; Ollama knows about 40
MAX_EMBED_INPUTS = 16_384
# Inputs per backend embeddings request: OpenAI refuses more than 2,048.
EMBED_BATCH = 2_048
# Anthropic Messages and OpenAI Responses.
MAX_BLOCKS = 10_000  # content blocks in one message, parts in one item
MAX_INPUT_ITEMS = 50_000  # Responses `input` items, like messages
MAX_STOP_SEQUENCES = 32
