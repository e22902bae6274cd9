"""Only the HTTP methods the proxy knows reach Flask under their own name.

gunicorn accepts any method token (`QWERTYUIOPAS / HTTP/1.1`), and the request metrics label
every request with its method: a client sending random methods would add a series per request,
until a scrape takes seconds and the master's memory grows without end. An unknown method is
renamed OTHER before Flask sees it (it still gets its 405 or 404); the real one is kept for the
access line and the error message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .logconfig import ENVIRON_PREFIX

KNOWN = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "OTHER"
ORIGINAL = ENVIRON_PREFIX + "method"  # environ key of an unknown method's real name

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class KnownMethods:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD", "")
        if method not in KNOWN:
            environ[ORIGINAL] = method[:32]
            environ["REQUEST_METHOD"] = OTHER
        return self.app(environ, start_response)


def method_of(environ: dict[str, Any]) -> str:
    """The method the client sent."""
    return str(environ.get(ORIGINAL) or environ.get("REQUEST_METHOD", ""))
