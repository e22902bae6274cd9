"""The hostile-input suite: a real gunicorn in front of a recording fake backend, attacked the
way a hostile client would (raw sockets where an HTTP library would refuse to send the bytes).

One proxy serves the module's tests, with small limits so that every bound is reached in
seconds: one worker of 20 connections, 1 s to send headers, 2 s for a body or a stalled read.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess, proxy_with_fake_backend

BACKEND_KEY = "sk-backend-master-key-7d1e"
CLIENT_KEY = "proxy-client-key-3b9c"
CONNECTIONS = 20


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Target:
    proxy: ProxyProcess
    backend: FakeBackend


@pytest.fixture(scope="package")
def target_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with proxy_with_fake_backend(
        tmp_path_factory.mktemp("security"),
        backend_key=BACKEND_KEY,
        PROXY_API_KEYS=CLIENT_KEY,
        WEB_CONCURRENCY="1",
        WORKER_CONNECTIONS=str(CONNECTIONS),
        HEADER_TIMEOUT="1",
        BODY_TIMEOUT="2",
        WRITE_TIMEOUT="2",
        REQUEST_TIMEOUT="10",
        BREAKER_FAIL_MAX="1000",
        LOG_LEVEL="INFO",
    ) as (proxy, backend):
        yield Target(proxy, backend)


@pytest.fixture
def target(target_stack: Target) -> Target:
    target_stack.backend.reset()
    return target_stack


AUTH = f"Authorization: Bearer {CLIENT_KEY}\r\n"


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Sends raw bytes and returns everything the proxy answers until it closes."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # a server refusing a request it did not read to the end resets after answering
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the peer sends until it closes the connection, and whether it did within `seconds`."""
    sock.settimeout(seconds)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        return b"".join(chunks), False
    except ConnectionResetError:
        pass
    return b"".join(chunks), True


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closed `sock` (reading and dropping what it sent), or None."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass  # a reset is a close too
    return time.monotonic() - started
