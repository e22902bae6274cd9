"""The Ollama REST API: `/` and `/api/*`, translated to the OpenAI-compatible backend."""

from flask import Blueprint

bp = Blueprint("ollama", __name__)

from . import routes_embed, routes_generation, routes_meta, routes_registry  # noqa: E402

__all__ = ["bp", "routes_embed", "routes_generation", "routes_meta", "routes_registry"]
