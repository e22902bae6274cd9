"""Several backends behind one worker, each with its own key, one under a prefix: the `/v1`
pass-through then reads each body for its model, so what a client puts in that body must
neither steer a key to another backend nor cost the worker more than any API's body does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess
from tests.checks import openai_error
from tests.e2e.helpers import only_worker

from .conftest import CLIENT_KEY
from .test_worker_stall import health_watch

KEYS = {"a": "sk-backend-a-91c2", "b": "sk-backend-b-4e7d"}
HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}"}


@dataclass(frozen=True)
class Stack:
    proxy: ProxyProcess
    a: FakeBackend
    b: FakeBackend


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    a = FakeBackend(api_key=KEYS["a"], models=[{"id": "fake-chat"}]).start()
    b = FakeBackend(api_key=KEYS["b"], models=[{"id": "fake-chat"}, {"id": "bmodel"}]).start()
    folder = tmp_path_factory.mktemp("backends")
    path = folder / "backends.json"
    path.write_text(
        json.dumps(
            {
                "backends": [
                    {"name": "a", "base_url": a.url, "api_key_env": "KEY_A"},
                    {"name": "b", "base_url": b.url, "api_key_env": "KEY_B", "prefix": "b/"},
                ]
            }
        )
    )
    proxy = ProxyProcess(
        Path(folder) / "gunicorn.log",
        {
            "BACKENDS_FILE": str(path),
            "KEY_A": KEYS["a"],
            "KEY_B": KEYS["b"],
            "PROXY_API_KEYS": CLIENT_KEY,
            "WEB_CONCURRENCY": "1",
            "BREAKER_FAIL_MAX": "1000",
        },
    ).start()
    try:
        yield Stack(proxy, a, b)
    finally:
        proxy.stop()
        a.stop()
        b.stop()


@pytest.fixture
def backends(stack: Stack) -> Stack:
    stack.a.reset()
    stack.b.reset()
    return stack


def chats(backend: FakeBackend) -> list[dict]:
    with backend.lock:
        return [r for r in backend.requests if r["path"] == "/v1/chat/completions"]


def post(stack: Stack, body: bytes) -> httpx.Response:
    url = stack.proxy.url + "/v1/chat/completions"
    return httpx.post(url, content=body, headers=HEADERS, timeout=60)


def test_a_body_of_millions_of_empty_objects_is_refused_before_routing(backends) -> None:
    # With several backends the body is parsed for its model: it was parsed whole, on the
    # event loop, unbounded: 4.4 s of CPU, /health stalled 4.2 s, 1.7 GB at the peak.
    body = b'{"model":"b/bmodel","messages":[' + b"{}," * 19_999_999 + b"{}]}"
    worker = only_worker(backends.proxy)
    before = worker.memory_info().rss
    with health_watch(backends.proxy.url) as latencies:
        response = post(backends, body)
    assert "too complex" in openai_error(response, 413)["message"]
    assert max(latencies) < 1.0
    assert worker.memory_info().rss - before < 300 * 2**20
    assert chats(backends.a) == chats(backends.b) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"b/bmodel","messages":[{"role":"user","content":"hi \\ud800"}]}',
        b'{"model":"b/bmodel","temperature":1e999,"messages":[{"role":"user","content":"x"}]}',
        b'{"model":"b/bmodel","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_a_body_that_is_no_json_object_for_the_proxy_is_relayed_not_rewritten(
    backends, body: bytes
) -> None:
    # Routing it to "b/" meant rewriting its model: a lone surrogate was a 500, 1e999 went to
    # the backend as `Infinity`. Unreadable for routing, it goes as it is to the first
    # backend, with that backend's own key, which answers what it thinks of it.
    response = post(backends, body)
    assert response.status_code != 500, response.text[:300]
    assert chats(backends.b) == []
    for sent in chats(backends.a):
        assert sent["headers"]["authorization"] == f"Bearer {KEYS['a']}"


@pytest.mark.parametrize("model", [5, ["b/bmodel"], {"b/bmodel": 1}, None, ""])
def test_a_model_that_is_not_a_name_goes_to_the_first_backend_with_its_own_key(
    backends, model
) -> None:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]})
    response = post(backends, body.encode())
    assert response.status_code != 500
    assert chats(backends.b) == []
    assert [r["headers"]["authorization"] for r in chats(backends.a)] == [f"Bearer {KEYS['a']}"]


def test_each_key_goes_to_its_own_backend_and_the_prefix_comes_off(backends) -> None:
    for model in ("b/bmodel", "fake-chat", "B/BMODEL"):
        body = {"model": model, "messages": [{"role": "user", "content": "x"}], "n": 1}
        assert post(backends, json.dumps(body).encode()).status_code == 200
    assert len(chats(backends.a)) == 1
    assert len(chats(backends.b)) == 2
    for sent in chats(backends.b):
        assert sent["headers"]["authorization"] == f"Bearer {KEYS['b']}"
        assert sent["json"]["model"] == "bmodel"
        assert list(sent["json"]) == ["model", "messages", "n"]  # key order kept
    for sent in chats(backends.a):
        assert sent["headers"]["authorization"] == f"Bearer {KEYS['a']}"
