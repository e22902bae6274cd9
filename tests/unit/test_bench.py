"""The benchmark's own logic, without running it: the floor apps' answers, the rounds' choice of
figure, the verdicts, the strace summary. A wrong figure here would go unnoticed in a table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import compare, floor_apps, floor_report, health, payloads, report, scenarios, syscalls
from bench.table import Table


def test_the_bare_floor_answers_what_the_bench_checks() -> None:
    client = floor_apps.bare.test_client()
    reply = client.post("/api/chat", data=payloads.OLLAMA_CHAT, content_type="application/json")
    assert reply.status_code == 200
    assert scenarios.CHECKS["api_chat"](reply.data)


def test_the_relays_translate_an_sse_stream_into_the_pieces_and_a_done_line() -> None:
    lines = payloads.CHAT_STREAM.encode().splitlines()
    body = b"".join(floor_apps._ndjson(iter(lines), payloads.MODEL))
    assert scenarios.CHECKS["api_chat_stream"](body)


def test_the_relays_answer_a_whole_completion_in_ollama_shape() -> None:
    answer = floor_apps._answer(json.loads(payloads.CHAT_COMPLETION))
    assert scenarios.CHECKS["api_chat"](answer)


def _round(cpu_ms: float, p50_ms: float, problem: str | None = None) -> dict[str, Any]:
    return {"rps": 1 / cpu_ms, "cpu_ms": cpu_ms, "problem": problem, "p50_ms": p50_ms,
            "p99_ms": 2 * p50_ms, "latency_problem": None}  # fmt: skip


def test_the_cheapest_round_counts_and_latency_comes_from_the_fastest() -> None:
    best = compare.best([_round(1.2, 0.9), _round(0.8, 1.1), _round(1.0, 0.7)])
    assert best["cpu_ms"] == 0.8
    assert best["rps"] == 1 / 0.8
    assert best["cpu_ms_max"] == 1.2
    assert (best["p50_ms"], best["p99_ms"]) == (0.7, 1.4)


def test_one_failed_round_makes_the_figure_an_error() -> None:
    best = compare.best([_round(0.8, 0.7), _round(0.5, 0.5, problem="ERROR: socket read 3")])
    assert best == {"problem": "ERROR: socket read 3"}


@pytest.mark.parametrize(("proxy_ms", "mark"), [(0.69, "✓"), (0.71, "✗")])
def test_the_proxy_is_held_to_the_session_relay(proxy_ms: float, mark: str) -> None:
    def entry(server: str, cpu_ms: float) -> dict[str, Any]:
        return {"server": server, "best": {**compare.best([_round(cpu_ms, 0.5)])}}

    floor = {
        "rounds": 1,
        "contenders": {
            "api_chat/proxy": entry("the proxy", proxy_ms),
            "api_chat/session": entry("Flask + requests.Session relay", 1.0),
        },
    }
    session_row = floor_report.render(floor).splitlines()[-1]
    assert session_row.endswith(f"| proxy ≤ 0.7× this {mark} |")


def test_strace_summary_counts_calls_and_errors_by_name() -> None:
    summary = """\
     calls    errors syscall
 --------- --------- ----------------
      4000           sendto
      2010        10 recvfrom
 --------- --------- ----------------
      6010        10 total
"""
    assert syscalls.parse(summary) == {"sendto": (4000, 0), "recvfrom": (2010, 10)}


@pytest.mark.parametrize(
    ("times", "mark"), [([3.0, 2.0, 99.0], "✓"), ([3.0, 2.0, 101.0], "✗"), ([3.0], "✗")]
)
def test_a_liveness_probe_over_100_ms_or_unanswered_fails_its_row(
    times: list[float], mark: str
) -> None:
    probed = health._summary(3, times)  # three probes, as many answered as there are times
    table = Table(("a", "b", "c", "d", "e", "f"))
    report._health_row(table, "title", "port", probed)
    assert table.rows[0][-1] == f"max ≤ 100 ms {mark}"
    assert ("2/3 probes unanswered within 1 s" in table.rows[0][3]) == (len(times) == 1)


def test_the_heavy_request_is_the_most_a_request_may_ask() -> None:
    from app.config import Settings
    from app.translate.limits import MAX_MESSAGES

    body = health.heavy_chat("m")
    assert len(json.loads(body)["messages"]) == MAX_MESSAGES
    assert 0.9 * Settings().max_body_bytes < len(body) < Settings().max_body_bytes
