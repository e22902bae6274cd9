"""Bytes on the wire: the SSE reader for backend streams and the NDJSON encoder for clients.

Both work on bytes. Decoding to str before splitting lines is a bug: `str.splitlines()` also
splits on U+2028, U+0085 and friends, which JSON strings may carry raw (stack.md §2).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

import requests

READ_SIZE = 64 * 1024
# One SSE line larger than this is not a token stream any more; refuse to buffer it without end.
MAX_LINE_BYTES = 16 * 1024 * 1024
DONE = b"[DONE]"


class SSEProtocolError(ValueError):
    """The backend's event stream is malformed beyond what the SSE rules tolerate."""


def iter_raw(response: requests.Response, *, decode: bool = True) -> Iterator[bytes]:
    """The response body as it arrives, one network read at a time.

    `read1` returns whatever bytes are available instead of waiting to fill a buffer, so events
    are relayed as soon as they arrive on chunked *and* close-delimited bodies. `decode=False`
    keeps any Content-Encoding, for relaying bytes untouched.
    """
    read1 = response.raw.read1
    while data := read1(READ_SIZE, decode_content=decode):
        yield data


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yields the `data` payload of each server-sent event, stopping at `[DONE]`.

    Comments (`: ping`), `event:`/`id:`/`retry:` fields and blank keep-alive lines are skipped;
    `\\r\\n` line ends are accepted; multi-line data is joined with `\\n` as the SSE spec says.
    """
    pending = b""
    data: list[bytes] = []
    for chunk in chunks:
        if pending:
            chunk = pending + chunk  # noqa: PLW2901  a line split across two reads
        lines = chunk.split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_LINE_BYTES:
            raise SSEProtocolError("backend sent an event line over 16 MiB")
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]  # noqa: PLW2901
            if line.startswith(b"data:"):
                value = line[6:] if line.startswith(b"data: ") else line[5:]
                data.append(value)
            elif not line and data:
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if payload == DONE:
                    return
                yield payload
    if pending.startswith(b"data:"):
        data.append(pending[6:] if pending.startswith(b"data: ") else pending[5:])
    if data:
        payload = b"\n".join(data)
        if payload != DONE:
            yield payload


def ndjson(obj: Any) -> bytes:
    """One compact JSON line. ASCII escaping is deliberate: the Python SDK splits lines with
    `str.splitlines()`, so a raw U+2028 in model text would cut a line in two."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


_stamp_second = -1
_stamp_prefix = ""


def now_rfc3339() -> str:
    """UTC wall-clock time as Go's RFC3339Nano prints it (microseconds, `Z`).

    Called once per streamed chunk, so the date part is formatted once per second only.
    """
    global _stamp_second, _stamp_prefix  # noqa: PLW0603  a per-process formatting cache
    now = time.time()
    second = int(now)
    if second != _stamp_second:
        _stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _stamp_second = second
    return f"{_stamp_prefix}.{int((now - second) * 1_000_000):06d}Z"
