"""Request bodies for the backend as compact UTF-8 JSON, encoded so that a large one does not
hold the worker's event loop."""

from __future__ import annotations

import json
from typing import Any

from . import offload

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON for request bodies (smaller than requests' ASCII-escaped default)."""
    return _encode(payload).encode()


def request_body(payload: dict[str, Any]) -> bytes:
    """`dumps` of a request body for the backend: inline when the client's request was small;
    when it was large, in a thread and in pieces. The C encoder holds the GIL for a whole call
    (0.3 s for 60 MB of messages), which would stall the event loop the thread was meant to
    spare; each item of a top-level list is a call of its own, and the GIL can pass between."""
    if not offload.request_is_large():
        return dumps(payload)
    return offload.for_request(dumps_in_pieces, payload)


def dumps_in_pieces(payload: dict[str, Any]) -> bytes:
    """`dumps`, one call per field and per item of a top-level list, so the GIL can pass
    between them (a lone surrogate raises UnicodeEncodeError as `dumps` does)."""
    parts: list[bytes] = []  # joined once at the end: no copy of the whole body before then
    for key, value in payload.items():
        parts += (b",", _encode(key).encode(), b":")
        if isinstance(value, list):
            parts.append(b"[")
            for item in value:
                parts += (_encode(item).encode(), b",")
            if value:
                parts.pop()  # the comma after the last item
            parts.append(b"]")
        else:
            parts.append(_encode(value).encode())
    parts[:1] = [b"{"]  # in place of the first field's comma
    parts.append(b"}")
    return b"".join(parts)
