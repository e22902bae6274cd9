"""Running wrk with a generated Lua script and reading its summary back as JSON.

The script sets the method and body, and its `done` hook prints wrk's own counters (requests,
socket errors, statuses >= 400, latency percentiles) as one JSON line, so nothing is scraped
from wrk's human-readable output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_MARK = "BENCH-RESULT "

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\\n',
    mark, summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]  # socket errors by kind, and "status >= 400"

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def problem(self) -> str | None:
        """What went wrong, for the table in place of a number; None when the run was clean."""
        bad = {kind: n for kind, n in self.errors.items() if n}
        if not self.requests:
            bad.setdefault("no responses", 0)
        if not bad:
            return None
        return "ERROR: " + ", ".join(f"{kind} {n}" if n else kind for kind, n in bad.items())


def script(path: Path, method: str, body: str | None) -> Path:
    lines = [f'wrk.method = "{method}"', f"mark = {_lua_string(_MARK)}"]
    if body is not None:
        lines += [
            f"wrk.body = {_lua_string(body)}",
            'wrk.headers["Content-Type"] = "application/json"',
        ]
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def _lua_string(text: str) -> str:
    level = "=" * 4
    if f"]{level}]" in text:
        raise ValueError("the body would end the Lua long string")
    return f"[{level}[{text}]{level}]"


def run(
    url: str, lua: Path, *, connections: int, seconds: int, threads: int = 1, timeout: int = 5
) -> Result:
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}s"]
    done = subprocess.run(
        [*argv, "-s", str(lua), url],
        capture_output=True,
        text=True,
        timeout=seconds + timeout + 30,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith(_MARK):
            raw = json.loads(line[len(_MARK) :])
            break
    else:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    kinds = ("connect", "read", "write", "timeout")
    errors = {f"socket {kind}": raw[kind] for kind in kinds}
    errors["status >= 400"] = raw["status"]
    return Result(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=errors,
    )
