"""Who may call the proxy: optional inbound API keys (PROXY_API_KEYS) and Ollama's CORS rules
(default origins plus OLLAMA_ORIGINS)."""

from __future__ import annotations

import hmac

import pytest
import responses

from app import create_app
from app.config import Settings
from tests.checks import ollama_error, openai_error

from .helpers import BACKEND, CHAT_URL, MODELS_URL, completion

KEYS = frozenset({"key-one-5d2f", "key-two-9a1c"})
WITH_KEYS = Settings(backend_url=BACKEND, api_keys=KEYS)
WITH_KEYS_AND_BACKEND_KEY = Settings(backend_url=BACKEND, api_keys=KEYS, api_key="sk-backend")
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
UNAUTHORIZED = (
    "unauthorized: this server requires an API key (Authorization: Bearer <key>, "
    "or x-api-key: <key>)"
)

# (method, path, JSON body) behind the key: every Ollama API and every pass-through route.
PROTECTED = [
    ("GET", "/api/version", None),
    ("GET", "/api/tags", None),
    ("GET", "/api/ps", None),
    ("POST", "/api/show", {"model": "llama3.2"}),
    ("POST", "/api/chat", CHAT),
    ("POST", "/api/generate", {"model": "llama3.2", "prompt": "Hi", "stream": False}),
    ("POST", "/api/embed", {"model": "nomic-embed-text", "input": "Hi"}),
    ("POST", "/api/pull", {"model": "llama3.2"}),
    ("DELETE", "/api/delete", {"model": "llama3.2"}),
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", CHAT),
]
OLLAMA_PROTECTED = [call for call in PROTECTED if call[1].startswith("/api/")]
V1_PROTECTED = [call for call in PROTECTED if call[1].startswith("/v1/")]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def cors_headers(response) -> list[str]:
    return [name for name, _ in response.headers.items() if name.lower().startswith("access-")]


# --------------------------------------------------------------------------- API keys


@pytest.mark.parametrize("settings", [WITH_KEYS])
@pytest.mark.parametrize("call", OLLAMA_PROTECTED, ids=lambda call: f"{call[0]} {call[1]}")
@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong-key"),
        bearer("key-one-5d2"),  # a prefix of a valid key
        bearer("key-one-5d2f-and-more"),  # a valid key as a prefix
        bearer("KEY-ONE-5D2F"),  # keys are case-sensitive
        bearer(""),
        {"Authorization": "key-one-5d2f"},  # no scheme
        {"Authorization": "Basic key-one-5d2f"},
        {"Authorization": "Token key-one-5d2f"},
        {"X-Api-Key": "wrong-key"},
    ],
    ids=[
        "none",
        "wrong",
        "prefix-of-key",
        "key-as-prefix",
        "case",
        "empty",
        "no-scheme",
        "basic",
        "token",
        "x-api-key",
    ],
)
def test_ollama_routes_without_a_valid_key_are_401_in_ollama_shape(client, backend, call, headers):
    method, path, body = call
    response = client.open(path, method=method, json=body, headers=headers)
    assert ollama_error(response, 401) == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert len(backend.calls) == 0  # refused before anything reached the backend


@pytest.mark.parametrize("settings", [WITH_KEYS])
@pytest.mark.parametrize("call", V1_PROTECTED, ids=lambda call: f"{call[0]} {call[1]}")
@pytest.mark.parametrize("headers", [{}, bearer("wrong-key"), {"Authorization": "Basic eDp5"}])
def test_v1_routes_without_a_valid_key_are_401_in_openai_shape(client, backend, call, headers):
    method, path, body = call
    response = client.open(path, method=method, json=body, headers=headers)
    error = openai_error(response, 401)
    assert error["message"] == UNAUTHORIZED
    assert error["type"] == "authentication_error"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert len(backend.calls) == 0


