"""Ollama's REST API <-> OpenAI chat completions, legacy completions and embeddings."""
