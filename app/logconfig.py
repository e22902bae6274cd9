"""Logging: one JSON object per line on stdout, from the app and from gunicorn alike.

gunicorn.conf.py passes `logging_config(level)` as `logconfig_dict`, so the master and the
workers it forks log through the same handlers. The master imports this module before gevent
patches the workers, so it imports only the standard library and python-json-logger.

The request ID of the request being handled lives in a context variable (greenlet-local under
gevent): the request-ID hooks set it, log records pick it up, the backend client forwards it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# gunicorn's access message; the fields that matter are added by AccessFields.
ACCESS_FORMAT = "%(m)s %(U)s %(s)s"
# WSGI environ keys the app fills in for the access line (gunicorn offers them as `{key}e`).
ENVIRON_PREFIX = "proxy."
ACCESS_EXTRAS = ("request_id", "endpoint", "model", "prompt_tokens", "completion_tokens")

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


class AccessFields(logging.Filter):
    """gunicorn's access record as named fields.

    gunicorn logs `access_log_format % atoms` with the atoms dict as the record's args. Only
    chosen atoms become fields: the dict also holds every request header (`{authorization}i`)
    and the whole environ. The path is without its query string (it can carry keys), and the
    user name atom (decoded from Basic auth) is never read.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        if not isinstance(atoms, dict):
            return True

        def get(key: str) -> Any:
            # dict.get, not atoms[...]: gunicorn's SafeAtoms turns a missing key into "-".
            return dict.get(atoms, key)

        record.method = get("m")
        record.path = _unescape(get("U"))
        record.status = _int(get("s"))
        record.bytes = _int(get("B")) or 0
        micros = _int(get("D"))
        if micros is not None:
            record.duration_ms = round(micros / 1000, 3)
        record.remote_addr = get("h")
        record.user_agent = _unescape(get("a"))
        for name in ACCESS_EXTRAS:
            value = get("{" + ENVIRON_PREFIX + name + "}e")
            if value is not None:
                setattr(record, name, value)
        return True


def _unescape(value: Any) -> Any:
    # SafeAtoms escapes double quotes for the classic text format; JSON escapes its own.
    return value.replace('\\"', '"') if isinstance(value, str) else value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
        timestamp="time",
    )


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The dictConfig for the app and for gunicorn (its `logconfig_dict`)."""
    level = level.upper()
    stdout = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    # urllib3's DEBUG lines carry full URLs (pass-through query strings); the backend client
    # logs its own line per request instead.
    quiet = level if logging.getLevelName(level) > logging.WARNING else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}, "access": {"()": AccessFields}},
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            "stdout": {**stdout, "filters": ["context"]},
            "access": {**stdout, "filters": ["access", "context"]},
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # gunicorn's own loggers, named so dictConfig replaces its plain-text handlers.
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["access"], "propagate": False},
            "urllib3": {"level": quiet},
        },
    }
