"""Backend failures mapped across endpoints: the status an Ollama client can
act on, Retry-After kept, and a message that names the backend problem."""

from __future__ import annotations

import gzip
import json
import re
from http.client import RemoteDisconnected

import pytest
import requests
import responses
from urllib3.exceptions import ProtocolError

from app.config import Settings
from tests.checks import ollama_error

from .helpers import (
    CHAT_URL,
    EMBEDDINGS_URL,
    MODELS_URL,
    USER,
    add_stream,
    chat,
    completion,
    delta,
    sent,
    single,
    sse,
    whole,
)

CHAT = {"model": "llama3.2", "messages": USER}


def backend_answer(backend, status, body, headers=None):
    for url in (CHAT_URL, EMBEDDINGS_URL):
        backend.add(responses.POST, url, json=body, status=status, headers=headers)


CALLS = pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", CHAT),
        ("/api/chat", {**CHAT, "stream": False}),
        ("/api/generate", {"model": "llama3.2", "prompt": "Hi", "stream": False}),
        ("/api/embed", {"model": "nomic-embed-text", "input": "Hi"}),
        ("/api/embeddings", {"model": "nomic-embed-text", "prompt": "Hi"}),
    ],
    ids=["chat-stream", "chat-whole", "generate-whole", "embed", "embeddings"],
)


@CALLS
def test_backend_500_is_502_naming_the_backend_problem(client, backend, path, body):
    backend_answer(backend, 500, {"error": {"message": "CUDA error: device lost"}})
    message = ollama_error(client.post(path, json=body), 502)
    assert "HTTP 500" in message
    assert "CUDA error: device lost" in message


@CALLS
@pytest.mark.parametrize("status", [503, 429])
def test_backend_503_and_429_keep_status_and_retry_after(client, backend, path, body, status):
    backend_answer(
        backend, status, {"error": {"message": "busy, slow down"}}, {"Retry-After": "30"}
    )
    response = client.post(path, json=body)
    assert "busy, slow down" in ollama_error(response, status)
    assert response.headers["Retry-After"] == "30"


@CALLS
@pytest.mark.parametrize("status", [400, 422])
def test_backend_4xx_keeps_its_message(client, backend, path, body, status):
    backend_answer(
        backend,
        status,
        {
            "object": "error",
            "message": "bad temperature",
            "type": "BadRequestError",
            "code": status,
        },
    )
    assert ollama_error(client.post(path, json=body), 400) == "bad temperature"


@CALLS
def test_backend_404_stays_404(client, backend, path, body):
    backend_answer(backend, 404, {"error": {"message": "The model `llama3.2` does not exist."}})
    assert "does not exist" in ollama_error(client.post(path, json=body), 404)


@CALLS
def test_connection_refused_is_502_unreachable(client, backend, path, body):
    refused = requests.ConnectionError("[Errno 111] Connection refused")
    for url in (CHAT_URL, EMBEDDINGS_URL):
        backend.add(responses.POST, url, body=refused)
    message = ollama_error(client.post(path, json=body), 502)
    assert message == "backend backend.test unreachable: connection refused"


@CALLS
def test_backend_timeout_is_504(client, backend, path, body):
    for url in (CHAT_URL, EMBEDDINGS_URL):
        backend.add(responses.POST, url, body=requests.ReadTimeout("read timed out"))
    message = ollama_error(client.post(path, json=body), 504)
    assert message == "backend backend.test did not answer within 300s"


def test_a_stale_pooled_connection_is_retried_once(client, backend):
    stale = requests.ConnectionError(ProtocolError("Connection aborted.", RemoteDisconnected()))
    backend.add(responses.POST, CHAT_URL, body=stale)
    add_stream(backend, CHAT_URL, sse(delta("ok", finish="stop")))
    assert client.post("/api/chat", json=CHAT).status_code == 200
    assert sum(call.request.url == CHAT_URL for call in backend.calls) == 2


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"),
            "TLS certificate verification failed",
        ),
        (requests.ConnectionError("Name or service not known"), "host name not found"),
        (requests.exceptions.InvalidHeader("odd"), "InvalidHeader"),
    ],
)
def test_unreachable_reasons_are_short_and_readable(client, backend, error, reason):
    backend.add(responses.POST, CHAT_URL, body=error)
    message = ollama_error(client.post("/api/chat", json=CHAT), 502)
    assert message == f"backend backend.test unreachable: {reason}"


@pytest.mark.parametrize("settings", [Settings(backend_url="http://user:pw@backend.test:8000/v1")])
def test_error_messages_name_host_and_port_but_never_credentials(client):
    with responses.RequestsMock() as mock:
        mock.add(
            responses.GET, "http://user:pw@backend.test:8000/v1/models", body=requests.ReadTimeout()
        )
        message = ollama_error(client.get("/api/tags"), 504)
    assert message == "backend backend.test:8000 did not answer within 300s"


def test_model_list_unreachable_is_502(client, backend):
    backend.replace(responses.GET, MODELS_URL, body=requests.ConnectionError("Connection refused"))
    assert "unreachable" in ollama_error(client.get("/api/tags"), 502)
    assert "unreachable" in ollama_error(client.post("/api/chat", json=CHAT), 502)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"upstream exploded", "upstream exploded"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"error": "plain string"}', "plain string"),
        (b"{}", "HTTP 500 from /v1/chat/completions"),
    ],
)
def test_backend_error_messages_in_every_dialect(client, backend, body, message):
    add_stream(backend, CHAT_URL, body, status=500)
    assert ollama_error(client.post("/api/chat", json=CHAT), 502).endswith(message)


def test_a_failing_model_list_is_reported(client, backend):
    backend.replace(
        responses.GET, MODELS_URL, status=500, json={"error": {"message": "model store offline"}}
    )
    message = ollama_error(client.get("/api/tags"), 502)
    assert message == "backend error (HTTP 500): model store offline"


