"""Small helpers shared by the e2e fault suites: request bodies, answer readers, worker lookup."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ollama
import openai
import psutil

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess
from tests.checks import chat_body, ndjson_objects


def chat(text: str, *, stream: bool = False, model: str = "fake-chat") -> dict[str, Any]:
    """An /api/chat or /v1 chat body with one user message (fault markers go in the text)."""
    return chat_body(text, model=model, stream=stream)


def ndjson(text: str) -> list[dict[str, Any]]:
    return ndjson_objects(text.encode())


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """Polls until `condition()` is truthy and returns its value; None after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def events(backend: FakeBackend, name: str) -> list[dict[str, Any]]:
    with backend.lock:
        return [event for event in backend.events if event["event"] == name]


def requests_to(backend: FakeBackend, path: str) -> int:
    with backend.lock:
        return sum(1 for request in backend.requests if request["path"] == path)


def workers(proxy: ProxyProcess) -> list[psutil.Process]:
    """gunicorn's worker processes: the children of the master."""
    return psutil.Process(proxy.pid).children()


def only_worker(proxy: ProxyProcess) -> psutil.Process:
    [worker] = workers(proxy)
    return worker


def backend_connections(worker: psutil.Process, backend: FakeBackend) -> int:
    """The worker's open TCP connections to the backend (pooled or in use)."""
    return sum(
        1
        for conn in worker.net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == backend.port and conn.status == "ESTABLISHED"
    )


def ollama_chat_error(url: str, text: str) -> ollama.ResponseError:
    """What the Ollama SDK raises for a one-message chat (fails if it raises nothing)."""
    with ollama.Client(host=url, timeout=10) as client:
        try:
            client.chat("fake-chat", messages=[{"role": "user", "content": text}])
        except ollama.ResponseError as exc:
            return exc
    raise AssertionError("the Ollama SDK raised no error")


def openai_sdk(url: str) -> openai.OpenAI:
    """The OpenAI SDK on the proxy's /v1, without retries: a test sees every answer."""
    return openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=10)


def openai_chat_error(url: str, text: str) -> openai.APIError:
    """What the OpenAI SDK raises for a one-message chat completion."""
    with openai_sdk(url) as client:
        try:
            client.chat.completions.create(
                model="fake-chat", messages=[{"role": "user", "content": text}]
            )
        except openai.APIError as exc:
            return exc
    raise AssertionError("the OpenAI SDK raised no error")
