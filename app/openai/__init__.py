"""`/v1/*`: OpenAI requests passed through to the backend unchanged."""

from flask import Blueprint

bp = Blueprint("openai", __name__, url_prefix="/v1")

from . import passthrough  # noqa: E402

__all__ = ["bp", "passthrough"]
