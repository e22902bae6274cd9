"""Starts a floor app of bench/floor_apps.py as one gunicorn gevent worker, like the proxy.

The settings that change a request's cost are the proxy's (gunicorn.conf.py): the gevent
worker, 75 s keep-alive, the heartbeat file on tmpfs, 1000 connections. What differs: no access
log (the proxy writes one JSON line per request, and that is part of its cost), no metrics, no
custom worker class (the proxy's adds deadlines that cost nothing per request).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .proxy import Served
from .tools import die_with_parent, free_port

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "bare": "bare Flask route (fixed answer)",
    "session": "Flask + requests.Session relay",
    "stdlib": "Flask + http.client relay",
}


def _argv(app: str, port: int) -> list[str]:
    flags = ["-k", "gevent", "-w", "1", "--worker-connections", "1000", "--keep-alive", "75"]
    flags += ["--bind", f"127.0.0.1:{port}", "--timeout", "30", "--no-control-socket"]
    if os.path.isdir("/dev/shm"):
        flags += ["--worker-tmp-dir", "/dev/shm"]  # as gunicorn.conf.py has it
    return [sys.executable, "-m", "gunicorn", *flags, f"bench.floor_apps:{app}"]


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def running(workdir: Path, app: str, json_url: str, sse_url: str) -> Iterator[Served]:
    """gunicorn serving `bench.floor_apps:<app>` against nginx's two fixed-answer servers."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLOOR_JSON_URL": json_url,
        "FLOOR_SSE_URL": sse_url,
        "GUNICORN_CMD_ARGS": "",  # nothing from the caller's environment changes the floor
    }
    with (workdir / f"floor-{app}.log").open("ab") as log:
        process = subprocess.Popen(
            _argv(app, port),
            # Not the repository: gunicorn would read the proxy's gunicorn.conf.py from there.
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509  one prctl call, no locks taken
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the floor app {app} did not start: see floor-{app}.log")
            time.sleep(0.1)
        yield Served(f"http://127.0.0.1:{port}", process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
