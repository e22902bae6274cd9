"""nginx as the fixed-answer backend: two servers on 127.0.0.1 from a generated config.

nginx cannot branch on a request body, so `stream: true` and `stream: false` chat requests go
to two ports: JSON answers on one, the SSE stream on the other. Everything else is the same on
both. A config token is capped at 4 KiB, so long answers are spliced from `set` variables.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import payloads
from .tools import die_with_parent, free_port

_PIECE = 3000  # bytes per `set` value, under nginx's 4096-byte token limit


@dataclass
class Nginx:
    json_url: str  # http://127.0.0.1:PORT, JSON chat completions
    sse_url: str  # the same, with an SSE stream for chat completions
    master: int

    def worker(self) -> psutil.Process:
        return psutil.Process(self.master).children()[0]


def _quote(text: str) -> str:
    if "$" in text:
        raise ValueError("a `$` would be read as an nginx variable")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _fixed(name: str, mime: str, body: str) -> str:
    """A location that answers every method with a fixed 200 body."""
    pieces = [body[i : i + _PIECE] for i in range(0, len(body), _PIECE)]
    sets = "".join(f"\n      set ${name}{i} {_quote(piece)};" for i, piece in enumerate(pieces))
    joined = "".join(f"${name}{i}" for i in range(len(pieces)))
    return f'default_type {_quote(mime)};{sets}\n      return 200 "{joined}";'


def _server(port: int, chat_mime: str, chat_body: str) -> str:
    routes = {
        "/v1/models": _fixed("models", "application/json", payloads.MODELS),
        "/v1/chat/completions": _fixed("chat", chat_mime, chat_body),
        "/v1/embeddings": _fixed("embed", "application/json", payloads.EMBEDDING),
    }
    locations = "".join(
        f"\n    location = {path} {{\n      {body}\n    }}" for path, body in routes.items()
    )
    return f"""
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    keepalive_requests 1000000;
    keepalive_timeout 120s;{locations}
    location / {{ return 404; }}
  }}"""


def config(workdir: Path, json_port: int, sse_port: int) -> str:
    return f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body;
  server_tokens off;
  {_server(json_port, "application/json", payloads.CHAT_COMPLETION)}
  {_server(sse_port, "text/event-stream; charset=utf-8", payloads.CHAT_STREAM)}
}}
"""


@contextlib.contextmanager
def running(workdir: Path) -> Iterator[Nginx]:
    """nginx in the foreground of a child process; stopped on the way out, whatever happens."""
    json_port, sse_port = free_port(), free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(config(workdir, json_port, sse_port))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    if check.returncode:
        raise RuntimeError(f"nginx rejected the generated config:\n{check.stderr}")
    process = subprocess.Popen(
        [*argv, "-g", "daemon off;"],
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,  # noqa: PLW1509  one prctl call, no locks taken
    )
    try:
        _wait_listening(process, [json_port, sse_port])
        yield Nginx(f"http://127.0.0.1:{json_port}", f"http://127.0.0.1:{sse_port}", process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(process: subprocess.Popen[bytes], ports: list[int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"nginx exited at start:\n{stderr}")
        listening = {c.laddr.port for c in psutil.net_connections("tcp4") if c.status == "LISTEN"}
        if all(port in listening for port in ports):
            return
        time.sleep(0.05)
    raise RuntimeError("nginx did not start listening within 10 s")
