"""Reading a JSON request body the way Ollama does (whatever the Content-Type says), with the
work it may cost bounded.

`curl -d '{...}'` sends application/x-www-form-urlencoded and works against real Ollama, so the
body is parsed as JSON unconditionally. Every client input passes here first, so this is where
its cost is capped: the time to send it, the number of JSON objects and arrays it may make
(a 64 MB `[{},{},...]` would otherwise become 20 million dicts), and the thread it is parsed on.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

import gevent
from flask import current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import offload
from .errors import BadRequest, ProxyError
from .guards import close_after_answer

# JSON objects and arrays one body may hold; counted (as `{` and `[` bytes, an upper bound)
# before parsing, only for bodies large enough to reach it.
MAX_CONTAINERS = 1_000_000
# A `\u` escape of a UTF-16 surrogate: where a lone surrogate, which is not text, can hide.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _BodyTimeout(Exception):
    pass


def _reject_constant(name: str) -> NoReturn:
    # Python's parser accepts NaN and Infinity, which are not JSON and no backend takes.
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    # 1e999 is valid JSON syntax, but Python reads it as infinity, which would go on to the
    # backend as `Infinity`, which is not JSON. Go's decoder, and so Ollama, refuses it too.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def raw_body() -> bytes:
    """The request body, refused with 413 above MAX_BODY_BYTES however it was sent, with 408
    when it does not arrive in time and 400 when its framing is broken."""
    # A client that has not sent its whole body by BODY_TIMEOUT is cut off (behind nginx, which
    # buffers request bodies, the proxy never waits).
    seconds = current_app.config["BODY_TIMEOUT"]
    try:
        with gevent.Timeout(seconds, _BodyTimeout):
            data = request.get_data(cache=False)
    except HTTPException:
        close_after_answer(request.environ)  # a refused body is left unread
        raise
    except _BodyTimeout:
        close_after_answer(request.environ)
        raise ProxyError(f"the request body did not arrive within {seconds:g}s", 408) from None
    except Exception as exc:  # gunicorn's InvalidChunkSize and kin: the client's framing
        close_after_answer(request.environ)
        raise BadRequest(f"the request body could not be read: {exc}") from None
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    # Werkzeug refuses a too-large Content-Length itself, but a chunked body is just cut at the
    # limit: reaching the limit without a Content-Length means there was more.
    if request.content_length is None and limit is not None and len(data) >= limit:
        close_after_answer(request.environ)
        raise RequestEntityTooLarge()
    return data


def json_body() -> dict[str, Any]:
    raw = raw_body()
    g.body_bytes = len(raw)  # what later steps of this request size their work by
    return offload.for_request(parse_json, raw)


def parse_json(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object; BadRequest (or 413) saying what is wrong with it."""
    if not raw.strip():
        raise BadRequest("missing request body")
    if len(raw) > MAX_CONTAINERS and raw.count(b"{") + raw.count(b"[") > MAX_CONTAINERS:
        raise ProxyError(
            f"request body too complex: more than {MAX_CONTAINERS} JSON objects and arrays", 413
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
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
    if _SURROGATE_ESCAPE.search(raw):
        _check_text(body)
    return body


def routing_document(raw: bytes) -> dict[str, Any] | None:
    """A `/v1` pass-through body read for its `model` (to route it among several backends): the
    JSON object, parsed with every bound and check of parse_json, or None when it is not one
    (a file upload, invalid JSON...: the first backend gets it as it is). A body too complex
    to parse is refused (413), as on every other API."""
    try:
        return parse_json(raw)
    except BadRequest:
        return None


def _check_text(body: dict[str, Any]) -> None:
    """Every string must be encodable as UTF-8: a lone surrogate (`"\\ud800"`) is valid JSON
    syntax but not text, and no backend request can carry it."""
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise BadRequest(
            f"invalid JSON in request body: {bad} is a lone UTF-16 surrogate, not text"
        ) from None
