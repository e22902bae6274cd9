"""CPU-heavy steps of a large request, run off the worker's event loop.

A gevent worker serves every connection on one thread: a request that parses, validates or
encodes tens of megabytes for half a second would stall every other stream on the worker, and
`/health` with them. Above OFFLOAD_BYTES such a step runs in gevent's thread pool instead: the
interpreter hands the GIL back to the event loop every few milliseconds, so the other
connections keep flowing while it runs. Small requests stay inline, where a thread hand-off
would cost more than the work.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from flask import g, has_app_context

T = TypeVar("T")
OFFLOAD_BYTES = 256 * 1024


def cpu(size: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, in a worker thread when the input is `size` bytes or more."""
    if size < OFFLOAD_BYTES:
        return fn(*args, **kwargs)
    context = contextvars.copy_context()  # the request's ID follows into the thread's log lines
    outcome: tuple[bool, Any] = gevent.get_hub().threadpool.apply(
        _captured, (context, fn, args, kwargs)
    )
    ok, value = outcome
    if not ok:
        raise value
    result: T = value
    return result


def request_bytes() -> int:
    """The current request's body size (json_body records it); 0 outside a request."""
    size: int = g.get("body_bytes", 0) if has_app_context() else 0
    return size


def request_is_large() -> bool:
    """Whether the current request's steps run in the thread pool."""
    return request_bytes() >= OFFLOAD_BYTES


def for_request(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`cpu` sized by the current request's body; inline outside a request."""
    return cpu(request_bytes(), fn, *args, **kwargs)


def _captured(
    context: contextvars.Context, fn: Callable[..., Any], args: Any, kwargs: Any
) -> tuple[bool, Any]:
    # Returned, not raised: the thread pool would print every exception as a crash, and a bad
    # request's BadRequest is business as usual.
    try:
        return True, context.run(fn, *args, **kwargs)
    except Exception as exc:  # re-raised in the request's greenlet
        return False, exc
