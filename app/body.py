"""Reading a JSON request body the way Ollama does: whatever the Content-Type says.

`curl -d '{...}'` sends application/x-www-form-urlencoded and works against real Ollama, so the
body is parsed as JSON unconditionally.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import BadRequest


def _reject_constant(name: str) -> NoReturn:
    # Python's parser accepts NaN and Infinity, which are not JSON and no backend takes.
    raise ValueError(f"{name} is not valid JSON")


def raw_body() -> bytes:
    """The request body, refused with 413 above MAX_BODY_BYTES however it was sent.

    Werkzeug refuses a too-large Content-Length itself, but a chunked body is just cut at the
    limit: reaching the limit without a Content-Length means there was more.
    """
    data = request.get_data(cache=False)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def json_body() -> dict[str, Any]:
    raw = raw_body()
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"invalid JSON in request body: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise BadRequest(f"invalid JSON in request body: {exc}") from None
    except RecursionError:
        raise BadRequest("invalid JSON in request body: nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body
