"""Wire probe: raw HTTP exchanges with the real server that run.sh starts.

    E2E_REAL_SERVER=llama-server tests/e2e_real/run.sh .venv/bin/python tests/e2e_real/probe.py
    ... probe.py tools embeddings    # only the sections whose name contains a word

Prints, for each request, the status line, the response headers where they matter, and the
body (shortened). docs/backends/*.md were written from this output; run it again after a
server upgrade and compare. Plain sockets on purpose: no client library reorders headers,
joins SSE events or hides a chunk boundary.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

BASE = urlparse(os.environ["E2E_BACKEND_URL"])  # http://127.0.0.1:PORT/v1
MODEL = os.environ.get("E2E_CHAT_MODEL", "smollm2")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string", "description": "The city"}},
        },
    },
}
SYSTEM = {"role": "system", "content": "You are a helpful assistant. Use tools when asked."}
ASK = {"role": "user", "content": "What is the weather in Paris? Use the tool."}
CALL: dict[str, Any] = {
    "id": "call_abc123",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
PNG_1X1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5Erk"
    "Jggg=="
)
SCHEMA = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}


def exchange(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw_body: bytes | None = None,
) -> tuple[str, list[str], bytes, float]:
    """One request on a fresh connection; returns status line, headers, decoded body, seconds."""
    full = path if path.startswith("/") else BASE.path.rstrip("/") + "/" + path
    data = raw_body if raw_body is not None else b""
    if body is not None:
        data = json.dumps(body).encode()
    sent = {"Host": BASE.netloc, "Connection": "close"}
    if data:
        sent.update({"Content-Type": "application/json", "Content-Length": str(len(data))})
    sent.update(headers or {})
    head = f"{method} {full} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items())
    started = time.monotonic()
    with socket.create_connection((BASE.hostname, BASE.port), timeout=300) as sock:
        sock.sendall(head.encode() + b"\r\n" + data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_head, _, rest = received.partition(b"\r\n\r\n")
    status, *lines = status_head.decode("latin-1").split("\r\n")
    if any(line.lower() == "transfer-encoding: chunked" for line in lines):
        rest = dechunk(rest)
    return status, lines, rest, time.monotonic() - started


def dechunk(rest: bytes) -> bytes:
    out = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


def show(title: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    """Prints one exchange; returns the body parsed as JSON when it is JSON."""
    limit = kw.pop("limit", 1200)
    with_headers = kw.pop("headers_shown", False)
    status, lines, data, seconds = exchange(method, path, body, **kw)
    print(f"\n### {title}\n> {method} {path} {json.dumps(body)[:300] if body is not None else ''}")
    print(f"< {status}   ({seconds:.2f} s)")
    for line in lines if with_headers else []:
        print(f"< {line}")
    text = data.decode("utf-8", "replace")
    print(text[:limit] + (f" …[{len(data)} bytes]" if len(data) > limit else ""))
    try:
        return json.loads(data)
    except ValueError:
        return None


def chat(title: str, messages: list[dict[str, Any]] | None = None, **fields: Any) -> Any:
    kw = {k: fields.pop(k) for k in ("limit", "headers_shown", "headers") if k in fields}
    body: dict[str, Any] = {"model": MODEL}
    body["messages"] = messages or [{"role": "user", "content": "Say hello."}]
    body["max_tokens"] = 16
    body.update(fields)
    return show(title, "POST", "chat/completions", body, **kw)


def models() -> None:
    show("models", "GET", "models", headers_shown=True, limit=3000)
    time.sleep(1.2)
    show("models again (created?)", "GET", "models", limit=3000)
    show("models/<id>", "GET", f"models/{MODEL}", headers_shown=True)
    show("health", "GET", "/health", headers_shown=True)
    show("props", "GET", "/props", limit=600)
    show("unknown route", "GET", "no-such-route", headers_shown=True)
    preflight = {"Origin": "http://x.example", "Access-Control-Request-Method": "POST"}
    show("cors preflight", "OPTIONS", "chat/completions", headers=preflight, headers_shown=True)


def chats() -> None:
    chat("chat", headers_shown=True, limit=3000)
    chat("chat stream", stream=True, headers_shown=True, limit=3000)
    chat("chat stream usage", stream=True, stream_options={"include_usage": True}, limit=6000)
    chat("max_completion_tokens", max_tokens=None, max_completion_tokens=3)
    chat("n=2", n=2)
    chat("seed a", seed=42, temperature=1.0, limit=300)
    chat("seed b", seed=42, temperature=1.0, limit=300)
    chat("unknown fields", totally_unknown=1, options={"x": 1}, limit=400)
    chat("parts", [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}])
    chat("logprobs top 2", logprobs=True, top_logprobs=2, max_tokens=2, limit=2500)
    chat("logprobs alone", logprobs=True, max_tokens=1, limit=600)
    chat("logprobs stream", logprobs=True, top_logprobs=1, max_tokens=2, stream=True, limit=3000)
    color = [{"role": "user", "content": "Give me a color as JSON."}]
    chat("json_object", color, response_format={"type": "json_object"}, max_tokens=40)
    json_schema = {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}}
    chat("json_schema", color, response_format=json_schema, max_tokens=40)
    chat("json_object+schema", color, response_format={"type": "json_object", "schema": SCHEMA})
    chat("bad response_format", response_format={"type": "yaml"})
    chat(
        "prefill",
        [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Bon"}],
    )


def tools() -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    for choice in ("auto", "none", "required", named, None):
        label = "named" if isinstance(choice, dict) else str(choice)
        extra = {"tools": [WEATHER], "max_tokens": 60}
        if choice is not None:
            extra["tool_choice"] = choice
        chat(f"tools {label}", [SYSTEM, ASK], **extra)
        chat(f"tools {label} stream", [SYSTEM, ASK], stream=True, limit=2000, **extra)
    for label, content in (("null", None), ("empty", "")):
        turn = {"role": "assistant", "content": content, "tool_calls": [CALL]}
        result = {"role": "tool", "tool_call_id": "call_abc123", "content": "22 degrees"}
        chat(f"round trip, content {label}", [SYSTEM, ASK, turn, result], max_tokens=30)
    no_id = {"role": "tool", "content": "22 degrees"}
    turn = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    chat("tool result without tool_call_id", [SYSTEM, ASK, turn, no_id], max_tokens=30)
    # A 135M model asked once answers in prose; shown two calls, it calls (with a template
    # that offers tools: run.sh's default for llama-server).
    shots: list[dict[str, Any]] = []
    for i, (city, temp) in enumerate((("Paris", 18), ("London", 12))):
        call = {**CALL, "id": f"c{i}", "function": {**CALL["function"]}}
        call["function"]["arguments"] = json.dumps({"city": city})
        shots += [
            {"role": "user", "content": f"What is the weather in {city}?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": f"{temp} degrees"},
            {"role": "assistant", "content": f"It is {temp} degrees in {city}."},
        ]
    shots.append({"role": "user", "content": "What is the weather in Berlin?"})
    for stream in (False, True):
        chat(
            f"few-shot tool call stream={stream}",
            shots,
            tools=[WEATHER],
            temperature=0,
            max_tokens=60,
            stream=stream,
            limit=4000,
        )


def completions() -> None:
    prompt = {"model": MODEL, "prompt": "The capital of France is"}
    show("completion", "POST", "completions", {**prompt, "max_tokens": 8}, headers_shown=True)
    fim = {"model": MODEL, "prompt": "def add(a, b):\n", "suffix": "\n    return c\n"}
    show("completion suffix", "POST", "completions", {**fim, "max_tokens": 12})
    show("completion logprobs", "POST", "completions", {**prompt, "max_tokens": 3, "logprobs": 2})
    stream = {**prompt, "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}}
    show("completion stream", "POST", "completions", stream, limit=3000)
    listed = {"model": MODEL, "prompt": ["Hello", "World"], "max_tokens": 3}
    show("completion prompt list", "POST", "completions", listed)


def embeddings() -> None:
    def embed(title: str, payload: dict[str, Any], **kw: Any) -> Any:
        answer = show(title, "POST", "embeddings", {"model": MODEL, **payload}, limit=300, **kw)
        for item in (answer or {}).get("data", []) if isinstance(answer, dict) else []:
            vector = item["embedding"]
            if vector and isinstance(vector[0], list):
                print(f"  item {item['index']}: {len(vector)} token rows of {len(vector[0])}")
            elif isinstance(vector, list):
                norm = math.sqrt(sum(x * x for x in vector))
                print(f"  item {item['index']}: {len(vector)} floats, L2 norm {norm:.6f}")
        return answer

    embed("embed one", {"input": "the first text"}, headers_shown=True)
    both = embed("embed a list", {"input": ["the first text", "a second one"]})
    alone = embed("embed the second alone", {"input": "a second one"})
    # Only for flat vectors: llama-cpp-python without pooling answers one row per token.
    answers = (both, alone)
    if all(isinstance(a, dict) and "data" in a for a in answers) and not isinstance(
        both["data"][1]["embedding"][0], list
    ):
        pairs = zip(both["data"][1]["embedding"], alone["data"][0]["embedding"], strict=False)
        print("  list item 1 vs alone, largest difference:", max(abs(a - b) for a, b in pairs))
    embed("embed empty string", {"input": ""})
    embed("embed empty list", {"input": []})
    embed("embed too long", {"input": "hello " * 2500}, headers_shown=True)
    embed("embed unknown model", {"input": "hi", "model": "no-such-model"})


def errors() -> None:
    image = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_1X1}},
    ]
    chat("image to a text-only model", [{"role": "user", "content": image}], headers_shown=True)
    chat("unknown model", model="no-such-model", limit=400)
    show("invalid JSON", "POST", "chat/completions", raw_body=b"{not json", headers_shown=True)
    show("messages missing", "POST", "chat/completions", {"model": MODEL})
    chat("wrong type", max_tokens="x")
    chat("prompt too long", [{"role": "user", "content": "hello " * 2500}])
    chat("prompt too long, stream", [{"role": "user", "content": "hello " * 2500}], stream=True)
    for value in ("abc-123", "6b1f7e5c-8a4d-4f2e-9c3b-1d2e3f4a5b6c", "x y/z!" * 30):
        chat(
            f"X-Request-ID {value[:20]}",
            headers={"X-Request-ID": value},
            headers_shown=True,
            limit=100,
        )


def native() -> None:
    hello = [{"role": "user", "content": "Say hello."}]
    messages = {"model": MODEL, "max_tokens": 16, "messages": hello}
    show("anthropic messages", "POST", "messages", messages, headers_shown=True)
    show("anthropic messages stream", "POST", "messages", {**messages, "stream": True}, limit=3000)
    responses = {"model": MODEL, "max_output_tokens": 16, "input": "Say hello."}
    show("responses", "POST", "responses", responses, limit=2000)
    show("responses stream", "POST", "responses", {**responses, "stream": True}, limit=5000)


def concurrency() -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count from 1 to 100."}],
        "max_tokens": 100,
        "stream": True,
        "temperature": 0,
    }
    took: dict[int, float] = {}

    def one(i: int) -> None:
        took[i] = round(exchange("POST", "chat/completions", body)[3], 2)

    print("\n### concurrency")
    one(-1)
    print(f"one 100-token stream alone: {took[-1]} s")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    for path in ("models", "/health"):
        status, _, _, seconds = exchange("GET", path)
        print(f"{path} during three streams: {status} after {seconds:.3f} s")
    for thread in threads:
        thread.join()
    print(f"three streams at once: wall {time.monotonic() - started:.2f} s, each {took}")


SECTIONS: dict[str, Callable[[], None]] = {
    "models": models,
    "chat": chats,
    "tools": tools,
    "completions": completions,
    "embeddings": embeddings,
    "errors": errors,
    "native": native,
    "concurrency": concurrency,
}

if __name__ == "__main__":
    wanted = sys.argv[1:]
    for name, section in SECTIONS.items():
        if not wanted or any(word in name for word in wanted):
            section()
