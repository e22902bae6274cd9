"""The JSON log format: request IDs, gunicorn's access line as fields, no secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from gunicorn.glogging import SafeAtoms

from app.logconfig import (
    ACCESS_FORMAT,
    REDACTED,
    REQUEST_ID,
    AccessFields,
    ContextFilter,
    json_formatter,
    logging_config,
)


def render(record: logging.LogRecord, *filters: logging.Filter) -> dict[str, Any]:
    for log_filter in filters:
        assert log_filter.filter(record)
    line = json_formatter().format(record)
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
    assert isinstance(line["pid"], int)
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


def access_record(**atoms: Any) -> logging.LogRecord:
    """What gunicorn logs: `access_log_format % atoms`, the atoms as the record's args."""
    defaults = {
        "h": "10.0.0.7",
        "m": "POST",
        "U": "/api/chat",
        "q": "key=sk-query-secret",
        "s": "200",
        "B": 512,
        "D": 1234567,
        "a": 'curl/8 "quoted"',
        "u": "basic-user",
        "{authorization}i": "Bearer sk-header-secret",
        "{x-request-id}o": "rid-9",
        "{proxy.request_id}e": "rid-9",
        "{proxy.endpoint}e": "/api/chat",
        "{proxy.model}e": "llama3.2",
        "{proxy.prompt_tokens}e": 7,
        "{proxy.completion_tokens}e": 3,
    }
    safe = SafeAtoms({**defaults, **atoms})
    return logging.LogRecord("gunicorn.access", logging.INFO, "", 0, ACCESS_FORMAT, (safe,), None)


def test_the_access_line_has_named_fields_and_no_secrets() -> None:
    line = render(access_record(), AccessFields(), ContextFilter())
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
    for secret in ("sk-query-secret", "sk-header-secret", "basic-user"):
        assert secret not in text


def test_an_access_line_without_app_fields_has_none_of_them() -> None:
    atoms = {"{proxy.model}e": None, "{proxy.endpoint}e": None, "B": None}
    record = access_record(**atoms)
    assert isinstance(record.args, dict)
    for key in ("{proxy.prompt_tokens}e", "{proxy.completion_tokens}e", "{proxy.request_id}e"):
        del record.args[key]
    line = render(record, AccessFields())
    assert not {"model", "endpoint", "prompt_tokens", "request_id"} & set(line)
    assert line["bytes"] == 0


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
        import logging, logging.config
        from app.logconfig import logging_config
        logging.config.dictConfig(logging_config("INFO"))
        logging.getLogger("app.demo").debug("hidden")
        logging.getLogger("app.demo").info("shown", extra={"authorization": "Bearer sk-x"})
        logging.getLogger("gunicorn.error").warning("from gunicorn")
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
    assert [line["message"] for line in lines] == ["shown", "from gunicorn"]
    assert lines[0]["authorization"] == REDACTED
    assert result.stderr == ""
