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

# A 1x1 PNG, raw base64 as Ollama clients send images.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)

# The same tool as Anthropic (`input_schema`) and OpenAI Responses (flat) declare it.
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get weather",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}
RESPONSES_WEATHER_TOOL = {"type": "function", **WEATHER_TOOL["function"]}
# A structured-output schema the fake backend's JSON answer ({"echo": ...}) satisfies.
ECHO_SCHEMA = {
    "type": "object",
    "properties": {"echo": {"type": "string"}},
    "required": ["echo"],
    "additionalProperties": False,
}
