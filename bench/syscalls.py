"""`python -m bench.syscalls [--requests N]`: system calls per /api/chat request, by name.

Each server (the proxy and the two relays of bench/floor_apps.py) gets N sequential requests
over one keep-alive connection, with the nginx backend of the bench behind it, while
`strace -f -c` counts its worker's calls (every thread: gevent's resolver pool included).
Counting is exact, unlike timing: strace slows the worker several times over, but a request
makes the same calls, bar the waits (epoll_wait) a slower worker needs fewer of. The idle
worker's own calls (gunicorn's heartbeat, the proxy's process sampler) are counted on their own
for a second, to show they do not matter at N requests.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

from . import floor, nginx, proxy, scenarios, tools
from .proxy import Served

Counts = dict[str, tuple[int, int]]  # syscall -> (calls, errors)


def parse(summary: str) -> Counts:
    """strace -c -U calls,errors,name: `calls [errors] name` rows between dashed lines."""
    counts: Counts = {}
    for line in summary.splitlines():
        fields = line.split()
        if not fields or not fields[0].isdigit() or fields[-1] == "total":
            continue
        errors = int(fields[1]) if len(fields) == 3 else 0
        counts[fields[-1]] = (int(fields[0]), errors)
    return counts


class Traced:
    """strace counting a process's calls from start to stop."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        argv = [tools.which("strace"), "-f", "-c", "-U", "calls,errors,name", "-o", str(out)]
        self._process = subprocess.Popen([*argv, "-p", str(pid)], stderr=subprocess.PIPE, text=True)
        assert self._process.stderr is not None
        for line in self._process.stderr:  # "Process N attached", one line per thread
            if "attached" in line:
                break
        else:
            raise RuntimeError(f"strace could not attach to {pid}")
        time.sleep(0.5)  # the worker's other threads are attached next

    def stop(self) -> Counts:
        self._process.send_signal(signal.SIGINT)  # detach, write the summary
        self._process.communicate(timeout=30)
        return parse(self.out.read_text())


def _requests(url: str, case: scenarios.Case, count: int) -> Iterator[None]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    body = (case.body or "").encode()
    try:
        for _ in range(count):
            conn.request(case.method, case.path, body, headers)
            response = conn.getresponse()
            if response.status != 200 or not scenarios.CHECKS[case.key](response.read()):
                raise RuntimeError(f"{case.path} went wrong through {url}")
            yield
    finally:
        conn.close()


def count(served: Served, case: scenarios.Case, requests: int, out: Path) -> Counts:
    for _ in _requests(served.url, case, 50):  # warm: pools filled, caches loaded
        pass
    traced = Traced(served.worker.pid, out)
    for _ in _requests(served.url, case, requests):
        pass
    return traced.stop()


def idle_per_second(served: Served, out: Path) -> int:
    traced = Traced(served.worker.pid, out)
    time.sleep(1.0)
    return sum(calls for calls, _ in traced.stop().values())


def _column(counts: Counts, name: str, requests: int) -> str:
    calls, errors = counts.get(name, (0, 0))
    shown = f"{calls / requests:.2f}"
    return shown + (f" ({errors / requests:.2f} failed)" if errors else "")


def _table(results: dict[str, Counts], requests: int) -> list[str]:
    """One column per server, one row per syscall, most frequent first."""
    servers = list(results)
    order: Counter[str] = Counter()
    for counts in results.values():
        order.update({name: calls for name, (calls, _) in counts.items()})
    lines = ["| syscall | " + " | ".join(servers) + " |", "|---|" + "---|" * len(servers)]
    for name, _ in order.most_common():
        cells = [_column(results[server], name, requests) for server in servers]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [sum(calls for calls, _ in results[s].values()) / requests for s in servers]
    lines.append("| all | " + " | ".join(f"{total:.2f}" for total in totals) + " |")
    return lines


def render(results: dict[str, dict[str, Counts]], requests: int, idle: dict[str, int]) -> str:
    out = [
        f"System calls per request: {requests} sequential requests over one keep-alive "
        "connection, nginx's fixed answers behind. `failed`: calls that returned an error "
        "(mostly EAGAIN: gevent tries a socket first and waits only when it would block).",
    ]
    for title, by_server in results.items():
        out += ["", f"{title}:", "", *_table(by_server, requests)]
    idle_text = ", ".join(f"{server} {calls}" for server, calls in idle.items())
    out += ["", f"An idle worker's own calls in one second: {idle_text}."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.syscalls", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, metavar="N")
    args = parser.parse_args(argv)
    tools.ensure_tools(("nginx", "strace"))
    cases = {case.key: case for case in scenarios.CASES}
    results: dict[str, dict[str, Counts]] = {}
    idle: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="proxy-syscalls-") as tmp:
        workdir = Path(tmp)
        with nginx.running(workdir) as server:
            for key in ("api_chat", "api_chat_stream"):
                case = cases[key]
                backend = server.json_url if case.backend == "json" else server.sse_url
                starts: dict[str, AbstractContextManager[Served]] = {
                    "proxy": proxy.running(workdir, key, backend + "/v1"),
                    "requests.Session relay": floor.running(
                        workdir, "session", server.json_url, server.sse_url
                    ),
                    "http.client relay": floor.running(
                        workdir, "stdlib", server.json_url, server.sse_url
                    ),
                }
                by_server = results.setdefault(case.title, {})
                for name, start in starts.items():
                    print(f"[syscalls] {case.title}: {name}", file=sys.stderr, flush=True)
                    with start as served:
                        out = workdir / f"strace-{key}-{len(by_server)}.txt"
                        by_server[name] = count(served, case, args.requests, out)
                        if key == "api_chat":
                            idle[name] = idle_per_second(served, out)
    print(render(results, args.requests, idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
