"""`/v1/*` is passed through byte for byte: method, path, query and body go
to the backend untouched; status, headers and body come back untouched, errors included."""

from __future__ import annotations

import gzip

import pytest
import requests
import responses

from app.backends_file import BackendSpec
from app.config import Settings
from tests.checks import openai_error

from .helpers import BACKEND, CHAT_URL, MODELS_URL, sse

RAW_BODY = (
    b'{"model": "llama3.2",\n  "messages": [{"role": "user", "content": "h\\u00e9 \xc3\xa9"}],'
    b' "encoding_format" : "base64", "n": 1.0}'
)
OTHER = "http://other.test/v1"


def spec(url: str, key: str | None = None) -> BackendSpec:
    return BackendSpec(url.split("/")[2], url, key, "generic", 5.0, 300.0)


def test_request_is_forwarded_byte_for_byte(client, backend):
    backend.add(responses.POST, CHAT_URL, json={"ok": True})
    response = client.post(
        "/v1/chat/completions?api-version=2024-01&x=a%20b&x=c",
        data=RAW_BODY,
        headers={"Content-Type": "application/json", "OpenAI-Beta": "assistants=v2"},
    )
    assert response.status_code == 200
    [call] = [c for c in backend.calls if c.request.url.startswith(CHAT_URL)]
    assert call.request.method == "POST"
    assert call.request.url == CHAT_URL + "?api-version=2024-01&x=a%20b&x=c"
    assert call.request.body == RAW_BODY
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["OpenAI-Beta"] == "assistants=v2"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_every_method_reaches_the_same_path(client, backend, method):
    url = f"{BACKEND}/files/file-abc/content"
    backend.add(method, url, body=b"done", status=200, content_type="text/plain")
    response = client.open("/v1/files/file-abc/content", method=method)
    assert (response.status_code, response.data) == (200, b"done")
    [call] = [c for c in backend.calls if c.request.url == url]
    assert call.request.method == method
    assert not call.request.body  # no body sent: none forwarded


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (200, b'{"id":"chatcmpl-1","choices":[]}', {}),
        (
            404,
            b'{"error":{"message":"The model `x` does not exist.","type":"NotFoundError",'
            b'"param":null,"code":404}}',
            {},
        ),
        (
            429,
            b'{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}',
            {"Retry-After": "17"},
        ),
        (500, b"Internal Server Error", {}),
    ],
)
def test_backend_answers_are_relayed_untouched(client, backend, status, body, headers):
    content_type = "text/plain" if status == 500 else "application/json"
    backend.add(
        responses.POST,
        CHAT_URL,
        body=body,
        status=status,
        headers=headers,
        content_type=content_type,
    )
    response = client.post("/v1/chat/completions", data=b"{}")
    assert response.status_code == status
    assert response.data == body
    assert response.headers["Content-Type"] == content_type
    for name, value in headers.items():
        assert response.headers[name] == value


def test_sse_is_relayed_unchanged(client, backend):
    stream = (
        b": ping\n\n"
        + sse({"choices": [{"delta": {"content": "Hi \xe2\x80\xa8"}}]})
        + b"event: done\n\n"
    )
    backend.add(responses.POST, CHAT_URL, body=stream, content_type="text/event-stream")
    response = client.post("/v1/chat/completions", data=b'{"stream":true}')
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.data == stream


