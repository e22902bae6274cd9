"""The worker's pieces that run without a server: gunicorn's refusals as JSON, and which peers
may say who the client is."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import pytest

from app import worker


def refusal(path: str) -> tuple[bytes, bytes]:
    left, right = socket.socketpair()
    token = worker._REFUSED_PATH.set(path)
    try:
        worker._write_json_error(left, 431, "Request Header Fields Too Large", "too many headers")
    finally:
        worker._REFUSED_PATH.reset(token)
        left.close()
    data = right.recv(65536)
    right.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_gunicorn_refusals_are_ollama_json() -> None:
    head, body = refusal("/api/chat")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": "Request Header Fields Too Large: too many headers"}


def test_gunicorn_refusals_on_v1_are_openai_json() -> None:
    _, body = refusal("/v1/responses")
    error = json.loads(body)["error"]
    assert error["message"] == "Request Header Fields Too Large: too many headers"
    assert error["type"] == "invalid_request_error"


def test_gunicorn_refusals_on_messages_are_anthropic_json() -> None:
    _, body = refusal("/v1/messages")
    assert json.loads(body) == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "Request Header Fields Too Large: too many headers",
        },
    }


@pytest.mark.parametrize(
    ("allowed", "peer", "trusted"),
    [
        ("127.0.0.1,::1", "127.0.0.1", True),
        ("127.0.0.1,::1", "10.0.0.5", False),
        (["10.0.0.0/8"], "10.1.2.3", True),
        ("*", "203.0.113.9", True),
        ("127.0.0.1", "not an address", False),
    ],
)
def test_only_configured_forwarders_may_name_the_client(allowed, peer, trusted) -> None:
    logger = worker.ProxyLogger.__new__(worker.ProxyLogger)
    logger.cfg = SimpleNamespace(forwarded_allow_ips=allowed)
    assert logger._trusted(peer) is trusted
