"""Runs the real proxy, `gunicorn -c gunicorn.conf.py` with gevent workers, as a subprocess.

Used by the end-to-end suites and the benchmark: the proxy is exercised exactly as `make run`
starts it, over a real socket, with its logs captured to a file the tests can read.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from harness.fake_backend import FakeBackend

ROOT = Path(__file__).resolve().parent.parent


def _die_with_parent() -> None:
    # Runs in the child before exec: if the test process dies (Ctrl-C, a killed CI job), the
    # kernel sends gunicorn SIGTERM instead of leaving it running.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProxyProcess:
    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_port = free_port()  # proxies run side by side: each its own metrics port
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.log_path = log_path
        self._env = {
            **os.environ,
            "PROXY_ENV_FILE": os.devnull,  # a developer's .env must not change the tests
            "PROXY_HOST": "127.0.0.1",
            "PROXY_PORT": str(self.port),
            "METRICS_PORT": str(self.metrics_port),
            # Empty: each gunicorn makes (and removes) its own metrics directory.
            "PROMETHEUS_MULTIPROC_DIR": "",
            "WEB_CONCURRENCY": "2",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ProxyProcess:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # fixed argv, our own interpreter
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  one prctl call, no locks taken
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.logs()}")
            try:
                if requests.get(self.url + "/", timeout=1).ok:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # not listening, or still booting
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s:\n{self.logs()}")

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        """Signals the gunicorn master and returns at once (shutdown tests watch what follows)."""
        assert self._process is not None
        self._process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Waits for gunicorn to exit; returns its exit code (TimeoutExpired if it does not)."""
        assert self._process is not None
        return self._process.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as Kubernetes does; returns gunicorn's exit code."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def proxy_with_fake_backend(
    log_dir: Path, *, backend_key: str | None = None, **env: str
) -> Iterator[tuple[ProxyProcess, FakeBackend]]:
    """A fake backend and a proxy in front of it (keyword arguments become environment
    variables), both stopped on the way out."""
    backend = FakeBackend(api_key=backend_key).start()
    try:
        settings = {"OPENAI_API_BASE_URL": backend.url, **env}
        if backend_key:
            settings["OPENAI_API_KEY"] = backend_key
        proxy = ProxyProcess(log_dir / "gunicorn.log", settings).start()
        try:
            yield proxy, backend
        finally:
            proxy.stop()
    finally:
        backend.stop()
