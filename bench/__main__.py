"""`python -m bench [--quick] [--rounds N] [--streams N] [--json PATH]`: run everything, print
the tables.

nginx (fixed answers) and wrk (load) for throughput, CPU and latency; harness/fake_backend.py for
what needs a backend that trickles (open streams, time to first token). Every process started
here is stopped on the way out, whatever happens; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.fake_backend import FakeBackend

from . import compare, health, nginx, proxy, report, scenarios, streams, tools


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 1.5 min instead of 9")
    parser.add_argument(
        "--streams", type=int, default=500, metavar="N", help="open streams to hold (500)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="rounds of the comparison with the floor; the cheapest counts (3, --quick: 1)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="save the raw numbers here")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _raise_fd_limit(streams: int) -> None:
    """Each held stream costs two descriptors in this process (the client's socket, and the fake
    backend's, which runs here) and two in the proxy's worker (client and backend), which
    inherits this limit; 1024 more for everything else. Exits, saying so, when the machine's
    limit is too low: a run that fails on its 1,500th stream says less."""
    needed = 2 * streams + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        with contextlib.suppress(ValueError, OSError):  # root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, needed))
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # children inherit it
    if wanted != resource.RLIM_INFINITY and wanted < needed:
        sys.exit(
            f"holding {streams} streams needs {needed} file descriptors per process; the limit "
            f"here is {wanted} (ulimit -Hn): raise it, or pass a smaller --streams"
        )


def _wrk_scenarios(workdir: Path, timing: scenarios.Timing, rounds: int) -> dict[str, Any]:
    """The scenarios' figures ("cases"), the proxy against the floor in rounds ("floor"), and
    the same requests with three backends ("routing")."""
    with nginx.running(workdir) as server:
        urls = {"json": server.json_url, "sse": server.sse_url}
        worker = server.worker()

        def nginx_cpu() -> float:
            times = worker.cpu_times()
            return float(times.user + times.system)

        with (
            proxy.running(workdir, "json", urls["json"] + "/v1") as for_json,
            proxy.running(workdir, "sse", urls["sse"] + "/v1") as for_sse,
        ):
            proxies = {"json": for_json, "sse": for_sse}
            cases = scenarios.run_all(
                workdir,
                proxies=proxies,
                backends=urls,
                backend_cpu=nginx_cpu,
                timing=timing,
                progress=_progress,
            )
            with compare.contenders(workdir, server, proxies) as found:
                floor = compare.run_rounds(
                    workdir, found, timing=timing, rounds=rounds, progress=_progress
                )
        listing = scenarios.backends_file(workdir / "backends.json", urls["json"] + "/v1")
        with proxy.running(workdir, "routed", "", BACKENDS_FILE=str(listing)) as routed:
            routing = scenarios.run_routing(
                workdir, routed=routed, timing=timing, progress=_progress
            )
    return {"cases": cases, "floor": floor, "routing": routing}


def _stream_scenarios(workdir: Path, count: int, ttft_requests: int) -> dict[str, Any]:
    fake = FakeBackend()
    # socketserver listens with a backlog of 5; hundreds of streams arrive at once here.
    fake._server.socket.listen(4096)
    with fake:
        # As many connections as streams: holding them all leaves the worker at capacity.
        pool = str(count)
        with proxy.running(workdir, "fake", fake.url, WORKER_CONNECTIONS=pool) as trickle:
            _progress(f"time to first token, {ttft_requests} requests each way")
            ttft = [
                _guarded(streams.first_token, trickle, fake, ttft_requests, pace)
                for pace in (0.05, 0.0)
            ]
            _progress(f"holding {count} streams open")
            memory = _guarded(streams.open_streams, trickle, fake, count)
            _progress("/health while the heaviest request is sent again and again")
            heavy = _guarded(
                health.under_heavy_requests, trickle.url, trickle.url + "/health", streams.MODEL
            )
    return {"ttft": ttft, "memory": memory, "health_heavy": heavy}


def _guarded(scenario: Any, *args: Any) -> dict[str, Any]:
    """A failed scenario is a line in the table, not the end of the run."""
    try:
        result: dict[str, Any] = scenario(*args)
    except (OSError, RuntimeError, ValueError) as exc:
        return {"error": f"ERROR: {exc}"}
    return result


def _log_notes(workdir: Path) -> list[str]:
    notes = []
    for log in sorted([*workdir.glob("proxy-*.log"), *workdir.glob("floor-*.log")]):
        text = log.read_text(errors="replace")
        tracebacks = text.count("Traceback (most recent call last)")
        if tracebacks:
            notes.append(f"{log.name}: {tracebacks} traceback(s) in the server's log")
    return notes


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    tools.ensure_tools()
    _raise_fd_limit(args.streams)
    if args.quick:
        timing = scenarios.Timing(warmup=1, throughput=1, latency=1, warm_backend=False)
        ttft_requests = 10
    else:
        timing, ttft_requests = scenarios.Timing(warmup=2, throughput=7, latency=5), 50
    results: dict[str, Any] = {"machine": tools.machine(), "timing": vars(timing)}
    busy_before = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        workdir = Path(tmp)
        results.update(_wrk_scenarios(workdir, timing, args.rounds))
        results.update(_stream_scenarios(workdir, args.streams, ttft_requests))
        results["notes"] = _log_notes(workdir)
    if busy_before > 0.5:
        results["notes"].append(
            f"load average was {busy_before:.2f} at the start: other processes shared the "
            "machine, so absolute figures are noisy (the ratios less so)"
        )
    results["seconds"] = round(time.monotonic() - started, 1)
    _progress(f"done in {results['seconds']} s")
    print(report.render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
