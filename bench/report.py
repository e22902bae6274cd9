"""The markdown table: backend alone beside the proxy, the difference, and the target.

A figure whose run had socket errors, error statuses or a wrong answer is replaced by what went
wrong: a clean-looking number from a broken run is worse than no number.
"""

from __future__ import annotations

from typing import Any

from . import floor_report
from .table import Table, verdict

# The targets the project set itself: one gevent worker on a 2-core machine.
CPU_TARGET_MS = {"api_chat": 0.4, "api_chat_stream": 0.6}
ADDED_P50_TARGET_MS = 1.0
ROUTING_TARGET = 1.05  # three backends cost at most 5% more CPU per request than one
STREAMS_TARGET = 2000
KB_PER_STREAM_TARGET = 50.0
HEALTH_TARGET_MS = 100.0


_FOOTNOTES = [
    "CPU per request: user+system time of the one process serving (the proxy's gevent worker, "
    "or nginx's worker for the backend alone) over the requests wrk completed.",
    "Time to first token: each request closes once its first text is in, so through the proxy "
    "a paced request also pays a new backend connection; without a wait the proxy mostly "
    "reuses pooled ones.",
    "Memory: RSS of the worker; per stream = (RSS with N open - idle RSS) / N. The allocator "
    "keeps freed memory, so RSS after closing stays above idle.",
]


def _ms(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} ms"


def _case_rows(table: Table, key: str, entry: dict[str, Any], whole_cpu: float | None) -> None:
    """The rows of one scenario; `whole_cpu` is the proxy's CPU for a non-streamed /api/chat."""
    direct, proxy, title = entry["direct"], entry["proxy"], entry["title"]
    problem = entry["check"] or proxy["problem"]
    d_problem = direct["problem"]
    if d_problem or problem:
        table.add(title, "req/s, 32 conn.", d_problem or f"{direct['rps']:,.0f}",
                  problem or f"{proxy['rps']:,.0f}", "", "")  # fmt: skip
    else:
        ratio = proxy["rps"] / direct["rps"] if direct["rps"] else 0.0
        shown = f"{ratio:.3f}× (1/{1 / ratio:,.0f})" if ratio else "0×"
        table.add(title, "req/s, 32 conn.", f"{direct['rps']:,.0f}", f"{proxy['rps']:,.0f}",
                  shown, "")  # fmt: skip
        target = CPU_TARGET_MS.get(key)
        limit = "" if target is None else verdict(proxy["cpu_ms"], target, f"≤ {target} ms")
        added = proxy["cpu_ms"] - direct["cpu_ms"]
        table.add("", "CPU per request", _ms(direct["cpu_ms"]) + " (nginx)",
                  _ms(proxy["cpu_ms"]), f"+{_ms(added)}", limit)  # fmt: skip
        if entry["chunks"]:
            n = entry["chunks"]
            table.add("", f"CPU per chunk (request / {n})", _ms(direct["cpu_ms"] / n, 4),
                      _ms(proxy["cpu_ms"] / n, 4), f"+{_ms(added / n, 4)}", "")  # fmt: skip
            if whole_cpu is not None:
                marginal = (proxy["cpu_ms"] - whole_cpu) / n
                table.add("", f"CPU per chunk, marginal: (this − stream:false) / {n}", "",
                          _ms(marginal, 4), "", "")  # fmt: skip
    if "p50_ms" not in proxy:
        return
    lat_problem = problem or proxy["latency_problem"]
    for name in ("p50", "p99"):
        d, p = direct[f"{name}_ms"], proxy[f"{name}_ms"]
        if direct["latency_problem"] or lat_problem:
            table.add("", f"latency {name}, 1 conn.", direct["latency_problem"] or _ms(d),
                      lat_problem or _ms(p), "", "")  # fmt: skip
            continue
        target = "" if name == "p99" else verdict(p - d, ADDED_P50_TARGET_MS, "≤ 1 ms added")
        table.add("", f"latency {name}, 1 conn.", _ms(d), _ms(p), f"+{_ms(p - d)}", target)


def _routing_rows(table: Table, cases: dict[str, Any], routing: dict[str, Any]) -> None:
    """CPU per request with three backends beside the same request with one."""
    for key, entry in routing.items():
        title = f"{entry['title']}, three backends"
        one = cases.get(key, {}).get("proxy", {})
        problem = entry["check"] or entry["proxy"]["problem"] or one.get("problem")
        three_ms, one_ms = entry["proxy"]["cpu_ms"], one.get("cpu_ms")
        if problem or not three_ms or not one_ms:
            table.add(title, "CPU per request", "", problem or "n/a", "", "")
            continue
        ratio = three_ms / one_ms
        target = verdict(ratio, ROUTING_TARGET, f"≤ {ROUTING_TARGET:g}× one backend")
        table.add(title, "CPU per request", "", _ms(three_ms), f"{ratio:.3f}× one backend",
                  target)  # fmt: skip


