"""The backend path for a `/v1/*` pass-through request, confined under the backend's API prefix.

The proxy sends its own backend key with every call, so the path a client chooses must not
reach anything but the OpenAI API: `/v1/../admin`, `/v1/%2e%2e/admin` or `/v1/..%2fadmin`
would otherwise be resolved by the HTTP stack or the backend into `/admin`. The raw request
target is read (not the decoded PATH_INFO), every segment is decoded once and checked, and the
path is re-encoded canonically, so what the backend receives is exactly what was checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..errors import BadRequest

PREFIX = "/v1/"
# Characters a segment may carry unencoded (RFC 3986 pchar minus "/"): the rest is escaped.
_SAFE = "-._~!$&'()*+,;=:@"


def backend_path(environ: Mapping[str, Any]) -> str:
    """The path after `/v1` plus the query string, as the backend should see it; raises
    BadRequest for anything that would leave the API prefix."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    target, _, query = str(raw).partition("?")
    if "://" in target:  # an absolute-form request target: the path part only
        target = urlsplit(target).path
    if not target.startswith(PREFIX):
        raise BadRequest(f"invalid path {target[:200]!r}: it must start with {PREFIX}")
    segments = [_segment(raw_segment) for raw_segment in target[len(PREFIX) :].split("/")]
    path = "/" + "/".join(segments)
    return f"{path}?{query}" if query else path


def _segment(raw: str) -> str:
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(f"invalid path segment {raw[:100]!r}: not UTF-8") from None
    # A decoded segment may hold "/" (from %2F) or "\\": every piece of it counts.
    pieces = decoded.replace("\\", "/").split("/")
    if any(piece in ("", ".", "..") for piece in pieces) or not decoded.isprintable():
        raise BadRequest(
            f"invalid path segment {raw[:100]!r}: empty, '.', '..' and control characters "
            "are not allowed"
        )
    return quote(decoded, safe=_SAFE)
