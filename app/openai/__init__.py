"""`/v1/*`: OpenAI requests passed through to the backend unchanged, except the single-model
lookup (`/v1/models/{model}`), which resolves the proxy's own names."""

from flask import Blueprint

bp = Blueprint("openai", __name__, url_prefix="/v1")

from . import models, passthrough  # noqa: E402

__all__ = ["bp", "models", "passthrough"]
