"""`python -m bench.profile [CASE ...] [--seconds S]`: where the proxy worker spends its CPU.

Puts the worker under the same wrk load as the bench (32 connections, nginx behind it) while
py-spy samples it, then prints the share of samples by package and the hottest functions, both
by self time (the function itself was running) and inclusive time (it was on the stack).
py-spy is not a project dependency: `pip install py-spy`. Sampling slows the worker a little,
so profile here and measure with `python -m bench`, never both at once.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from . import nginx, proxy, scenarios, wrk

# Which package a frame's file belongs to, for the summary by area (first match wins). py-spy
# prints paths relative to sys.path: "app/backend.py", "gevent/hub.py", "json/decoder.py".
_AREAS = [
    ("app (the proxy's own code)", r"^app/"),
    ("flask / werkzeug", r"^(flask|werkzeug)/"),
    ("gunicorn", r"^gunicorn/"),
    ("gevent / greenlet", r"^(gevent|greenlet)/"),
    ("requests / urllib3", r"^(requests|urllib3)/"),
    ("marshmallow", r"^marshmallow/"),
    ("prometheus", r"^prometheus"),
    ("pybreaker", r"^pybreaker"),
    ("stdlib http / email / urllib", r"^(http|email|urllib)/"),
    ("stdlib json", r"^json/"),
    ("stdlib logging", r"^logging/"),
    ("stdlib typing", r"^typing\.py"),
    ("stdlib socket / selectors", r"^(socket|selectors)\.py"),
    ("stdlib, other", r"^[a-z_]+\.py$|^<frozen"),
]
# gevent's thread pool (its resolver) waits on a lock in a thread of its own: not worker CPU.
_OTHER_THREADS = "_WorkerGreenlet.run"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")


def _short(frame: str) -> tuple[str, str]:
    """("function (short/path.py)", full path) for one py-spy frame."""
    found = _FRAME.match(frame)
    if not found:
        return frame, ""
    path = found["file"]
    return f"{found['func']} ({path})", path


def _area(path: str) -> str:
    for name, pattern in _AREAS:
        if re.search(pattern, path):
            return name
    return "other"


def summarise(collapsed: str, top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if _OTHER_THREADS in stack:
            continue
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1][0]] += count
        areas[_area(frames[-1][1])] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
    if not total:
        return "no samples (was the worker busy?)"

    def block(title: str, counter: Counter[str], limit: int) -> list[str]:
        rows = [f"  {n * 100 / total:5.1f}%  {name}" for name, n in counter.most_common(limit)]
        return [title, *rows]

    lines = [f"{total} samples"]
    lines += block("self time by area:", areas, len(_AREAS) + 1)
    lines += block("self time by function:", own, top)
    lines += block("inclusive time by function:", inclusive, top)
    ours = Counter({name: n for name, n in inclusive.items() if "(app/" in name})
    lines += block("inclusive time, the proxy's own functions:", ours, top)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    keys = [case.key for case in scenarios.CASES]
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("cases", nargs="*", choices=keys, default=["api_chat", "api_chat_stream"])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--save", type=Path, metavar="DIR", help="keep the collapsed stacks")
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        sys.exit("py-spy is needed: pip install py-spy")
    chosen = [case for case in scenarios.CASES if case.key in args.cases]
    with tempfile.TemporaryDirectory(prefix="proxy-profile-") as tmp:
        workdir = Path(tmp)
        with nginx.running(workdir) as server:
            for case in chosen:
                backend = server.json_url if case.backend == "json" else server.sse_url
                with proxy.running(workdir, case.key, backend + "/v1") as target:
                    problem = scenarios.verify(case, target.url)
                    if problem:
                        print(f"## {case.title}\n{problem}\n")
                        continue
                    lua = wrk.script(workdir / f"{case.key}.lua", case.method, case.body)
                    url = target.url + case.path
                    wrk.run(url, lua, connections=32, seconds=2)  # warm-up
                    out = workdir / f"{case.key}.txt"
                    spy = [pyspy, "record", "-p", str(target.worker.pid), "-r", "200"]
                    spy += ["-d", str(args.seconds), "-f", "raw", "-o", str(out)]
                    with subprocess.Popen(spy, stdout=subprocess.DEVNULL) as sampler:
                        load = wrk.run(url, lua, connections=32, seconds=args.seconds)
                        sampler.wait(args.seconds + 30)
                    print(f"## {case.title} ({load.rps:,.0f} req/s while sampled)")
                    print(summarise(out.read_text(), args.top) + "\n")
                    if args.save:
                        args.save.mkdir(parents=True, exist_ok=True)
                        shutil.copy(out, args.save / out.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
