"""Input a well-behaved client never sends: every one gets a clear 4xx in the API's shape, never
a 500, a stack trace, or gunicorn's HTML."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.checks import anthropic_error, ollama_error, openai_error

from .conftest import AUTH, CLIENT_KEY, body_of, exchange, status_of

HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
LONE = '"hi\\ud800"'  # valid JSON syntax, but no text: no backend request can carry it


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", f'{{"model":"fake-chat","messages":[{{"role":"user","content":{LONE}}}]}}'),
        ("/api/chat", f'{{"model":"fake-chat","messages":[],"options":{{"stop":[{LONE}]}}}}'),
        (
            "/api/chat",
            '{"model":"fake-chat","messages":[{"role":"assistant","tool_calls":[{"function":'
            f'{{"name":{LONE}}}}}]}},{{"role":"user","content":"x"}}]}}',
        ),
        ("/api/embed", f'{{"model":"fake-embed","input":[{LONE}]}}'),
        ("/api/generate", f'{{"model":"fake-chat","prompt":{LONE}}}'),
    ],
)
def test_lone_surrogates_are_a_400(target, path: str, body: str) -> None:
    response = httpx.post(target.proxy.url + path, content=body, headers=HEADERS, timeout=10)
    assert "lone UTF-16 surrogate" in ollama_error(response, 400)
    assert target.backend.requests == []


def test_a_valid_surrogate_pair_is_text(target) -> None:
    message = '{"role":"user","content":"\\ud83d\\ude00"}'
    body = f'{{"model":"fake-chat","stream":false,"messages":[{message}]}}'
    response = httpx.post(target.proxy.url + "/api/chat", content=body, headers=HEADERS, timeout=10)
    assert response.status_code == 200
    assert "\U0001f600" in response.json()["message"]["content"]


USER = '[{"role":"user","content":"x"}]'


@pytest.mark.parametrize(
    ("path", "body", "error_of"),
    [
        ("/api/chat", f'{{"model":"fake-chat","messages":{USER},"format":{{"maximum":1e999}}}}',
         ollama_error),
        ("/v1/messages",
         f'{{"model":"fake-chat","max_tokens":5,"messages":{USER},'
         '"tools":[{"name":"f","input_schema":{"maximum":-1E+400}}]}',
         lambda response, status: anthropic_error(response, status)["message"]),
        ("/v1/responses",
         '{"model":"fake-chat","input":"x","text":{"format":{"type":"json_schema","name":"s",'
         f'"schema":{{"maximum":1{"0" * 400}.5}}}}}}}}',
         lambda response, status: openai_error(response, status)["message"]),
    ],
)  # fmt: skip
def test_numbers_beyond_any_float_are_a_400(target, path: str, body: str, error_of) -> None:
    # Read as infinity, they went on to the backend as `Infinity`, which is not JSON.
    response = httpx.post(target.proxy.url + path, content=body, headers=HEADERS, timeout=10)
    assert "out of range" in error_of(response, 400)
    assert target.backend.requests == []


def test_an_invalid_chunk_size_is_a_400_in_ollamas_shape(target) -> None:
    request = (
        f"POST /api/chat HTTP/1.1\r\nHost: localhost\r\n{AUTH}Transfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    )
    answer = exchange(target.proxy.port, request.encode())
    assert status_of(answer) == 400
    assert "error" in json.loads(body_of(answer))


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
        (b"GET /api/version HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n", 400),
        (b"GET /api/version HTTP/9.9\r\nHost: localhost\r\n\r\n", 400),
        (b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n",
         431),
    ],
)  # fmt: skip
def test_requests_gunicorn_refuses_get_json_not_html(target, request_bytes: bytes, status: int):
    answer = exchange(target.proxy.port, request_bytes)
    assert status_of(answer) == status
    assert b"application/json" in answer.partition(b"\r\n\r\n")[0]
    error = json.loads(body_of(answer))["error"]
    assert error  # Ollama's {"error": "..."}, or OpenAI's under /v1
    assert b"<html" not in answer


REFUSALS = [
    b"HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n",
    b"HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n",
    b"HTTP/9.9\r\nHost: localhost\r\n\r\n",
]


@pytest.mark.parametrize("rest", REFUSALS)
@pytest.mark.parametrize("after_a_request", [False, True])
def test_gunicorn_refusals_on_messages_and_responses_are_in_their_shapes(
    target, rest: bytes, after_a_request: bool
) -> None:
    # A request whose headers gunicorn could not parse was shaped by the connection's previous
    # request, or by none: Ollama's {"error": "..."} on /v1/messages and /v1/responses.
    first = b"GET /api/version HTTP/1.1\r\nHost: localhost\r\n" + AUTH.encode() + b"\r\n"
    for path, shape in ((b"/v1/messages", "anthropic"), (b"/v1/responses", "openai")):
        answer = exchange(
            target.proxy.port, (first if after_a_request else b"") + b"POST " + path + b" " + rest
        )
        last = answer[answer.rfind(b"HTTP/1.1 ") :]
        assert status_of(last) in (400, 431, 505), last[:200]
        body = json.loads(body_of(last))
        if shape == "anthropic":
            assert body["type"] == "error"
            assert set(body["error"]) == {"type", "message"}
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}


def test_refused_requests_have_a_path_on_their_access_line(target) -> None:
    exchange(
        target.proxy.port, b"GET /api/version HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n"
    )
    lines = [json.loads(line) for line in target.proxy.logs().splitlines() if line.startswith("{")]
    refused = [
        line
        for line in lines
        if line.get("logger") == "gunicorn.access" and line.get("status") == 400
    ]
    assert refused
    assert all(line["path"] is not None for line in refused)


@pytest.mark.parametrize(
    ("inner", "count", "message"),
    [
        (b"[]", 300_000, "more than 250000 JSON arrays"),
        (b"0", 2_300_000, "more than 2200000 JSON values"),
    ],
)
def test_bodies_the_parser_would_hold_the_event_loop_for_are_refused_unparsed(
    target, inner: bytes, count: int, message: str
) -> None:
    # Each list is built by the parser in one call that holds the GIL: a million empty arrays
    # took 0.3 s, 30 million numbers 1.6 s, during which the worker answered nothing else.
    body = b'{"model":"fake-chat","prompt":"x","context":[' + b",".join([inner] * count) + b"]}"
    response = httpx.post(
        target.proxy.url + "/api/generate", content=body, headers=HEADERS, timeout=30
    )
    assert message in ollama_error(response, 413)
