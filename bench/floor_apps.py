"""The floor: what the least a Flask app under gevent can spend on an Ollama /api/chat request.

Three WSGI apps, each served by `bench.floor` as one gunicorn gevent worker, beside the proxy:
- `bare`: a Flask route that answers the fixed non-streamed Ollama answer, no backend call:
  the cost of gunicorn, gevent and Flask alone;
- `session`: a minimal translator over a module-level requests.Session (pooled keep-alive):
  parse the Ollama request, post the OpenAI one, parse the reply, answer Ollama JSON; streamed,
  one NDJSON line per SSE data line. What a straightforward relay costs, the proxy's peer;
- `stdlib`: the same with http.client connections kept alive in a small pool: how much of the
  relay's cost is requests and urllib3 rather than the network exchange itself.

No validation, no error handling beyond what keeps a connection reusable, no logging, no
metrics: the proxy does all of those, so these are floors, not rivals. The backend's base URLs
(nginx's two fixed-answer servers: JSON and SSE) come from FLOOR_JSON_URL and FLOOR_SSE_URL.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, Response, request

from . import payloads

_CHAT = "/v1/chat/completions"
_HEADERS = {"Content-Type": "application/json"}
_NDJSON = "application/x-ndjson"
_CREATED_AT = "2023-11-14T22:13:20Z"  # fixed: the floor does not spend a clock read on it

# What the proxy answers a non-streamed /api/chat, in shape and size.
FIXED_ANSWER = json.dumps(
    {
        "model": payloads.MODEL,
        "created_at": _CREATED_AT,
        "message": {"role": "assistant", "content": payloads.ANSWER},
        "done_reason": "stop",
        "done": True,
        "total_duration": 0,
        "load_duration": 0,
        "prompt_eval_count": payloads.USAGE["prompt_tokens"],
        "prompt_eval_duration": 0,
        "eval_count": payloads.USAGE["completion_tokens"],
        "eval_duration": 0,
    },
    separators=(",", ":"),
).encode()


def _backend(stream: bool) -> str:
    return os.environ["FLOOR_SSE_URL" if stream else "FLOOR_JSON_URL"]


def _outgoing(body: dict[str, Any]) -> bytes:
    """The minimal OpenAI request a translator sends: model, messages, stream."""
    chat = {"model": body["model"], "messages": body["messages"], "stream": body["stream"]}
    return json.dumps(chat).encode()


def _answer(reply: dict[str, Any]) -> bytes:
    choice = reply["choices"][0]
    usage = reply.get("usage") or {}
    return json.dumps(
        {
            "model": reply["model"],
            "created_at": _CREATED_AT,
            "message": {"role": "assistant", "content": choice["message"]["content"]},
            "done_reason": choice["finish_reason"],
            "done": True,
            "prompt_eval_count": usage.get("prompt_tokens", 0),
            "eval_count": usage.get("completion_tokens", 0),
        }
    ).encode()


def _ndjson(data_lines: Iterator[bytes], model: str) -> Iterator[bytes]:
    """One NDJSON line per SSE data line with text, then the closing `done` line."""
    for line in data_lines:
        # Past the blank lines and `data: [DONE]` too, to the end: a body read to its end
        # leaves the connection reusable.
        if not line.startswith(b"data: {"):
            continue
        choices = json.loads(line[6:])["choices"]
        content = choices[0]["delta"].get("content") if choices else None
        if content:
            piece = {"model": model, "message": {"role": "assistant", "content": content}}
            yield json.dumps({**piece, "done": False}).encode() + b"\n"
    yield json.dumps({"model": model, "done": True, "done_reason": "stop"}).encode() + b"\n"


def _app(name: str) -> Flask:
    app = Flask(name)

    @app.get("/")
    def alive() -> str:  # what the launcher polls before the bench starts
        return "ok"

    return app


bare = _app("bare")


@bare.post("/api/chat")
def bare_chat() -> Response:
    return Response(FIXED_ANSWER, mimetype="application/json")


session = _app("session")
# Module level: one pool of keep-alive connections per worker. urllib3 keeps 10 idle connections
# per host by default: with 32 requests at once, most would open a new connection and throw it
# away after (with a warning each), so the pool is as large as the worker's connection limit.
_session = requests.Session()
_session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=1000))


@session.post("/api/chat")
def session_chat() -> Response:
    body = request.get_json()
    stream = bool(body.get("stream", True))
    url = _backend(stream) + _CHAT
    if not stream:
        reply = _session.post(url, data=_outgoing({**body, "stream": False}), headers=_HEADERS)
        return Response(_answer(reply.json()), mimetype="application/json")

    def relay() -> Iterator[bytes]:
        with _session.post(url, data=_outgoing(body), headers=_HEADERS, stream=True) as reply:
            yield from _ndjson(reply.iter_lines(), body["model"])

    return Response(relay(), mimetype=_NDJSON)


stdlib = _app("stdlib")
# Idle keep-alive connections by backend address; a greenlet takes one for its request and puts
# it back once the answer is read, so each of the 32 concurrent requests has its own.
_idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}


@functools.cache
def _address(stream: bool) -> tuple[str, int]:
    parts = urlsplit(_backend(stream))
    return parts.hostname or "127.0.0.1", parts.port or 80


def _exchange(stream: bool, payload: bytes) -> tuple[http.client.HTTPConnection, Any]:
    """The backend's answer (its headers read) and the connection it came on.

    An idle connection the backend has closed meanwhile (nginx's keepalive_timeout) fails on
    first use; that one request is sent again on a new connection, once, as every keep-alive
    client does (urllib3 instead polls each pooled connection before using it).
    """
    address = _address(stream)
    idle = _idle.setdefault(address, [])
    while True:
        reused = bool(idle)
        conn = idle.pop() if reused else http.client.HTTPConnection(*address)
        try:
            conn.request("POST", _CHAT, payload, _HEADERS)
            return conn, conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            conn.close()
            if not reused:
                raise
        except Exception:
            conn.close()  # a half-used connection must not go back into the pool
            raise


@stdlib.post("/api/chat")
def stdlib_chat() -> Response:
    body = request.get_json()
    stream = bool(body.get("stream", True))
    if not stream:
        conn, reply = _exchange(False, _outgoing({**body, "stream": False}))
        answer = _answer(json.loads(reply.read()))
        _idle[_address(False)].append(conn)  # read to the end: reusable
        return Response(answer, mimetype="application/json")

    def relay() -> Iterator[bytes]:
        conn, reply = _exchange(True, _outgoing(body))
        try:
            yield from _ndjson(iter(reply.readline, b""), body["model"])
            # readline() leaves the response open at the end of the body; read() closes it,
            # after which the connection takes the next request.
            reply.read()
        except BaseException:  # the client left mid-stream: the rest of the body is unread
            conn.close()
            raise
        _idle[_address(True)].append(conn)

    return Response(relay(), mimetype=_NDJSON)
