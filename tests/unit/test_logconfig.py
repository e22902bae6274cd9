"""The JSON log format: request IDs, gunicorn's access line as fields, no secrets."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.logconfig import (
    REDACTED,
    REQUEST_ID,
    ContextFilter,
    JsonLines,
    access_fields,
    logging_config,
)


def render(record: logging.LogRecord, *filters: logging.Filter) -> dict[str, Any]:
    for log_filter in filters:
        assert log_filter.filter(record)
    line = JsonLines().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def app_record(message: str = "hello", **extra: Any) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "app.x", "levelname": "INFO", "msg": message})
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_the_usual_fields() -> None:
    line = render(app_record("hi %s", args=("there",)), ContextFilter())
    assert line["message"] == "hi there"
    assert (line["level"], line["logger"]) == ("INFO", "app.x")
    assert line["pid"] == os.getpid()
    assert line["time"].endswith("+00:00")
    assert "request_id" not in line  # outside a request there is none


def test_the_current_request_id_is_added_unless_the_record_has_one() -> None:
    token = REQUEST_ID.set("rid-1")
    try:
        assert render(app_record(), ContextFilter())["request_id"] == "rid-1"
        # A stream generator passes the ID of its request explicitly.
        assert render(app_record(request_id="rid-2"), ContextFilter())["request_id"] == "rid-2"
    finally:
        REQUEST_ID.reset(token)


def test_secret_fields_are_masked_at_any_depth() -> None:
    record = app_record(
        authorization="Bearer sk-1",
        headers={"X-Api-Key": "sk-2", "Accept": "*/*", "nested": {"cookie": "c=1"}},
        api_key="sk-3",
        prompt_tokens=5,
    )
    line = render(record, ContextFilter())
    assert line["authorization"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["headers"] == {
        "X-Api-Key": REDACTED,
        "Accept": "*/*",
        "nested": {"cookie": REDACTED},
    }
    assert line["prompt_tokens"] == 5
    assert "sk-" not in json.dumps(line)


ENVIRON = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/api/chat",
    "QUERY_STRING": "key=sk-query-secret",
    "REMOTE_ADDR": "10.0.0.7",
    "HTTP_USER_AGENT": 'curl/8 "quoted"',
    "HTTP_AUTHORIZATION": "Bearer sk-header-secret",
    "proxy.request_id": "rid-9",
    "proxy.endpoint": "/api/chat",
    "proxy.model": "llama3.2",
    "proxy.prompt_tokens": 7,
    "proxy.completion_tokens": 3,
}


def access_record(environ: dict[str, Any]) -> logging.LogRecord:
    """What worker.ProxyLogger logs for a response gunicorn has sent."""
    fields = access_fields(200, 512, environ, timedelta(seconds=1, microseconds=234567))
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, "", 0, "%s %s %s", ("POST", "/api/chat", 200), None
    )
    record.__dict__.update(fields)
    return record


def test_the_access_line_has_named_fields_and_no_secrets() -> None:
    line = render(access_record(ENVIRON), ContextFilter())
    assert line["message"] == "POST /api/chat 200"
    expected = {
        "method": "POST",
        "path": "/api/chat",
        "status": 200,
        "bytes": 512,
        "duration_ms": 1234.567,
        "remote_addr": "10.0.0.7",
        "user_agent": 'curl/8 "quoted"',
        "request_id": "rid-9",
        "endpoint": "/api/chat",
        "model": "llama3.2",
        "prompt_tokens": 7,
        "completion_tokens": 3,
    }
    assert {key: line[key] for key in expected} == expected
    text = json.dumps(line)
    for secret in ("sk-query-secret", "sk-header-secret"):
        assert secret not in text


def test_an_access_line_without_app_fields_has_none_of_them() -> None:
    bare = {key: value for key, value in ENVIRON.items() if not key.startswith("proxy.")}
    line = render(access_record(bare))
    assert not {"model", "endpoint", "prompt_tokens", "request_id"} & set(line)


def test_an_exception_is_one_line_too() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("app", logging.ERROR, "", 0, "failed", (), sys.exc_info())
    line = render(record)
    assert "ValueError: boom" in line["exc_info"]


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_the_config_sets_every_level_and_keeps_urllib3_quiet(level: str) -> None:
    config = logging_config(level.lower())
    assert config["root"]["level"] == level
    loggers = config["loggers"]
    assert loggers["gunicorn.error"]["level"] == loggers["gunicorn.access"]["level"] == level
    assert logging.getLevelName(loggers["urllib3"]["level"]) >= logging.WARNING


def test_the_config_works_with_dictconfig_in_a_fresh_interpreter() -> None:
    # A separate process: configuring logging here would take over pytest's own handlers.
    script = textwrap.dedent(
        """
        import logging, logging.config, os
        from app.logconfig import logging_config
        logging.config.dictConfig(logging_config("INFO"))
        logging.getLogger("app.demo").debug("hidden")
        logging.getLogger("app.demo").info("shown", extra={"authorization": "Bearer sk-x"})
        logging.getLogger("gunicorn.error").warning("from gunicorn")
        if os.fork() == 0:  # a worker: its lines carry its own id, though the master kept one
            logging.getLogger("app.demo").info("child %d", os.getpid())
            os._exit(0)
        os.wait()
        """
    )
    result = subprocess.run(  # our own interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["message"] for line in lines[:2]] == ["shown", "from gunicorn"]
    assert lines[2]["message"] == f"child {lines[2]['pid']}"
    assert lines[2]["pid"] != lines[0]["pid"]
    assert lines[0]["authorization"] == REDACTED
    assert result.stderr == ""
