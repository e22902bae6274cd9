"""The proxy's backend key goes with every backend call: nothing a client sends may steer such a
call anywhere but the backend's OpenAI API, or choose whose account it bills."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import AUTH, BACKEND_KEY, CLIENT_KEY, body_of, exchange, status_of

TRAVERSALS = [
    "/v1/../admin",
    "/v1/%2e%2e/admin",
    "/v1/%2E%2e/key/generate",
    "/v1/..%2fadmin",
    "/v1/..%2Fkey/generate",
    "/v1/..",
    "/v1/./../admin",
    "/v1/files/..%5c..%5cadmin",
    "/v1/chat/completions/../../admin",
    "http://127.0.0.1/v1/../admin",  # absolute-form request target
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PUT"])
def test_dot_segments_never_reach_the_backend(target, path: str, method: str) -> None:
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{AUTH}"
        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    answer = exchange(target.proxy.port, request.encode())
    assert status_of(answer) in (400, 404), answer[:300]
    error = json.loads(body_of(answer))["error"]
    assert error["message"]
    with target.backend.lock:
        assert target.backend.requests == []


def test_a_client_cannot_redirect_billing_or_pass_other_credentials(target) -> None:
    headers = {
        "Authorization": f"Bearer {CLIENT_KEY}",
        "OpenAI-Organization": "org-victim",
        "OpenAI-Project": "proj-victim",
        "X-Api-Key": "sk-smuggled",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-For": "10.9.9.9",
    }
    response = httpx.get(target.proxy.url + "/v1/models", headers=headers, timeout=10)
    assert response.status_code == 200
    [sent] = target.backend.requests
    assert sent["headers"]["authorization"] == f"Bearer {BACKEND_KEY}"
    leaked = {"openai-organization", "openai-project", "x-api-key", "x-forwarded-host"}
    assert leaked.isdisjoint(sent["headers"])
    assert "x-forwarded-for" not in sent["headers"]


def test_a_double_slash_is_not_a_redirect_to_the_clients_host(target) -> None:
    host = "attacker.internal"  # a name the loopback guard lets through
    request = f"GET /v1//models HTTP/1.1\r\nHost: {host}\r\n{AUTH}Connection: close\r\n\r\n"
    answer = exchange(target.proxy.port, request.encode())
    assert status_of(answer) == 404
    assert b"Location" not in answer
    assert host.encode() not in answer
    assert target.backend.requests == []


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("evil.example", False),
        ("evil.example:11434", False),
        ("127.0.0.1:11434", True),
        ("localhost", True),
        ("[::1]:11434", True),
        ("gpu-box.local", True),
        ("192.168.1.20", True),
    ],
)
def test_a_loopback_proxy_refuses_hosts_a_rebound_dns_name_would_send(target, host, allowed):
    request = f"GET /api/version HTTP/1.1\r\nHost: {host}\r\n{AUTH}Connection: close\r\n\r\n"
    answer = exchange(target.proxy.port, request.encode())
    assert status_of(answer) == (200 if allowed else 403), answer[:200]
