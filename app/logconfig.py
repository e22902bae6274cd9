"""Logging: one JSON object per line on stdout, from the app and from gunicorn alike.

gunicorn.conf.py passes `logging_config(level)` as `logconfig_dict`, so the master and the
workers it forks log through the same handlers. The master imports this module before gevent
patches the workers, so it imports only the standard library.

The request ID of the request being handled lives in a context variable (greenlet-local under
gevent): the request-ID hooks set it, log records pick it up, the backend client forwards it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from . import process_id

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# WSGI environ keys the app fills in for the access line (worker.ProxyLogger reads them).
ENVIRON_PREFIX = "proxy."
ACCESS_EXTRAS = (
    "request_id",
    "backend",
    "backend_request_id",
    "endpoint",
    "model",
    "prompt_tokens",
    "completion_tokens",
)

REDACTED = "[redacted]"
_SECRET_FIELDS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "api_key",
        "apikey",
        "x_api_key",
        "openai_api_key",
        "access_token",
        "refresh_token",
        "cookie",
        "set_cookie",
        "password",
        "secret",
    }
)
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def annotate(environ: dict[str, Any], **fields: Any) -> None:
    """Fields for this request's access line, which gunicorn writes after the body is sent."""
    for key, value in fields.items():
        environ[ENVIRON_PREFIX + key] = value


def _is_secret(name: str) -> bool:
    return name.lower().replace("-", "_") in _SECRET_FIELDS


def redact(value: Any) -> Any:
    """A copy of `value` with secret-looking keys masked, in nested dicts too."""
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret(str(k)) else redact(v) for k, v in value.items()}
    return value


class ContextFilter(logging.Filter):
    """Adds the current request's ID and masks secrets passed through `extra=`.

    Stream generators run after the request context is gone; they pass `request_id` in
    `extra` themselves, and that value is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        for key, value in list(record.__dict__.items()):
            if key in _RECORD_ATTRS:
                continue
            if _is_secret(key):
                setattr(record, key, REDACTED)
            elif isinstance(value, Mapping):
                setattr(record, key, redact(value))
        return True


def access_fields(
    status: int | None, sent: int | None, environ: Mapping[str, Any], elapsed: timedelta
) -> dict[str, Any]:
    """The fields of one access line, from what gunicorn knows once a response is sent.

    Chosen fields only: the path without its query string (it can carry keys), no request
    headers (Authorization), no user name (gunicorn decodes one from Basic auth).
    """
    fields: dict[str, Any] = {
        "method": environ.get(ENVIRON_PREFIX + "method") or environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "status": status,
        "bytes": sent or 0,
        "duration_ms": round(elapsed.total_seconds() * 1000, 3),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
    }
    for name in ACCESS_EXTRAS:
        value = environ.get(ENVIRON_PREFIX + name)
        if value is not None:
            fields[name] = value
    return fields


class JsonLines(logging.Formatter):
    """One compact JSON object per record: time, level, logger, pid, message, and every field
    passed through `extra=` (ContextFilter has masked secrets by then)."""

    _encode = json.JSONEncoder(separators=(",", ":"), default=str).encode

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": process_id.pid(),  # records carry none: see logging_config
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return self._encode(line)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The dictConfig for the app and for gunicorn (its `logconfig_dict`)."""
    # Every record would ask the kernel for the process id (a system call per log line);
    # JsonLines, the one formatter, writes the kept one instead.
    logging.logProcesses = False
    level = level.upper()
    stdout = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    # urllib3's DEBUG lines carry full URLs (pass-through query strings); the backend client
    # logs its own line per request instead.
    quiet = level if logging.getLevelName(level) > logging.WARNING else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"json": {"()": JsonLines}},
        "handlers": {"stdout": {**stdout, "filters": ["context"]}},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # gunicorn's own loggers, named so dictConfig replaces its plain-text handlers.
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stdout"], "propagate": False},
            "urllib3": {"level": quiet},
        },
    }
