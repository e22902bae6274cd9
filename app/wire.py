"""Framing on the wire, bytes in and bytes out: the backend's server-sent events (SSE) read,
and the NDJSON lines Ollama clients read.

Everything works on bytes. Decoding to str before splitting lines is a bug: `str.splitlines()`
also splits on U+2028, U+0085 and friends, which JSON strings may carry raw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

# One SSE line larger than this is not a token stream any more; refuse to buffer it without end.
MAX_LINE_BYTES = 16 * 1024 * 1024
DONE = b"[DONE]"


class SSEProtocolError(ValueError):
    """The backend's event stream is malformed beyond what the SSE rules tolerate."""


def iter_sse_batches(chunks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """The `data` payloads of the server-sent events each network read completes, stopping at
    `[DONE]`. Batches let the caller write everything one read brought in a single write. The
    batch that holds `[DONE]` ends with it (the `DONE` object itself): the caller knows the
    stream is over without waiting on another read.

    Comments (`: ping`), `event:`/`id:`/`retry:` fields and blank keep-alive lines are skipped;
    `\r\n` line ends are accepted; multi-line data is joined with `\n` as the SSE spec says.
    """
    # The start of a line that reads have not finished, kept as its pieces and joined once when
    # its end arrives: joining at every read copied the line so far each time, quadratic in
    # its length (a 16 MiB line cost 1.6 s of the event loop).
    pending: list[bytes] = []
    pending_size = 0
    data: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size > MAX_LINE_BYTES:
                raise SSEProtocolError("backend sent an event line over 16 MiB")
            continue
        if pending:
            chunk = b"".join([*pending, chunk])  # noqa: PLW2901  a line split across reads
        lines = chunk.split(b"\n")
        rest = lines.pop()
        pending, pending_size = ([rest], len(rest)) if rest else ([], 0)
        if pending_size > MAX_LINE_BYTES:
            raise SSEProtocolError("backend sent an event line over 16 MiB")
        batch: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]  # noqa: PLW2901
            if line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif not line and data:
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if payload == DONE:
                    batch.append(DONE)
                    yield batch
                    return
                batch.append(payload)
        if batch:
            yield batch
    last = b"".join(pending)
    if last.startswith(b"data:"):
        data.append(last[6:] if last.startswith(b"data: ") else last[5:])
    if data:
        payload = b"\n".join(data)
        if payload != DONE:
            yield [payload]


# json.dumps with any non-default argument builds a new encoder per call; this is built once.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def sse_event(name: str, obj: Any) -> bytes:
    """One named server-sent event: `event:` and `data:` lines, then the blank line. The
    Anthropic SDKs drop events without the `event:` line; OpenAI's read it too."""
    return b"event: " + name.encode() + b"\ndata: " + _encode(obj).encode() + b"\n\n"


def ndjson(obj: Any) -> bytes:
    """One compact JSON line. ASCII escaping is deliberate: the Python SDK splits lines with
    `str.splitlines()`, so a raw U+2028 in model text would cut a line in two."""
    return _encode(obj).encode() + b"\n"