def _ttft_rows(table: Table, runs: list[dict[str, Any]]) -> None:
    for ttft in runs:
        if "error" in ttft:
            table.add("time to first token", "p50", "", ttft["error"], "", "")
            continue
        d, p = ttft["direct_p50_ms"], ttft["proxy_p50_ms"]
        pace = f"{ttft['pace_ms']:g} ms before each piece" if ttft["pace_ms"] else "no wait"
        table.add(f"time to first token ({ttft['requests']} sequential, backend: {pace})",
                  "p50", _ms(d, 2), _ms(p, 2), f"+{_ms(p - d, 2)}", "")  # fmt: skip


def _memory_rows(table: Table, memory: dict[str, Any]) -> None:
    if "error" in memory:
        table.add("open streams", "worker RSS", "", memory["error"], "", "")
        return
    n, idle = memory["streams"], memory["rss_idle_kb"]
    table.add("memory, idle worker", "RSS", "", f"{idle / 1024:.1f} MB", "", "")
    ok = memory["started"] == n and memory["open_at_backend"] >= n
    held = f"{memory['rss_held_kb'] / 1024:.1f} MB"
    status = f"{memory['started']}/{n} started, {memory['open_at_backend']} open at backend"
    table.add(f"memory, {n} open streams", "RSS", "", held if ok else f"ERROR: {status}",
              f"+{(memory['rss_held_kb'] - idle) / 1024:.1f} MB", "")  # fmt: skip
    per = memory["kb_per_stream"]
    target = verdict(per, KB_PER_STREAM_TARGET, f"≤ {KB_PER_STREAM_TARGET:g} KB")
    if n < STREAMS_TARGET:
        target += f" (target is {STREAMS_TARGET:,} streams: --streams {STREAMS_TARGET})"
    table.add("", "per open stream", "", f"{per:.1f} KB" if ok else "n/a", "", target)
    closed = "yes" if memory["all_closed_after"] else "NO: backend streams left open"
    after = f"{memory['rss_after_close_kb'] / 1024:.1f} MB"
    table.add("", "after closing all", "", f"RSS {after}", f"backend streams closed: {closed}", "")


def _health_row(table: Table, title: str, where: str, probed: dict[str, Any] | None) -> None:
    if not probed:
        return
    if "error" in probed:
        table.add(title, where, "", probed["error"], "", "")
        return
    figure = f"p50 {_ms(probed['p50_ms'], 1)}, max {_ms(probed['max_ms'], 1)}"
    # An unanswered probe is over any limit: the kubelet counts it as a failure.
    worst = float("inf") if probed["failed"] else probed["max_ms"]
    if probed["failed"]:
        figure += f"; {probed['failed']}/{probed['probes']} probes unanswered within 1 s"
    table.add(title, where, "", figure, "",
              verdict(worst, HEALTH_TARGET_MS, f"max ≤ {HEALTH_TARGET_MS:g} ms"))  # fmt: skip


def _health_rows(table: Table, memory: dict[str, Any], heavy: dict[str, Any] | None) -> None:
    if "streams" in memory:
        title = f"/health, {memory['streams']} streams holding every worker connection"
        _health_row(table, title, "operations port", memory.get("health"))
    if heavy and "error" not in heavy:
        statuses = "/".join(map(str, heavy["heavy_statuses"]))
        title = (f"/health, {heavy['body_mb']:.0f} MB /api/chat bodies sent back to back "
                 f"({heavy['heavy_requests']}, {heavy['heavy_seconds'] or 0:.1f} s each, "
                 f"status {statuses})")  # fmt: skip
    else:
        title = "/health, the heaviest request sent back to back"
    _health_row(table, title, "worker's own port", heavy)


def render(results: dict[str, Any]) -> str:
    machine = ", ".join(f"{k} {v}" for k, v in results["machine"].items())
    timing = results["timing"]
    out = [
        f"Machine: {machine}.",
        f"Proxy: one gunicorn gevent worker. wrk -t1, {timing['connections']} connections for "
        f"{timing['throughput']} s (CPU of the serving process / requests), 1 connection for "
        f"{timing['latency']} s (latency); {timing['warmup']} s warm-up each"
        + ("." if timing.get("warm_backend", True) else " (the proxy only)."),
        "",
    ]
    table = Table(("Scenario", "Figure", "Backend alone", "Through proxy", "Proxy vs backend",
                   "Target"))  # fmt: skip
    cases = results["cases"]
    whole = cases.get("api_chat")
    whole_cpu = (
        None
        if not whole or whole["check"] or whole["proxy"]["problem"]
        else (whole["proxy"]["cpu_ms"])
    )
    for key, entry in cases.items():
        _case_rows(table, key, entry, whole_cpu)
    _routing_rows(table, cases, results.get("routing", {}))
    _ttft_rows(table, results["ttft"])
    _memory_rows(table, results["memory"])
    _health_rows(table, results["memory"], results.get("health_heavy"))
    out.append(table.render())
    notes = [*_FOOTNOTES]
    if "floor" in results:
        out += ["", floor_report.render(results["floor"])]
        notes += floor_report.footnotes(results["floor"])
    out += ["", *(f"- {note}" for note in [*notes, *results.get("notes", [])])]
    return "\n".join(out)
