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

from tests.checks import openai_error
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


def call(call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}


def output(call_id: str | None) -> dict[str, Any]:
    item = {"type": "function_call_output", "output": "r"}
    return item if call_id is None else {**item, "call_id": call_id}


def test_a_run_of_function_calls_is_bounded_and_matched_in_linear_time(target) -> None:
    # Each function_call rebuilt the open calls from every call before it: 8,000 in a row took
    # 7 s of CPU (50,000, all `input` may hold, would take minutes). A run is one assistant
    # message, bounded as tool calls are in the other APIs.
    too_many = responses([call(f"c{i}") for i in range(8_000)])
    response, cpu = worker_cpu(target, lambda: post(target, "/v1/responses", too_many))
    assert "at most 1000 function calls" in openai_error(response, 400)["message"]
    assert cpu < 1.0
    # The most calls a run may hold, and thousands of outputs, matching none or by order.
    items = [call(f"c{i}") for i in range(1_000)]
    items += [output(f"x{i}") for i in range(10_000)] + [output(None) for _ in range(1_000)]
    response, cpu = worker_cpu(target, lambda: post(target, "/v1/responses", responses(items)))
    assert response.status_code == 200, response.text[:300]
    assert cpu < 1.0


def test_made_up_item_kinds_cannot_grow_the_worker_or_flood_the_log(target) -> None:
    # Item and tool kinds the proxy skips are logged once per kind: every made-up kind was
    # kept for ever and logged (40,000 in one request: +19 MB held, 36 MB of log lines).
    for batch in range(2):
        items = [{"type": f"made-up-{batch}-{i}-" + "q" * 200} for i in range(20_000)]
        tools = [{"type": f"made-up-tool-{batch}-{i}"} for i in range(1_000)]
        body = responses([*items, {"role": "user", "content": "hi"}], tools=tools)
        assert post(target, "/v1/responses", body).status_code == 200
    noted = [line for line in target.proxy.logs().splitlines() if "made-up-" in line]
    assert len(noted) <= 64
    assert all(len(line) < 2_000 for line in noted)


def test_namespaces_cannot_multiply_the_tools_past_the_bound(target) -> None:
    members = [{"name": f"f{i}", "parameters": {}} for i in range(5_000)]
    body = responses("hi", tools=[{"type": "namespace", "name": "ns", "tools": members}])
    response = post(target, "/v1/responses", body)
    assert "at most 1000 functions" in openai_error(response, 400)["message"]
    assert target.backend.requests == []  # all 5,000 were offered to the backend
