"""Request IDs: taken from `X-Request-ID` when it is sane, generated otherwise.

The ID is returned in the response header, put on every log line of the request (through
logconfig.REQUEST_ID and the access line's environ fields), and sent to the backend. Each
backend call gets the ID plus a random suffix: a client may reuse its own ID, and vLLM takes
the header as its internal request id, which must be unique while the request runs.
"""

from __future__ import annotations

import random
import re
import time
import uuid

from flask import Flask, Response, g, has_request_context, request

from .logconfig import REQUEST_ID, annotate

HEADER = "X-Request-ID"
# Characters that cannot break a log line, a header or a grep; long enough for any tracer's IDs.
_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def accept(value: str | None) -> str:
    """The client's ID if it is well-formed, otherwise a new one."""
    if value is not None and _VALID.fullmatch(value):
        return value
    # Unique, not secret: the Mersenne twister (reseeded in every forked worker) costs a
    # fraction of uuid4's os.urandom call, which showed in the per-request profile.
    return f"{random.getrandbits(128):032x}"


def current() -> str | None:
    """The ID of the request this greenlet is handling, if any."""
    return REQUEST_ID.get()


def upstream_id(request_id: str, *, uuid_only: bool = False) -> str:
    """The ID for one backend call of the request: `<request id>-<8 hex digits>`, or a random
    UUID for backends that accept nothing else (the access line then ties the two)."""
    if uuid_only:
        return str(uuid.UUID(int=random.getrandbits(128), version=4))
    return f"{request_id}-{random.getrandbits(32):08x}"


def note_upstream(sent_id: str, backend: str) -> None:
    """Puts the ID a backend call carried, and the backend's name, on the request's access
    line (the last call's: the backend that answered)."""
    if has_request_context():
        annotate(request.environ, backend_request_id=sent_id, backend=backend)


def init_request_id(app: Flask) -> None:
    """Registers the hooks; call it before anything else registers `before_request`."""

    @app.before_request
    def take_request_id() -> None:
        request_id = accept(request.headers.get(HEADER))
        g.request_id = request_id
        g.request_started = time.perf_counter()
        REQUEST_ID.set(request_id)
        annotate(request.environ, request_id=request_id)

    @app.after_request
    def return_request_id(response: Response) -> Response:
        # A /v1 pass-through answer keeps the backend's own ID (the OpenAI SDK reports it);
        # the access line still carries ours.
        if HEADER not in response.headers and "request_id" in g:
            response.headers[HEADER] = g.request_id
        rule = request.url_rule
        if rule is not None:
            annotate(request.environ, endpoint=rule.rule)
        return response

    @app.teardown_request
    def forget_request_id(_: BaseException | None) -> None:
        REQUEST_ID.set(None)
