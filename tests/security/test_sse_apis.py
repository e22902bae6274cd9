"""The Anthropic Messages and OpenAI Responses APIs under the attacks the Ollama API was put
through: the work one request causes must stay linear in its size (the worker's CPU time is
the witness, since large requests are translated off the event loop, where a stall would not
show on `/health`), and odd input gets a 4xx in the API's own shape."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import only_worker

from .conftest import CLIENT_KEY, Target

HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01"}


def post(target: Target, path: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(target.proxy.url + path, content=content, headers=HEADERS, timeout=60)


def worker_cpu(
    target: Target, attack: Callable[[], httpx.Response]
) -> tuple[httpx.Response, float]:
    """The answer, and the CPU seconds the worker (all its threads) spent meanwhile."""
    worker = only_worker(target.proxy)
    before = sum(worker.cpu_times()[:2])
    response = attack()
    time.sleep(0.05)  # a thread still busy after the answer is counted too
    return response, sum(worker.cpu_times()[:2]) - before


def messages(turns: list[Any], **fields: Any) -> dict[str, Any]:
    return {"model": "fake-chat", "max_tokens": 5, "messages": turns, **fields}


def responses(items: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "fake-chat", "input": items, "stream": False, **fields}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/messages/count_tokens",
            messages([{"role": "user", "content": "x" * 1000}] * 16_000),
        ),
        ("/v1/responses", responses([{"role": "user", "content": "x" * 1000}] * 16_000)),
    ],
)
def test_thousands_of_turns_in_a_row_merge_in_linear_time(target, path: str, body) -> None:
    # Adjacent user turns become one (chat templates refuse two in a row): each was joined onto
    # the text merged so far, 8 s of CPU for these 16 MB (32,000 turns took 38 s).
    response, cpu = worker_cpu(target, lambda: post(target, path, body))
    assert response.status_code == 200, response.text[:300]
    assert cpu < 2.0
