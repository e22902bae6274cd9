"""Runs the real nginx with deploy/nginx/ollama-proxy.conf.template, as a deployment would.

The template is filled in the way the nginx image's entrypoint (and envsubst with a list of
names) does it: only the four named variables are replaced, nginx's own `$variables` are left.
The surrounding nginx.conf is the small part every deployment has anyway (pid, error log, temp
paths), kept in a temporary directory.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy/nginx/ollama-proxy.conf.template"
VARIABLES = ("NGINX_PORT", "OLLAMA_PROXY_UPSTREAM", "MAX_BODY_BYTES", "NGINX_ACCESS_LOG")


def nginx_binary() -> str | None:
    # /usr/sbin is not on every user's PATH.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


def render(values: dict[str, str], text: str | None = None) -> str:
    """The template with the four variables replaced, in both forms envsubst knows."""
    if set(values) != set(VARIABLES):
        raise ValueError(f"give exactly {VARIABLES}, got {sorted(values)}")
    text = TEMPLATE.read_text() if text is None else text
    for name, value in values.items():
        text = re.sub(rf"\$(?:\{{{name}\}}|{name}\b)", lambda _m, v=value: v, text)
    leftover = re.findall(r"\$\{[A-Z_][A-Z0-9_]*\}", text)
    if leftover:
        raise ValueError(f"variables nobody fills in: {leftover}")
    return text


def _die_with_parent() -> None:
    # In the child before exec: if the test process dies, the kernel sends nginx SIGTERM.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Nginx:
    """nginx in the foreground of a child process, one worker, everything under `workdir`."""

    def __init__(self, workdir: Path, site: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.access_log = workdir / "access.log"
        site_path = workdir / "ollama-proxy.conf"
        site_path.write_text(site)
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(
            f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    # As Debian's and the nginx image's own nginx.conf have it: the site must cope with both.
    sendfile on;
    gzip on;
    include {site_path};
}}
"""
        )
        self._process: subprocess.Popen[bytes] | None = None

    def _argv(self) -> list[str]:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        return [binary, "-p", str(self.workdir), "-e", str(self.workdir / "error.log")]

    def start(self) -> Nginx:
        argv = [*self._argv(), "-c", str(self.conf)]
        check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
        if check.returncode:
            raise RuntimeError(f"nginx rejected the configuration:\n{check.stderr}")
        self._process = subprocess.Popen(
            [*argv, "-g", "daemon off;"],
            stderr=subprocess.DEVNULL,  # everything goes to error.log as well
            preexec_fn=_die_with_parent,  # noqa: PLW1509  one prctl call, no locks taken
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited at start:\n{self.errors()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("nginx did not listen within 10 s")

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # fast shutdown: tests are done with it
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def errors(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_lines(self) -> list[dict[str, Any]]:
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]
