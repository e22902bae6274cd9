"""Anthropic's Messages API, `/v1/messages` and `/v1/messages/count_tokens`, translated to the
backend's chat completions (or passed through to a backend that serves it natively)."""

from flask import Blueprint

bp = Blueprint("anthropic", __name__)

from . import routes  # noqa: E402

__all__ = ["bp", "routes"]
