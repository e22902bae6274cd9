"""Request validation across endpoints: a 4xx for what the client
got wrong, with a message naming the field, in Ollama's error shape (OpenAI's on /v1)."""

from __future__ import annotations

import json

import pytest

from app.config import Settings
from tests.checks import ollama_error

from .helpers import (
    BACKEND,
    CHAT_URL,
    USER,
    add_stream,
    delta,
    sent,
    sse,
)

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}
# (path, a valid body) for every endpoint that reads a JSON body.
ENDPOINTS = [
    ("/api/chat", CHAT),
    ("/api/generate", {"model": "llama3.2", "prompt": "Hi"}),
    ("/api/embed", {"model": "nomic-embed-text", "input": "Hi"}),
    ("/api/embeddings", {"model": "nomic-embed-text", "prompt": "Hi"}),
    ("/api/show", {"model": "llama3.2"}),
    ("/api/pull", {"model": "llama3.2"}),
]
PATHS = [path for path, _ in ENDPOINTS]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("raw", [b"", b"   \n"])
def test_empty_body_is_400(client, backend, path, raw):
    response = client.post(path, data=raw, content_type="application/json")
    assert ollama_error(response, 400) == "missing request body"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"model": "llama3.2",', "invalid JSON"),
        (b"{'model': 'llama3.2'}", "invalid JSON"),
        (b'{"model": "llama3.2", "keep_alive": NaN}', "NaN"),
        (b'{"model": "llama3.2", "keep_alive": Infinity}', "Infinity"),
        (b'[{"model": "llama3.2"}]', "JSON object"),
        (b'"llama3.2"', "JSON object"),
        (b'{"model": "llama3.2\xff"}', "UTF-8"),
    ],
)
def test_malformed_bodies_are_400(client, backend, path, raw, expected):
    response = client.post(path, data=raw, content_type="application/json")
    assert expected in ollama_error(response, 400)


def test_deeply_nested_json_is_400(client, backend):
    raw = b'{"model": "llama3.2", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert "nested too deeply" in ollama_error(client.post("/api/chat", data=raw), 400)


def test_body_is_json_whatever_the_content_type(client, backend):
    # curl -d '{...}' sends application/x-www-form-urlencoded; Ollama parses JSON anyway.
    response = client.post(
        "/api/show", data=b'{"model":"llama3.2"}', content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert "model_info" in json.loads(response.data)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("model", [None, "absent", ""])
def test_missing_model_is_400_but_404_on_generate(client, backend, path, model):
    # Ollama's own difference: generate looks an empty name up and does not find it.
    body = dict(dict(ENDPOINTS)[path])
    if model == "absent":
        del body["model"]
    else:
        body["model"] = model
    response = client.post(path, json=body)
    if path == "/api/generate":
        assert ollama_error(response, 404) == "model '' not found"
    else:
        assert ollama_error(response, 400) == "model is required"


@pytest.mark.parametrize(
    ("path", "extra", "field"),
    [
        ("/api/chat", {"stream": "yes"}, "stream"),
        ("/api/generate", {"stream": 1}, "stream"),
        ("/api/pull", {"stream": "true"}, "stream"),
        ("/api/chat", {"options": {"temperature": "hot"}}, "temperature"),
        ("/api/generate", {"options": {"num_predict": "many"}}, "num_predict"),
        ("/api/chat", {"options": {"top_p": 7}}, "top_p"),
        ("/api/chat", {"options": "fast"}, "options"),
        ("/api/chat", {"keep_alive": "5"}, "keep_alive"),
        ("/api/chat", {"think": "very"}, "think"),
        ("/api/chat", {"format": "yaml"}, "format"),
        ("/api/chat", {"messages": "Hi"}, "messages"),
        ("/api/generate", {"prompt": ["a"]}, "prompt"),
        ("/api/embed", {"truncate": "no"}, "truncate"),
        ("/api/embed", {"dimensions": 0}, "dimensions"),
        ("/api/chat", {"options": {"use_mmap": "yes"}}, "use_mmap"),
        ("/api/chat", {"options": {"stop": ["a", 1]}}, "stop"),
        ("/api/chat", {"options": {"stop": ["s"] * 33}}, "stop"),
    ],
)
def test_wrong_field_types_are_400_naming_the_field(client, backend, path, extra, field):
    body = {**dict(ENDPOINTS)[path], **extra}
    assert field in ollama_error(client.post(path, json=body), 400)


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
@pytest.mark.parametrize("value", [21, -1])
def test_top_logprobs_out_of_range_is_400(client, backend, path, value):
    body = {**dict(ENDPOINTS)[path], "logprobs": True, "top_logprobs": value}
    message = ollama_error(client.post(path, json=body), 400)
    assert "top_logprobs must be between 0 and 20" in message


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": "x", "images": ["%%% not base64"]},
        {"role": "user", "content": "x", "images": [""]},
        {"role": "user", "content": "x", "images": "abc"},
        {"content": "x"},
        {"role": "user", "content": 42},
        "just a string",
        {"role": "assistant", "tool_calls": {"function": {}}},
        {"role": "assistant", "tool_calls": ["f"]},
        {"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]},
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]},
    ],
)
@pytest.mark.parametrize("position", [0, 1])
def test_invalid_messages_are_400_naming_the_message(client, backend, message, position):
    body = {"model": "llama3.2", "messages": [*USER * position, message]}
    message = ollama_error(client.post("/api/chat", json=body), 400)
    assert f"messages[{position}]" in message


@pytest.mark.parametrize(
    "tools", [["f"], [{"function": "f"}], [{"function": {"description": "no name"}}]]
)
def test_invalid_tools_are_400_naming_the_tool(client, backend, tools):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "tools": tools}
    assert "tools[0]" in ollama_error(client.post("/api/chat", json=body), 400)


@pytest.mark.parametrize("path", ["/api/nope", "/nope", "/api", "/api/tags/extra"])
def test_unknown_route_is_404_json(client, path):
    assert "404 page not found" in ollama_error(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/chat"), ("POST", "/api/tags"), ("GET", "/api/delete"), ("PUT", "/")],
)
def test_wrong_method_is_405_with_allow(client, method, path):
    response = client.open(path, method=method)
    assert method in ollama_error(response, 405)
    assert response.headers["Allow"]
    assert method not in response.headers["Allow"].split(", ")


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, max_body_bytes=2048)])
@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_body_over_the_limit_is_413(client, backend, path):
    big = json.dumps({**CHAT, "padding": "x" * 4096}).encode()
    response = client.post(path, data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.content_type == "application/json; charset=utf-8"
    error = json.loads(response.data)["error"]
    message = error["message"] if path.startswith("/v1/") else error
    assert "2048" in message
    assert all(call.request.url != CHAT_URL for call in backend.calls)


def test_unknown_and_null_options_are_ignored(client, backend):
    add_stream(backend, CHAT_URL, sse(delta("ok", finish="stop")))
    options = {"num_gpu_layers_typo": "x", "temperature": None, "stop": "END"}
    response = client.post("/api/chat", json={**CHAT, "options": options})
    assert response.status_code == 200
    upstream = sent(backend, CHAT_URL)
    assert "temperature" not in upstream
    assert upstream["stop"] == ["END"]  # a bare string, as curl users write it
