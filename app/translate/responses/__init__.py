"""OpenAI's Responses API (stateless) <-> OpenAI chat completions."""