@pytest.mark.parametrize("settings", [WITH_KEYS])
@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize("call", PROTECTED, ids=lambda call: f"{call[0]} {call[1]}")
def test_any_configured_key_opens_every_route(client, backend, key, call):
    method, path, body = call
    backend.add(responses.POST, CHAT_URL, json=completion())
    backend.add(
        responses.POST,
        f"{BACKEND}/embeddings",
        json={"data": [{"index": 0, "embedding": [0.6, 0.8]}], "usage": {"prompt_tokens": 1}},
    )
    response = client.open(path, method=method, json=body, headers=bearer(key))
    # delete is Ollama's 501 here: no model store; what matters is that the key let it in.
    assert response.status_code == (501 if path == "/api/delete" else 200), response.data


@pytest.mark.parametrize("settings", [WITH_KEYS])
@pytest.mark.parametrize(
    "authorization",
    ["Bearer key-two-9a1c", "bearer key-two-9a1c", "BEARER key-two-9a1c", "Bearer  key-two-9a1c "],
)
def test_the_scheme_is_case_insensitive_and_spaces_around_the_key_are_ignored(
    client, backend, authorization
):
    assert client.get("/api/version", headers={"Authorization": authorization}).status_code == 200


@pytest.mark.parametrize("settings", [WITH_KEYS])
@pytest.mark.parametrize("path", ["/", "/health", "/ready"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_health_endpoints_need_no_key(client, backend, path, method):
    # Probes (Kubernetes, load balancers) send no key. What these paths answer is theirs to
    # decide; with keys configured it must be the same answer as without.
    open_answer = create_app(Settings(backend_url=BACKEND)).test_client().open(path, method=method)
    response = client.open(path, method=method)
    assert response.status_code != 401
    assert response.status_code == open_answer.status_code
    assert response.data == open_answer.data


@pytest.mark.parametrize("settings", [WITH_KEYS])
def test_the_root_answers_ollama_is_running_without_a_key(client):
    response = client.get("/")
    assert (response.status_code, response.data) == (200, b"Ollama is running")


@pytest.mark.parametrize("settings", [WITH_KEYS])
@pytest.mark.parametrize(
    "authorization",
    ["Bearer k\xe9y", "Bearer " + "x" * 4000, "Bearer key-one-5d2f\x00", "Bearer \t"],
    ids=["latin-1", "huge", "nul", "blank"],
)
def test_odd_authorization_values_are_401_not_500(client, backend, authorization):
    response = client.get("/api/tags", headers={"Authorization": authorization})
    assert ollama_error(response, 401) == UNAUTHORIZED


@pytest.mark.parametrize("settings", [WITH_KEYS])
def test_every_key_is_compared_in_constant_time(client, backend, monkeypatch):
    # Comparing with compare_digest against every key, match or not, means neither the time
    # taken nor an early exit says which key (or how much of one) was close.
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for presented in ("key-one-5d2f", "key-two-9a1c", "nope"):
        compared.clear()
        client.get("/api/version", headers=bearer(presented))
        assert {bytes(b) for _, b in compared} | {bytes(a) for a, _ in compared} >= {
            key.encode() for key in KEYS
        }


@pytest.mark.parametrize(
    ("settings", "expected"),
    [(WITH_KEYS, None), (WITH_KEYS_AND_BACKEND_KEY, "Bearer sk-backend")],
    ids=["no-backend-key", "backend-key"],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_the_clients_key_is_never_forwarded_to_the_backend(client, backend, path, expected):
    backend.add(responses.POST, CHAT_URL, json=completion())
    response = client.post(path, json=CHAT, headers=bearer("key-one-5d2f"))
    assert response.status_code == 200, response.data
    calls = [call for call in backend.calls if call.request.url in (CHAT_URL, MODELS_URL)]
    assert calls
    for call in calls:
        assert call.request.headers.get("Authorization") == expected


@pytest.mark.parametrize("settings", [WITH_KEYS])
def test_a_401_still_carries_cors_headers_for_an_allowed_origin(client):
    # A browser page must be able to read why it was refused.
    response = client.get("/api/tags", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


@pytest.mark.parametrize("settings", [WITH_KEYS])
def test_a_preflight_needs_no_key(client):
    # Browsers never send credentials on the OPTIONS preflight.
    response = client.options(
        "/api/chat",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204


def test_without_keys_configured_no_key_is_needed(client, backend):
    assert client.get("/api/version").status_code == 200
    assert client.get("/api/version", headers=bearer("anything")).status_code == 200


# --------------------------------------------------------------------------- CORS


DEFAULT_ALLOWED = [
    "http://localhost",
    "https://localhost",
    "http://localhost:3000",
    "https://localhost:8443",
    "http://127.0.0.1",
    "http://127.0.0.1:5173",
    "https://127.0.0.1:443",
    "http://0.0.0.0",
    "http://0.0.0.0:11434",
    "app://obsidian.md",
    "file://",
    "tauri://localhost",
    "vscode-webview://1a2b3c4d5e",
    "vscode-file://vscode-app",
    "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
    "moz-extension://1234-5678",
    "safari-web-extension://ABCD-1234",
]
DISALLOWED = [
    "https://evil.example",
    "http://localhost.evil.example",
    "http://127.0.0.1.nip.io",
    "http://192.168.1.10:3000",
    "https://example.com",
    "null",
]


@pytest.mark.parametrize("origin", DEFAULT_ALLOWED)
@pytest.mark.parametrize("path", ["/api/version", "/v1/models"])
def test_default_origins_are_allowed(client, backend, origin, path):
    backend.replace(responses.GET, MODELS_URL, json={"object": "list", "data": []})
    response = client.get(path, headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", DISALLOWED)
def test_other_origins_are_403_in_ollama_shape(client, backend, origin):
    response = client.get("/api/version", headers={"Origin": origin})
    assert origin in ollama_error(response, 403)


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_a_refused_origin_gets_no_access_control_headers(client, backend, method):
    # Echoing a refused origin in Access-Control-Allow-Origin tells the browser the page may
    # read the answer after all; Ollama (gin-contrib/cors) aborts with a bare 403.
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = client.open("/api/chat", method=method, headers=headers)
    assert response.status_code == 403
    assert not cors_headers(response)


def test_a_disallowed_origin_is_403_in_openai_shape_on_v1(client, backend):
    response = client.post(
        "/v1/chat/completions", json=CHAT, headers={"Origin": "https://evil.example"}
    )
    assert openai_error(response, 403)["type"] == "permission_error"
    assert not [call for call in backend.calls if call.request.url == CHAT_URL]


@pytest.mark.parametrize(
    "settings",
    [
        Settings(
            backend_url=BACKEND, extra_origins=("https://app.example.com", "https://*.corp.test")
        )
    ],
)
@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://chat.corp.test", True),
        ("https://a.b.corp.test", True),
        ("http://localhost:3000", True),  # the defaults stay
        ("http://app.example.com", False),  # another scheme
        ("https://app.example.com.evil.test", False),
        ("https://corp.test.evil.test", False),
        ("https://evil.example", False),
    ],
)
def test_ollama_origins_adds_origins_with_wildcards(client, origin, allowed):
    response = client.get("/api/version", headers={"Origin": origin})
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert response.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, extra_origins=("*",))])
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://192.168.1.10:3000"])
def test_a_wildcard_in_ollama_origins_allows_every_origin(client, origin):
    response = client.get("/api/version", headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("path", ["/api/chat", "/api/tags", "/v1/chat/completions", "/"])
def test_a_preflight_is_204_with_the_access_control_headers(client, backend, path):
    response = client.options(
        path,
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "DELETE", "OPTIONS"} <= methods
    allowed = response.headers["Access-Control-Allow-Headers"].lower().split(",")
    allowed = {header.strip() for header in allowed}
    assert {"authorization", "content-type"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert not backend.calls


def test_a_preflight_from_a_disallowed_origin_is_403(client):
    response = client.options(
        "/api/chat",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert ollama_error(response, 403)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/version"), ("GET", "/"), ("OPTIONS", "/api/chat")]
)
def test_no_cors_headers_without_an_origin(client, backend, method, path):
    response = client.open(path, method=method)
    assert response.status_code < 400
    assert not cors_headers(response)


def test_cors_headers_are_on_error_answers_too(client, backend):
    response = client.post("/api/chat", data=b"{", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
