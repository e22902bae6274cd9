"""The proxy's /api/chat against the floor, in rounds: the cheapest round of each counts.

On a shared machine the same run can cost twice as much a minute later, so one measurement of
the proxy and one of a reference say little about their ratio. Here every contender is measured
once per round, rounds alternate the order (what drifts within a round hits both ends alike),
and each keeps its cheapest round: the figure least inflated by other processes.

Contenders: the proxy; the floor apps (bench/floor_apps.py); the proxy behind nginx as deployed
(deploy/nginx); the proxy with one and with two workers under more load (scaling).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import floor, front, proxy, scenarios, wrk
from .nginx import Nginx
from .proxy import Served

_CASES = {case.key: case for case in scenarios.CASES}
SCALING = scenarios.Load(connections=64, threads=2)


@dataclass(frozen=True)
class Contender:
    key: str  # "<group>/<server>": the group is a case key or "scaling"
    case: scenarios.Case
    server: str  # what the table calls it
    url: str
    cpu: Callable[[], float]
    load: scenarios.Load | None = None  # None: the timing's 32 connections
    latency: bool = True


def _summed(*readers: Callable[[], float]) -> Callable[[], float]:
    return lambda: sum(read() for read in readers)


@contextlib.contextmanager
def contenders(
    workdir: Path, backend: Nginx, proxies: dict[str, Served]
) -> Iterator[list[Contender]]:
    """Starts what the proxies in `proxies` ("json", "sse") are compared with; stops it after."""
    chat, stream = _CASES["api_chat"], _CASES["api_chat_stream"]
    single, streaming = proxies["json"], proxies["sse"]
    with contextlib.ExitStack() as stack:
        floors = {
            app: stack.enter_context(floor.running(workdir, app, backend.json_url, backend.sse_url))
            for app in floor.APPS
        }
        deployed = stack.enter_context(front.running(workdir, single.url))
        two = stack.enter_context(
            proxy.running(workdir, "two-workers", backend.json_url + "/v1", workers=2)
        )
        found = [Contender("api_chat/proxy", chat, "the proxy", single.url, single.cpu_seconds)]
        found += [
            Contender(f"api_chat/{app}", chat, title, floors[app].url, floors[app].cpu_seconds)
            for app, title in floor.APPS.items()
        ]
        found.append(
            Contender("api_chat/nginx", chat, "the proxy behind nginx (deploy/nginx)",
                      deployed.url, _summed(single.cpu_seconds, deployed.cpu_seconds))
        )  # fmt: skip
        found.append(Contender("api_chat_stream/proxy", stream, "the proxy", streaming.url,
                               streaming.cpu_seconds))  # fmt: skip
        found += [
            Contender(f"api_chat_stream/{app}", stream, floor.APPS[app], floors[app].url,
                      floors[app].cpu_seconds)
            for app in ("session", "stdlib")  # bare has no streamed answer
        ]  # fmt: skip
        found += [
            Contender("scaling/1", chat, "the proxy, 1 worker", single.url, single.cpu_seconds,
                      SCALING, latency=False),
            Contender("scaling/2", chat, "the proxy, 2 workers (WEB_CONCURRENCY=2)", two.url,
                      two.cpu_seconds, SCALING, latency=False),
        ]  # fmt: skip
        yield found


def best(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The cheapest round's requests/s and CPU, and the fastest round's latency. Any round that
    went wrong makes the whole figure an error: a failure is never averaged away."""
    for figures in rounds:
        problem = figures["problem"] or figures.get("latency_problem")
        if problem or figures["cpu_ms"] is None:
            return {"problem": problem or "ERROR: no requests completed"}
    if not rounds:
        return {"problem": "ERROR: not measured"}
    cheapest = min(rounds, key=lambda figures: figures["cpu_ms"])
    summary: dict[str, Any] = {
        "problem": None,
        "rounds": len(rounds),
        "rps": cheapest["rps"],
        "cpu_ms": cheapest["cpu_ms"],
        "cpu_ms_max": max(figures["cpu_ms"] for figures in rounds),
    }
    if "p50_ms" in cheapest:
        fastest = min(rounds, key=lambda figures: figures["p50_ms"])
        summary.update(p50_ms=fastest["p50_ms"], p99_ms=fastest["p99_ms"])
    return summary


def run_rounds(
    workdir: Path,
    found: list[Contender],
    *,
    timing: scenarios.Timing,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    scripts: dict[str, Path] = {}
    for contender in found:
        case = contender.case
        results[contender.key] = {
            "case": case.key,
            "server": contender.server,
            "check": scenarios.verify(case, contender.url),
            "rounds": [],
        }
        name = contender.key.replace("/", "-")
        scripts[contender.key] = wrk.script(workdir / f"round-{name}.lua", case.method, case.body)
    for number in range(rounds):
        order = found if number % 2 == 0 else found[::-1]
        for contender in order:
            entry = results[contender.key]
            if entry["check"]:
                continue  # a wrong answer is reported as such, never timed
            progress(f"round {number + 1}/{rounds}: {contender.key} ({contender.server})")
            entry["rounds"].append(
                scenarios.guarded(
                    contender.url + contender.case.path,
                    scripts[contender.key],
                    contender.cpu,
                    timing,
                    latency=contender.latency,
                    warmup=number == 0,  # warm once: the servers stay up between rounds
                    load=contender.load,
                )
            )
    for entry in results.values():
        entry["best"] = {"problem": entry["check"]} if entry["check"] else best(entry["rounds"])
    return {"rounds": rounds, "contenders": results}
