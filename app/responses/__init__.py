"""OpenAI's Responses API, `/v1/responses`, stateless as in Ollama, translated to the backend's
chat completions (or passed through to a backend that serves it natively)."""

from flask import Blueprint

bp = Blueprint("responses", __name__)

from . import routes  # noqa: E402

__all__ = ["bp", "routes"]
