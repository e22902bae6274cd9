"""A model looks the same whichever gunicorn worker answers, as it does from one Ollama server.

Found by driving the proxy with real clients against llama-cpp-python and llama-server: their
model lists carry no usable date (llama-cpp-python has no `created`; llama-server stamps every
listing with the current time), so the proxy dates such models itself. Clients compare
`modified_at` across calls (UIs sort and cache by it), and a load balancer or a replaced worker
must not make a model appear to change.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import ollama

from harness.fake_backend import FakeBackend
from harness.proxy_process import ProxyProcess

from .helpers import wait_for, workers


class ListingWithoutDates(FakeBackend):
    """A model list shaped like llama-cpp-python's: no `created`, so no date from the backend."""

    def model_card(self, model: dict[str, Any]) -> dict[str, Any]:
        return {"id": model["id"], "object": "model", "owned_by": "me", "permissions": []}


def _pids_that_served(proxy: ProxyProcess, path: str) -> set[int]:
    lines = (json.loads(line) for line in proxy.logs().splitlines())
    return {
        line["pid"]
        for line in lines
        if line.get("logger") == "gunicorn.access" and line.get("path") == path
    }


def test_modified_at_is_one_value_whichever_worker_answers(start_proxy) -> None:
    with ListingWithoutDates() as backend:
        proxy = start_proxy(OPENAI_API_BASE_URL=backend.url)
        # A worker that starts later (a replacement here; in production also one that booted a
        # second after its sibling, or after a crash) must date the model as the others do.
        time.sleep(1.1)
        victim = workers(proxy)[0]
        os.kill(victim.pid, signal.SIGTERM)

        def replaced() -> set[int] | None:
            pids = {worker.pid for worker in workers(proxy)}
            return pids if len(pids) == 2 and victim.pid not in pids else None

        current = wait_for(replaced, 15.0)
        assert current, "the worker was not replaced"

        listed: dict[str, set[str]] = {}
        shown: set[str] = set()
        deadline = time.monotonic() + 15.0
        # A new connection per round, so the kernel spreads them over both workers.
        while not current <= _pids_that_served(proxy, "/api/tags") and time.monotonic() < deadline:
            with ollama.Client(host=proxy.url, timeout=10) as client:
                for model in client.list().models:
                    listed.setdefault(str(model.model), set()).add(str(model.modified_at))
            with ollama.Client(host=proxy.url, timeout=10) as client:
                shown.add(str(client.show("fake-chat").modified_at))
        assert current <= _pids_that_served(proxy, "/api/tags"), "one worker never answered"
        assert all(len(dates) == 1 for dates in listed.values()), (
            f"/api/tags dates a model differently per worker: {listed}"
        )
        assert shown == listed["fake-chat:latest"], f"/api/show and /api/tags disagree: {shown}"