@pytest.mark.parametrize("status", [401, 403, 404, 405, 501])
def test_without_a_model_list_names_pass_through_unresolved(client, backend, status, caplog):
    # Some servers serve no /v1/models, or serve it behind other credentials: requests must
    # still work, with the names clients send.
    page = b"<html><body><h1>404 Not Found</h1><hr>nginx</body></html>"
    backend.replace(responses.GET, MODELS_URL, status=status, body=page, content_type="text/html")
    whole(backend, completion("hi"))
    assert single(client.get("/api/tags")) == {"models": []}
    answer = single(chat(client, model="Private-Model:latest", stream=False))
    assert (answer["model"], answer["message"]["content"]) == ("Private-Model:latest", "hi")
    assert sent(backend, CHAT_URL)["model"] == "Private-Model"
    warnings = [r for r in caplog.records if "passed through" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("status", [404, 502, 503])
def test_a_backend_error_page_is_summarised_never_embedded(client, backend, status):
    page = b"<!DOCTYPE html>\n<html><head><title>Error</title></head><body>Bad</body></html>"
    backend.add(responses.POST, CHAT_URL, status=status, body=page, content_type="text/html")
    message = ollama_error(client.post("/api/chat", json={**CHAT, "stream": False}), status)
    assert "<" not in message
    assert f"HTTP {status} from /v1/chat/completions" in message


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("input (2501 tokens) is too large to process. increase the physical batch size", 400),
        ("image input is not supported - hint: you may need to provide the mmproj", 400),
        ("1 validation error:\n  {'type': 'int_parsing', 'loc': ('body', 'max_tokens')}", 400),
        ("CUDA out of memory", 502),
    ],
)
def test_a_500_that_blames_the_request_is_a_400(client, backend, message, status):
    body = {"error": {"code": 500, "message": message, "type": "server_error"}}
    backend.add(responses.POST, CHAT_URL, status=500, json=body)
    error = ollama_error(client.post("/api/chat", json={**CHAT, "stream": False}), status)
    assert message in error


def test_garbage_from_the_backend_is_502(client, backend):
    backend.add(responses.POST, CHAT_URL, body=b"<html>oops</html>", content_type="text/html")
    message = ollama_error(client.post("/api/chat", json={**CHAT, "stream": False}), 502)
    assert "invalid JSON" in message


def test_malformed_first_event_is_502(client, backend):
    add_stream(backend, CHAT_URL, b"data: {not json\n\n")
    assert "malformed" in ollama_error(client.post("/api/chat", json=CHAT), 502)


def test_repeated_failures_open_the_breaker(client, backend):
    backend.add(responses.POST, CHAT_URL, body=requests.ConnectionError("Connection refused"))
    for _ in range(5):
        ollama_error(client.post("/api/chat", json=CHAT), 502)
    response = client.post("/api/chat", json=CHAT)
    assert "unavailable after repeated failures" in ollama_error(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert sum(call.request.url == CHAT_URL for call in backend.calls) == 5


@pytest.mark.parametrize(
    ("settings", "pattern"),
    [
        (Settings(backend_url="http://backend.test/v1"), r"trace-1-[0-9a-f]{8}"),
        # llama-cpp-python answers any X-Request-ID that is not a UUID with an empty 400.
        (
            Settings(backend_url="http://backend.test/v1", backend_flavour="llama-cpp-python"),
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        ),
    ],
)
def test_each_backend_call_carries_a_request_id_the_backend_accepts(client, backend, pattern):
    backend.post(CHAT_URL, json=completion("hi"))
    client.post("/api/chat", json={**CHAT, "stream": False}, headers={"X-Request-ID": "trace-1"})
    assert re.fullmatch(pattern, backend.calls[-1].request.headers["X-Request-ID"])


@pytest.mark.parametrize(
    "case",
    [
        ("/api/chat", {**CHAT, "stream": False}, lambda r: ollama_error(r, 502)),
        ("/v1/messages", {"model": "llama3.2", "max_tokens": 5, "messages": USER},
         lambda r: r.get_json()["error"]["message"]),
        ("/v1/responses", {"model": "llama3.2", "input": "Hi"},
         lambda r: r.get_json()["error"]["message"]),
    ],
)  # fmt: skip
def test_a_whole_answer_larger_than_any_real_one_is_not_read(client, backend, monkeypatch, case):
    # A backend whose answer does not end (or ends after gigabytes) was read whole into
    # memory: 800 MB sent, 800 MB held by the worker. Now it is cut at MAX_ANSWER_BYTES.
    path, body, error = case
    monkeypatch.setattr("app.backend.MAX_ANSWER_BYTES", 4096)
    whole(backend, completion("x" * 5000))
    response = client.post(path, json=body)
    assert response.status_code == 502
    assert "sent an answer over" in error(response)


def test_a_compressed_answer_is_bounded_by_its_size_once_unpacked(client, backend, monkeypatch):
    # The proxy asks for identity encoding, but a hostile backend may gzip anyway: 10 KB on
    # the wire can be gigabytes unpacked, so the bound applies to what is unpacked.
    monkeypatch.setattr("app.backend.MAX_ANSWER_BYTES", 4096)
    packed = gzip.compress(json.dumps(completion("x" * 50_000)).encode())
    assert len(packed) < 4096
    backend.add(
        responses.POST,
        CHAT_URL,
        body=packed,
        headers={"Content-Encoding": "gzip", "Content-Length": str(len(packed))},
    )
    response = client.post("/api/chat", json={**CHAT, "stream": False})
    assert response.status_code == 502
    assert "sent an answer over" in ollama_error(response, 502)
