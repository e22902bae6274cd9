"""WSGI-level guards around the Flask app, for what Flask cannot see or do itself.

Methods. gunicorn accepts any method token (`QWERTYUIOPAS / HTTP/1.1`), and the request
metrics label every request with its method: a client sending random methods would add a
series per request, until a scrape takes seconds and the master's memory grows without end. An
unknown method is renamed OTHER before Flask sees it (it still gets its 405 or 404); the real
one is kept for the access line and the error message.

Closing. When the app answers before it has read a request's whole body (a body that timed out,
was too large or badly framed), the connection cannot carry another request: the rest of that
body would be read as the next one. A WSGI app cannot say "close" (gunicorn ignores a
Connection header from it), but gunicorn's start_response belongs to its response object, whose
force_close() does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .logconfig import ENVIRON_PREFIX

KNOWN = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "OTHER"
ORIGINAL = ENVIRON_PREFIX + "method"  # environ key of an unknown method's real name
CLOSE = ENVIRON_PREFIX + "close"  # set by the app: close the connection after this answer

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Guard:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD", "")
        if method not in KNOWN:
            environ[ORIGINAL] = method[:32]
            environ["REQUEST_METHOD"] = OTHER

        def respond(status: str, headers: Any, exc_info: Any = None) -> Any:
            if environ.get(CLOSE):
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if force_close is not None:
                    force_close()
            return start_response(status, headers, exc_info)

        return self.app(environ, respond)


def method_of(environ: dict[str, Any]) -> str:
    """The method the client sent."""
    return str(environ.get(ORIGINAL) or environ.get("REQUEST_METHOD", ""))


def close_after_answer(environ: dict[str, Any]) -> None:
    """The request's body was not read to its end: its connection must not be reused."""
    environ[CLOSE] = True
