"""The second table: the proxy beside the floor apps, behind nginx, and with two workers.

Every figure is the cheapest of the rounds (bench/compare.py); the CPU cell shows the dearest
round too, so the noise of the run is on the page beside the figure.
"""

from __future__ import annotations

from typing import Any

from .table import Table, verdict

# The proxy's CPU per request over the requests.Session relay's, at most (issue 14).
SESSION_RATIO_TARGET = {"api_chat": 0.7, "api_chat_stream": 1.0}

_HEAD = ("Case", "Server", "req/s", "CPU per request", "latency p50 / p99, 1 conn.",
         "Comparison", "Target")  # fmt: skip
_GROUPS = {
    "api_chat": "/api/chat, stream:false",
    "api_chat_stream": "/api/chat, streamed",
    "scaling": "scaling: /api/chat, stream:false, wrk -t2 -c64",
}


def _cpu(best: dict[str, Any]) -> str:
    if best["rounds"] == 1:
        return f"{best['cpu_ms']:.3f} ms"
    return f"{best['cpu_ms']:.3f} ms (dearest round {best['cpu_ms_max']:.3f})"


def _latency(best: dict[str, Any]) -> str:
    if "p50_ms" not in best:
        return ""
    return f"{best['p50_ms']:.3f} / {best['p99_ms']:.3f} ms"


def _comparison(group: str, server: str, best: dict[str, Any], bests: dict[str, Any]) -> str:
    """How the proxy's row relates to this one; "" where nothing sensible compares."""
    mine = bests.get(f"{group}/proxy") or {}
    if group == "scaling":
        one = bests.get("scaling/1") or {}
        if server == "2" and not one.get("problem") and one.get("rps"):
            return f"{best['rps'] / one['rps']:.2f}× the req/s of 1 worker"
        return ""
    if mine.get("problem") or server == "proxy":
        return ""
    if server == "nginx":
        if "p50_ms" in mine:
            return f"+{best['p50_ms'] - mine['p50_ms']:.3f} ms p50 over the proxy alone"
        return ""
    return f"proxy ÷ this: {mine['cpu_ms'] / best['cpu_ms']:.2f}× CPU"


def _target(group: str, server: str, best: dict[str, Any], bests: dict[str, Any]) -> str:
    limit = SESSION_RATIO_TARGET.get(group)
    mine = bests.get(f"{group}/proxy") or {}
    if limit is None or server != "session":
        return ""
    text = f"proxy ≤ {limit:g}× this"
    if mine.get("problem"):
        return text
    return verdict(mine["cpu_ms"] / best["cpu_ms"], limit, text)


def render(floor: dict[str, Any]) -> str:
    contenders = floor["contenders"]
    bests = {key: entry["best"] for key, entry in contenders.items()}
    rounds = floor["rounds"]
    which = "one round" if rounds == 1 else f"the cheapest of {rounds} rounds"
    heading = (
        f"Against the floor, and scaling: {which}, one gevent worker each unless said, same "
        "backend and wrk."
    )
    table = Table(_HEAD)
    shown: set[str] = set()
    for key, entry in contenders.items():
        group, server = key.split("/", 1)
        title = "" if group in shown else _GROUPS.get(group, group)
        shown.add(group)
        best = entry["best"]
        if best["problem"]:
            table.add(title, entry["server"], best["problem"], "", "", "", "")
            continue
        cpu = _cpu(best)
        if server == "nginx":
            cpu += ", proxy + nginx"
        elif group == "scaling":
            cpu += ", all workers"
        table.add(title, entry["server"], f"{best['rps']:,.0f}", cpu, _latency(best),
                  _comparison(group, server, best, bests),
                  _target(group, server, best, bests))  # fmt: skip
    return heading + "\n\n" + table.render()


def footnotes(floor: dict[str, Any]) -> list[str]:
    rounds = floor["rounds"]
    return [
        f"Second table: {rounds} round{'' if rounds == 1 else 's'} (--rounds); each round "
        "measures every server once, in alternating order. Shown: the cheapest round's req/s "
        "and CPU per request (and the dearest round's CPU, for the noise), and the fastest "
        "round's latency. The first table's figures are one measurement each.",
        "Floor apps (bench/floor_apps.py): one gunicorn gevent worker each, keep-alive 75 s "
        "like the proxy, but no access log, metrics or validation. bare: a fixed answer; "
        "requests.Session relay: parse, one pooled POST, parse, answer (streamed: iter_lines, "
        "one NDJSON line per SSE line); http.client relay: the same on pooled HTTPConnections.",
        "Behind nginx: deploy/nginx's template as deployed (its access log on), in front of the "
        "same one-worker proxy; CPU is the proxy's worker plus nginx's.",
        "Scaling: wrk -t2 -c64 against one worker and against two; the machine's cores are "
        "shared with wrk and the nginx backend, so two workers cannot have a core each.",
    ]
