"""Time as Ollama reports it: RFC 3339 timestamps and integer nanosecond durations."""

from __future__ import annotations

import time

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
