"""The wrk scenarios: each endpoint through the proxy and the same answer from nginx directly.

For every target: one known-good request first (a proxy that answers 200 with the wrong body
would otherwise look fast), a warm-up, a throughput run at 32 connections with the server's CPU
time read before and after, then a latency run at one connection.
"""

from __future__ import annotations

import http.client
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import payloads, wrk

Check = Callable[[bytes], bool]


def _lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def _streamed_chat(body: bytes) -> bool:
    lines = _lines(body)
    text = [line["message"]["content"] for line in lines[:-1]]
    return lines[-1].get("done") is True and text == payloads.PIECES


CHECKS: dict[str, Check] = {
    "api_chat": lambda b: json.loads(b)["message"]["content"] == payloads.ANSWER,
    "api_chat_stream": _streamed_chat,
    "v1_chat": lambda b: b == payloads.CHAT_COMPLETION.encode(),
    "v1_chat_stream": lambda b: b == payloads.CHAT_STREAM.encode(),
    "api_generate": lambda b: json.loads(b)["response"] == payloads.ANSWER,
    "api_embed": lambda b: len(json.loads(b)["embeddings"][0]) == 768,
    "api_tags": lambda b: json.loads(b)["models"][0]["name"] == "bench:latest",
}


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    backend: str  # which nginx server answers: "json" or "sse"
    path: str
    body: str | None
    direct_path: str
    direct_body: str | None
    latency: bool = True
    chunks: int = 0  # streamed pieces per answer, for the CPU per chunk

    @property
    def method(self) -> str:
        return "GET" if self.body is None else "POST"


_CHAT = "/v1/chat/completions"
CASES = [
    Case("api_chat", "/api/chat, stream:false", "json", "/api/chat", payloads.OLLAMA_CHAT,
         _CHAT, payloads.OPENAI_CHAT),
    Case("api_chat_stream", f"/api/chat, streamed ({payloads.STREAM_PIECES} chunks)", "sse",
         "/api/chat", payloads.OLLAMA_CHAT_STREAM, _CHAT, payloads.OPENAI_CHAT_STREAM,
         chunks=payloads.STREAM_PIECES),
    Case("v1_chat", "/v1/chat/completions pass-through", "json", _CHAT, payloads.OPENAI_CHAT,
         _CHAT, payloads.OPENAI_CHAT),
    Case("v1_chat_stream", "/v1/chat/completions SSE pass-through", "sse", _CHAT,
         payloads.OPENAI_CHAT_STREAM, _CHAT, payloads.OPENAI_CHAT_STREAM),
    Case("api_generate", "/api/generate, stream:false", "json", "/api/generate",
         payloads.OLLAMA_GENERATE, _CHAT, payloads.OPENAI_CHAT, latency=False),
    Case("api_embed", "/api/embed (768 floats)", "json", "/api/embed", payloads.OLLAMA_EMBED,
         "/v1/embeddings", payloads.OPENAI_EMBED, latency=False),
    Case("api_tags", "/api/tags", "json", "/api/tags", None, "/v1/models", None,
         latency=False),
]  # fmt: skip


@dataclass(frozen=True)
class Timing:
    warmup: int  # seconds of each wrk run; wrk takes whole seconds only
    throughput: int
    latency: int
    connections: int = 32
    warm_backend: bool = True  # nginx's fixed answers need no warm-up; --quick skips it