def test_compressed_answers_stay_compressed(client, backend):
    packed = gzip.compress(b'{"object":"list","data":[]}')
    backend.add(responses.POST, f"{BACKEND}/embeddings", body=packed,
                headers={"Content-Encoding": "gzip"}, content_type="application/json")  # fmt: skip
    response = client.post("/v1/embeddings", data=b"{}", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.data == packed


def test_v1_models_is_the_backends_own_answer(client, backend):
    backend.replace(
        responses.GET,
        MODELS_URL,
        body=b'{"object":"list","data":[{"id":"m"}]}',
        content_type="application/json",
    )
    response = client.get("/v1/models")
    assert response.status_code == 200
    assert response.data == b'{"object":"list","data":[{"id":"m"}]}'


@pytest.mark.parametrize(
    ("settings", "client_auth", "expected"),
    [
        (Settings(backend_url=BACKEND, api_key="sk-proxy"), "Bearer sk-client", "Bearer sk-proxy"),
        (Settings(backend_url=BACKEND, api_key="sk-proxy"), None, "Bearer sk-proxy"),
        (Settings(backend_url=BACKEND), "Bearer sk-client", "Bearer sk-client"),
        (Settings(backend_url=BACKEND), None, None),
        # Several backends: each gets its own key, never one a client meant for another.
        (Settings(backend_specs=(spec(BACKEND), spec(OTHER))), "Bearer sk-client", None),
        (
            Settings(backend_specs=(spec(BACKEND, "sk-a"), spec(OTHER))),
            "Bearer sk-c",
            "Bearer sk-a",
        ),
    ],
)
def test_authorization(client, backend, client_auth, expected):
    backend.add(responses.POST, CHAT_URL, json={})
    headers = {"Authorization": client_auth} if client_auth else {}
    assert client.post("/v1/chat/completions", data=b"{}", headers=headers).status_code == 200
    [call] = [c for c in backend.calls if c.request.url == CHAT_URL]
    assert call.request.headers.get("Authorization") == expected


def test_only_headers_that_describe_the_request_are_forwarded(client, backend):
    backend.add(responses.POST, CHAT_URL, json={})
    kept = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "User-Agent": "OpenAI/Python 3.57.0",
        "OpenAI-Beta": "assistants=v2",
        "X-Stainless-Lang": "python",
        "Idempotency-Key": "k-1",
    }
    dropped = {
        "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "Forwarded": "for=10.0.0.1",
        "X-Real-IP": "10.0.0.1",
        "X-Api-Key": "sk-client",
        "Api-Key": "sk-client",
        "OpenAI-Organization": "org-victim",
        "OpenAI-Project": "proj-victim",
        "Cookie": "session=secret",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic eA==",
        "Upgrade": "h2c",
        "X-Custom": "unknown to the proxy",
    }
    client.post("/v1/chat/completions", data=b"{}", headers={**kept, **dropped})
    [call] = [c for c in backend.calls if c.request.url == CHAT_URL]
    for name, value in kept.items():
        assert call.request.headers[name] == value
    sent = {name.lower() for name in call.request.headers}
    assert sent.isdisjoint(name.lower() for name in dropped)


def test_backend_cookies_and_cors_headers_never_reach_the_client(client, backend):
    backend.add(
        responses.GET,
        f"{BACKEND}/files",
        json={"object": "list", "data": []},
        headers={
            "Set-Cookie": "backend-session=1",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Credentials": "true",
            "X-Request-ID": "backend-id",
            "OpenAI-Processing-Ms": "12",
        },
    )
    response = client.get("/v1/files")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.headers["OpenAI-Processing-Ms"] == "12"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/../admin",
        "/v1/%2e%2e/admin",
        "/v1/%2E%2E/admin",
        "/v1/..%2fadmin",
        "/v1/..%2Fkey/generate",
        "/v1/..",
        "/v1/./models",
        "/v1/files/..%5c..%5cadmin",
        "/v1//models",
        "/v1/files/%00",
        "/v1/files/%ff",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_paths_that_would_leave_the_api_prefix_never_reach_the_backend(
    client, backend, path, method
):
    response = client.open(path, method=method, environ_overrides={"RAW_URI": path})
    # 400 for a path the route matched; 404 for one no route matches (`//`).
    assert response.status_code in (400, 404)
    openai_error(response, response.status_code)
    assert not backend.calls


def test_a_path_is_forwarded_in_its_canonical_encoding(client, backend):
    backend.add(responses.GET, f"{BACKEND}/files/org%2FFile%20v1", json={"id": "org/File v1"})
    response = client.get(
        "/v1/files/org%2FFile%20v1", environ_overrides={"RAW_URI": "/v1/files/org%2FFile%20v1"}
    )
    assert response.status_code == 200


def test_hop_by_hop_response_headers_are_not_relayed(client, backend):
    headers = {
        "Keep-Alive": "timeout=5",
        "Proxy-Authenticate": "Basic",
        "Upgrade": "h2c",
        "X-Request-Id": "req-1",
        "openai-processing-ms": "12",
    }
    backend.add(responses.POST, CHAT_URL, json={}, headers=headers)
    response = client.post("/v1/chat/completions", data=b"{}")
    for name in ("Keep-Alive", "Proxy-Authenticate", "Upgrade"):
        assert name not in response.headers
    assert response.headers["X-Request-Id"] == "req-1"
    assert response.headers["openai-processing-ms"] == "12"


def test_unreachable_backend_is_a_502_in_openai_shape(client, backend):
    backend.add(
        responses.POST,
        CHAT_URL,
        body=requests.ConnectionError(
            "Failed to establish a new connection: [Errno 111] Connection refused"
        ),
    )
    error = openai_error(client.post("/v1/chat/completions", data=b"{}"), 502)
    assert error["type"] == "api_error"
    assert "unreachable" in error["message"]
    assert "backend.test" in error["message"]


def test_backend_timeout_is_a_504_in_openai_shape(client, backend):
    backend.add(responses.POST, CHAT_URL, body=requests.ReadTimeout("read timed out"))
    error = openai_error(client.post("/v1/chat/completions", data=b"{}"), 504)
    assert error["type"] == "api_error"
    assert "did not answer" in error["message"]
