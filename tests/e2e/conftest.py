"""End-to-end fixtures: a real gunicorn (gevent workers) in front of a real HTTP backend.

By default the backend is the fake OpenAI server of harness/fake_backend.py, in this process.
With E2E_BACKEND_URL set (`make e2e-real`), the conformance tests run against that server
instead, using E2E_CHAT_MODEL and E2E_EMBED_MODEL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import ollama
import openai
import pytest

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess, proxy_with_fake_backend

BACKEND_KEY = "sk-e2e-backend-secret-5f1c"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
    if os.environ.get("E2E_BACKEND_URL") and os.environ.get("BACKEND_FLAVOUR", "").endswith(
        "-native"
    ):
        # The APIs go to the server's own routes: what only the translation guarantees is not
        # in play (docs/backends/ says what the server's own implementation does instead).
        passed_through = [item for item in items if item.get_closest_marker("translated")]
        config.hook.pytest_deselected(items=passed_through)
        items[:] = [item for item in items if item not in passed_through]


@dataclass(frozen=True)
class Target:
    """The models the conformance tests use on whichever backend is behind the proxy."""

    chat_model: str
    embed_model: str
    real: bool


@pytest.fixture(scope="session")
def target() -> Target:
    if os.environ.get("E2E_BACKEND_URL"):
        return Target(os.environ["E2E_CHAT_MODEL"], os.environ["E2E_EMBED_MODEL"], real=True)
    return Target("fake-chat", "fake-embed", real=False)


@dataclass
class Stack:
    proxy: ProxyProcess
    backend: FakeBackend | None


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("proxy")
    if os.environ.get("E2E_BACKEND_URL"):
        env = {"OPENAI_API_BASE_URL": os.environ["E2E_BACKEND_URL"]}
        env.update(
            {name: os.environ[name] for name in ("BACKEND_FLAVOUR", "OPENAI_API_KEY")
             if os.environ.get(name)}
        )  # fmt: skip
        process = ProxyProcess(log_dir / "gunicorn.log", env).start()
        try:
            yield Stack(process, None)
        finally:
            process.stop()
        return
    with proxy_with_fake_backend(
        log_dir, backend_key=BACKEND_KEY, BACKEND_FLAVOUR="vllm", LOG_LEVEL="DEBUG"
    ) as (proxy, backend):
        yield Stack(proxy, backend)


@pytest.fixture
def proxy(stack: Stack) -> ProxyProcess:
    return stack.proxy


@pytest.fixture
def backend(stack: Stack) -> FakeBackend:
    """The fake backend behind the session's proxy, with its recordings cleared."""
    if stack.backend is None:
        pytest.fail("this test needs the fake backend (it inspects what the proxy sent)")
    stack.backend.reset()
    return stack.backend


@pytest.fixture
def client(stack: Stack) -> Iterator[ollama.Client]:
    """The official Ollama Python SDK, pointed at the proxy."""
    with ollama.Client(host=stack.proxy.url, timeout=120) as client:
        yield client


@pytest.fixture
def openai_client(stack: Stack) -> Iterator[openai.OpenAI]:
    """The official OpenAI Python SDK on the proxy's /v1 (no retries: tests see every answer)."""
    with openai.OpenAI(
        base_url=stack.proxy.url + "/v1", api_key="sk-client-key", max_retries=0, timeout=60
    ) as client:
        yield client


@pytest.fixture
def anthropic_client(stack: Stack) -> Iterator[anthropic.Anthropic]:
    """The official Anthropic Python SDK, pointed at the proxy as Claude Code is
    (ANTHROPIC_BASE_URL is the server's root; no retries: tests see every answer)."""
    with anthropic.Anthropic(
        base_url=stack.proxy.url, api_key="sk-ant-client-key", max_retries=0, timeout=120
    ) as client:
        yield client


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """Starts extra proxies with their own settings (a dead backend, tiny timeouts...); each is
    stopped at the end of the test. Keyword arguments become environment variables."""
    started: list[ProxyProcess] = []

    def start(**env: str) -> ProxyProcess:
        log_path = tmp_path / f"gunicorn-{len(started)}.log"
        process = ProxyProcess(log_path, {"LOG_LEVEL": "DEBUG", **env}).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
