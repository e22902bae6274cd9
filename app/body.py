"""Reading a JSON request body the way Ollama does (whatever the Content-Type says), with the
work it may cost bounded.

`curl -d '{...}'` sends application/x-www-form-urlencoded and works against real Ollama, so the
body is parsed as JSON unconditionally. Every client input passes here first, so this is where
its cost is capped: the time to send it, the number of JSON objects and arrays it may make
(a 64 MB `[{},{},...]` would otherwise become 20 million dicts), and the thread it is parsed on.
"""

from __future__ import annotations

import codecs
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
from .request_json import dumps_in_pieces

# What one body may hold, counted before parsing (as bytes: `{`, `[` and `,`, upper bounds),
# only in bodies large enough to reach a bound. The parser builds each array in one call that
# holds the GIL throughout, so these also bound how long the event loop waits for it:
# JSON objects and arrays (a 64 MB `[{},{},...]` would otherwise become 20 million dicts);
MAX_CONTAINERS = 1_000_000
# arrays (a million empty ones take 0.3 s, the collector running as they are made);
MAX_ARRAYS = 250_000
# values of arrays and objects (one more than the commas at most): room for the largest
# `context` (limits.MAX_CONTEXT), not for the 30 million numbers that take 1.6 s (4 million
# empty strings took 0.1 s).
MAX_VALUES = 2_200_000
# Large bodies are counted and decoded this much at a time, so that no one call holds the
# GIL (and the event loop) for long.
_SLICE = 1024 * 1024
# A `\u` escape of a UTF-16 surrogate: where a lone surrogate, which is not text, can hide.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


_READ_PIECE = 64 * 1024  # what werkzeug's get_data reads at a time
_YIELD_EVERY = 1024 * 1024


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
            data = _read_yielding()
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


def _read_yielding() -> bytes:
    """The whole body, with a turn for other greenlets after every YIELD_EVERY bytes: gunicorn
    reads 8 KiB per recv, and a body already in the socket buffer never blocks, so 60 MB read
    in one go would hold the event loop for a third of a second."""
    length = request.content_length
    if length is not None and length <= _YIELD_EVERY:
        return request.get_data(cache=False)
    stream = request.stream  # bounded by MAX_CONTENT_LENGTH, as get_data would be
    pieces, unyielded = [], 0
    while piece := stream.read(_READ_PIECE):
        pieces.append(piece)
        unyielded += len(piece)
        if unyielded >= _YIELD_EVERY:
            gevent.sleep(0)
            unyielded = 0
    return b"".join(pieces)


def json_body() -> dict[str, Any]:
    raw = raw_body()
    g.body_bytes = len(raw)  # what later steps of this request size their work by
    return offload.for_request(parse_json, raw)


def parse_json(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object; BadRequest (or 413) saying what is wrong with it."""
    if not raw.strip():
        raise BadRequest("missing request body")
    _check_complexity(raw)
    try:
        text = _decode(raw)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = _loads(text, large=len(raw) >= offload.OFFLOAD_BYTES)
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


def _check_complexity(raw: bytes) -> None:
    if len(raw) <= MAX_ARRAYS:
        return
    arrays = _count(raw, b"[")
    if arrays > MAX_ARRAYS:
        _too_complex(f"{MAX_ARRAYS} JSON arrays", "[")
    if len(raw) > MAX_CONTAINERS and arrays + _count(raw, b"{") > MAX_CONTAINERS:
        _too_complex(f"{MAX_CONTAINERS} JSON objects and arrays", "[ and {")
    if len(raw) > MAX_VALUES and _count(raw, b",") >= MAX_VALUES:
        _too_complex(f"{MAX_VALUES} JSON values", ",")


def _too_complex(what: str, counted: str) -> NoReturn:
    # The count is of bytes, strings included: a prompt of megabytes of CSV or JSON text can
    # reach it too, and should know why (it is also far beyond any model's context).
    raise ProxyError(
        f"request body too complex: more than {what} (counted as {counted} characters, "
        "including those inside strings)",
        413,
    )


def _count(raw: bytes, byte: bytes) -> int:
    return sum(raw.count(byte, start, start + _SLICE) for start in range(0, len(raw), _SLICE))


def _decode(raw: bytes) -> str:
    if len(raw) <= _SLICE:
        return raw.decode("utf-8")
    decoder, pieces = codecs.getincrementaldecoder("utf-8")(), []
    try:
        for start in range(0, len(raw), _SLICE):
            last = start + _SLICE >= len(raw)
            pieces.append(decoder.decode(raw[start : start + _SLICE], final=last))
    except UnicodeDecodeError:
        raw.decode("utf-8")  # the same error, with its offset in the whole body
        raise
    return "".join(pieces)


def _loads(text: str, *, large: bool) -> Any:
    if not large:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    # A large body is parsed in a thread, but the C parser holds the GIL for the whole call:
    # a Python callback for every object and integer is where the event loop gets it back.
    return json.loads(
        text,
        parse_constant=_reject_constant,
        parse_float=_finite,
        parse_int=_integer,
        object_hook=_object,
    )


def _integer(text: str) -> int:
    return int(text)


def _object(value: dict[str, Any]) -> dict[str, Any]:
    return value


def _check_text(body: dict[str, Any]) -> None:
    """Every string must be encodable as UTF-8: a lone surrogate (`"\\ud800"`) is valid JSON
    syntax but not text, and no backend request can carry it. Encoded in pieces: clients that
    escape every emoji bring this here, large bodies too."""
    try:
        dumps_in_pieces(body)
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise BadRequest(
            f"invalid JSON in request body: {bad} is a lone UTF-16 surrogate, not text"
        ) from None