def fetch(url: str, method: str, path: str, body: str | None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body.encode() if body is not None else None, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def verify(case: Case, url: str) -> str | None:
    """None when one request through the proxy gives the right answer; what is wrong otherwise."""
    try:
        status, body = fetch(url, case.method, case.path, case.body)
    except OSError as exc:
        return f"ERROR: {exc}"
    if status != 200:
        return f"ERROR: HTTP {status}: {body[:200]!r}"
    try:
        if CHECKS[case.key](body):
            return None
    except (ValueError, LookupError, TypeError):
        pass
    return f"ERROR: wrong answer: {body[:200]!r}"


@dataclass(frozen=True)
class Load:
    """How hard wrk pushes in the throughput run: one worker needs 32 connections, two need 64
    and a second wrk thread (one thread cannot open and serve them all fast enough)."""

    connections: int = 32
    threads: int = 1


def measure(
    url: str,
    lua: Path,
    cpu: Callable[[], float],
    timing: Timing,
    *,
    latency: bool,
    warmup: bool,
    load: Load | None = None,
) -> dict[str, Any]:
    """wrk at 32 connections, or `load` (requests/s, server CPU per request), then at 1
    (latency)."""
    push = load or Load(timing.connections)
    warm = None
    if warmup:
        warm = wrk.run(
            url, lua, connections=push.connections, threads=push.threads, seconds=timing.warmup
        )
    before = cpu()
    load_run = wrk.run(
        url, lua, connections=push.connections, threads=push.threads, seconds=timing.throughput
    )
    used = cpu() - before
    figures: dict[str, Any] = {
        "requests": load_run.requests,
        "rps": load_run.rps,
        "cpu_ms": used * 1000 / load_run.requests if load_run.requests else None,
        "problem": (warm and warm.problem()) or load_run.problem(),
        "errors": load_run.errors,
    }
    if latency:
        before = cpu()
        one = wrk.run(url, lua, connections=1, seconds=timing.latency)
        used = cpu() - before
        figures["p50_ms"], figures["p99_ms"] = one.p50_ms, one.p99_ms
        figures["cpu_ms_c1"] = used * 1000 / one.requests if one.requests else None
        figures["latency_problem"] = one.problem()
    return figures


def guarded(*args: Any, latency: bool, **kwargs: Any) -> dict[str, Any]:
    """measure(), with a wrk that failed to run reported in the table instead of a crash."""
    try:
        return measure(*args, latency=latency, **kwargs)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        problem = f"ERROR: {exc}"
        failed: dict[str, Any] = {"rps": 0.0, "cpu_ms": None, "problem": problem}
        if latency:
            failed.update(p50_ms=None, p99_ms=None, latency_problem=problem)
        return failed


def run_all(
    workdir: Path,
    *,
    proxies: dict[str, Any],  # backend kind -> proxy.Served
    backends: dict[str, str],  # backend kind -> nginx base URL
    backend_cpu: Callable[[], float],
    timing: Timing,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    direct_done: dict[tuple[str, str], dict[str, Any]] = {}
    for case in CASES:
        entry: dict[str, Any] = {"title": case.title, "chunks": case.chunks}
        where = (case.backend, case.direct_path)
        if where not in direct_done:
            progress(f"{case.direct_path} on nginx ({case.backend})")
            lua = wrk.script(workdir / f"direct-{case.key}.lua", case.method, case.direct_body)
            url = backends[case.backend] + case.direct_path
            direct_done[where] = guarded(
                url, lua, backend_cpu, timing, latency=case.latency, warmup=timing.warm_backend
            )
        entry["direct"] = direct_done[where]
        proxy = proxies[case.backend]
        progress(f"{case.path} through the proxy")
        entry["check"] = verify(case, proxy.url)
        lua = wrk.script(workdir / f"proxy-{case.key}.lua", case.method, case.body)
        entry["proxy"] = guarded(
            proxy.url + case.path, lua, proxy.cpu_seconds, timing, latency=case.latency, warmup=True
        )
        results[case.key] = entry
    return results


# The cost of routing: the same requests through a proxy with three backends, each serving the
# model (three deployments to choose from). /v1 with several backends parses the body's model.
ROUTED_CASES = ("api_chat", "v1_chat")


def backends_file(path: Path, backend_url: str, count: int = 3) -> Path:
    document = {
        "backends": [{"name": f"replica-{n}", "base_url": backend_url} for n in range(count)]
    }
    path.write_text(json.dumps(document))
    return path


def run_routing(
    workdir: Path, *, routed: Any, timing: Timing, progress: Callable[[str], None]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for case in CASES:
        if case.key not in ROUTED_CASES:
            continue
        progress(f"{case.path} through the proxy with three backends")
        lua = wrk.script(workdir / f"routed-{case.key}.lua", case.method, case.body)
        results[case.key] = {
            "title": case.title,
            "check": verify(case, routed.url),
            "proxy": guarded(
                routed.url + case.path, lua, routed.cpu_seconds, timing, latency=False, warmup=True
            ),
        }
    return results
