"""Anthropic's Messages API <-> OpenAI chat completions."""
