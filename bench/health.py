"""`/health` while a worker is as busy as a client can make it.

Two loads, each held while a probe asks `/health` PROBES times:

- every connection of the worker held by a stream: the worker cannot accept another, so
  liveness is served on the operations port by gunicorn's master (what Kubernetes probes);
- a request whose body costs the worker the most CPU a request is allowed to (the largest
  body, made of the most messages), sent again and again: the worker's own `/health`, on the
  main port, must still answer while it is validated and translated.

The probes run in a child process (`python -m bench.health URL COUNT`), so this process's own
work (the fake backend lives here and parses the heavy bodies too) cannot delay them. Each
probe is what a kubelet sends: a new connection, `GET /health`, a 1 s timeout.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

PROBES = 40
INTERVAL = 0.05  # seconds between probes
PROBE_TIMEOUT = 1.0  # Kubernetes' default timeoutSeconds
TARGET_MS = 100.0
# The heavy request: the most messages a request may have, in a body just under the default
# MAX_BODY_BYTES (64 MiB).
HEAVY_MESSAGES = 50_000
HEAVY_TEXT = 1_200


def heavy_chat(model: str) -> bytes:
    """An /api/chat body of HEAVY_MESSAGES messages, ~60 MB: the most work a request may ask."""
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"{i} " + "x" * HEAVY_TEXT}
        for i in range(HEAVY_MESSAGES)
    ]
    return json.dumps({"model": model, "messages": turns, "stream": False}).encode()


def probe(url: str, count: int = PROBES) -> dict[str, Any]:
    """p50 and max of `count` probes of `url`, from a child process; a failed probe (no 200
    within PROBE_TIMEOUT) is counted apart and not timed."""
    try:
        child = subprocess.run(
            [sys.executable, "-m", "bench.health", url, str(count)],
            capture_output=True,
            text=True,
            timeout=count * (PROBE_TIMEOUT + INTERVAL) + 30,
            check=True,
        )
    except subprocess.SubprocessError as exc:
        return {"error": f"ERROR: the probe failed: {exc}"}
    return _summary(count, json.loads(child.stdout)["ms"])


def _summary(count: int, times: list[float]) -> dict[str, Any]:
    failed = count - len(times)
    if not times:
        return {"probes": count, "failed": failed, "p50_ms": None, "max_ms": None}
    return {
        "probes": count,
        "failed": failed,
        "p50_ms": statistics.median(times),
        "max_ms": max(times),
    }


def under_heavy_requests(proxy_url: str, health_url: str, model: str) -> dict[str, Any]:
    """The worker's `/health` while the heaviest request is sent back to back."""
    body = heavy_chat(model)
    stop = threading.Event()
    outcomes: list[tuple[int, float]] = []

    def send_heavy() -> None:
        parts = urlsplit(proxy_url)
        while not stop.is_set():
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
            try:
                start = time.perf_counter()
                conn.request("POST", "/api/chat", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                outcomes.append((response.status, time.perf_counter() - start))
            except OSError:
                outcomes.append((0, time.perf_counter() - start))
            finally:
                conn.close()

    sender = threading.Thread(target=send_heavy, daemon=True)
    sender.start()
    time.sleep(0.5)  # the first heavy body is in the worker
    try:
        result = probe(health_url)
    finally:
        stop.set()
        sender.join(timeout=120)
    statuses = sorted({status for status, _ in outcomes})
    return {
        **result,
        "body_mb": len(body) / 1e6,
        "heavy_requests": len(outcomes),
        "heavy_seconds": statistics.median(s for _, s in outcomes) if outcomes else None,
        "heavy_statuses": statuses,
    }


def _probe_here(url: str, count: int) -> list[float]:
    parts = urlsplit(url)
    times = []
    for _ in range(count):
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=PROBE_TIMEOUT)
        start = time.perf_counter()
        try:
            conn.request("GET", parts.path or "/health")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                times.append((time.perf_counter() - start) * 1000)
        except OSError:
            pass  # over the timeout, refused or reset: a failed probe
        finally:
            conn.close()
        time.sleep(INTERVAL)
    return times


if __name__ == "__main__":
    print(json.dumps({"ms": _probe_here(sys.argv[1], int(sys.argv[2]))}))
