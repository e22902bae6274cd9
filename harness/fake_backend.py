"""A fake OpenAI-compatible model server that behaves like vLLM on the wire.

The end-to-end tests put a real gunicorn proxy in front of it over a real socket, and the fault
tests use its markers to make it misbehave. Standard library only, so it also runs in a bare
python container:

    python -m harness.fake_backend --host 127.0.0.1 --port 8001 [--api-key K]

Replies are deterministic so tests can assert on them: chat answers "echo: <last user text>",
legacy completions answer "completion: <prompt>", embeddings are derived from sha256 of the text.

Fault markers are looked for in every text of the request (message contents, prompt, input) and
in `FakeBackend.fault`: [[status:NNN]] [[hang:S]] [[slow:S]] [[die-after:N]] [[long:N]]
[[garbage]] [[error-event]] [[no-finish]] [[comments]]. Behaviour markers read from the last user
message: [[think]] [[parallel]] [[same-index]] [[bad-args]]. Markers stay in the echoed text.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import itertools
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = dict[str, Any]
# A stream event before it hits the wire: (kind, payload). Kinds: "pre" (role chunk), "gen" (a
# generated piece; the unit [[die-after:N]] counts), "end" (finish/usage chunks), "raw" (an
# already-serialised data line) and "done" ([DONE]).
Event = tuple[str, Any]

CREATED = 1700000000
DEFAULT_MODELS: list[JSON] = [
    {"id": "fake-chat", "max_model_len": 8192},
    {"id": "fake-embed", "max_model_len": 512},
    {"id": "org/Fake-Model-7B"},
]

_VALUE_MARKER = re.compile(r"\[\[(status|hang|slow|die-after|long):(\d+(?:\.\d+)?)\]\]")
_FLAG_MARKERS = ("garbage", "error-event", "no-finish", "comments")
_MID_STREAM_ERROR = {
    "error": {"message": "fake mid-stream error", "type": "InternalServerError", "code": 500}
}
# Retry-After the fake sends with these statuses.
RETRY_AFTER = {429: "7", 503: "3"}
_AUTH_ERROR = {
    "error": {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
# Compact and raw UTF-8, like the pydantic serialisation vLLM uses.
_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- errors and markers


class ApiError(Exception):
    """Raised anywhere while handling a request; becomes the HTTP error response."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body = body if body is not None else error_body(status, message)


def error_body(status: int, message: str) -> JSON:
    """The current vLLM error shape: the type is the status phrase, e.g. "BadRequestError"."""
    try:
        phrase = "".join(HTTPStatus(status).phrase.split())
    except ValueError:  # a made-up status from a [[status:NNN]] marker
        phrase = "Unknown"
    kind = phrase if phrase.endswith("Error") else phrase + "Error"
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def _bad_request(message: str) -> ApiError:
    return ApiError(400, message)


@dataclass(frozen=True)
class Faults:
    status: int | None = None
    hang: float = 0.0
    slow: float | None = None
    die_after: int | None = None
    long: int | None = None
    flags: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Faults:
        values = {name: float(num) for name, num in _VALUE_MARKER.findall(text)}
        as_int = {k: int(v) for k, v in values.items() if k in ("status", "die-after", "long")}
        return cls(
            status=as_int.get("status"),
            hang=values.get("hang", 0.0),
            slow=values.get("slow"),
            die_after=as_int.get("die-after"),
            long=as_int.get("long"),
            flags=frozenset(f for f in _FLAG_MARKERS if f"[[{f}]]" in text),
        )


# --------------------------------------------------------------------------- text helpers


def pieces(text: str) -> list[str]:
    """Word pieces that keep their leading whitespace: "echo: a b" -> ["echo:", " a", " b"]."""
    return re.findall(r"\s*\S+", text)


def _image_mime(image_url: Any) -> str:
    url = image_url.get("url", "") if isinstance(image_url, dict) else str(image_url or "")
    if url.startswith("data:"):
        return url[5:].split(",", 1)[0].split(";", 1)[0] or "unknown"
    return "url"


def content_text(content: Any) -> tuple[str, list[str]]:
    """Text of a message content (string or list of parts) and the mime types of its images.

    Text parts are joined with "\\n", as vLLM does when it flattens parts for a chat template.
    """
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    mimes: list[str] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        elif part.get("type") == "image_url":
            mimes.append(_image_mime(part.get("image_url")))
    return "\n".join(texts), mimes


def _request_text(body: Any) -> str:
    """Every text of a request, for the marker search. Tolerates bad shapes: validation is later."""
    if not isinstance(body, dict):
        return ""
    texts = []
    messages = body.get("messages")
    for msg in messages if isinstance(messages, list) else []:
        if isinstance(msg, dict):
            texts.append(content_text(msg.get("content"))[0])
    for key in ("prompt", "input", "suffix"):
        value = body.get(key)
        texts.extend(
            v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)
        )
    return "\n".join(texts)


def embedding_for(text: str) -> list[float]:
    """The deterministic 8-dim vector of a text. Spread over [-2, 2) and deliberately not unit
    length, so a caller's normalisation shows. Rounded through float32 so the base64 and the
    float encodings decode to identical values."""
    words = struct.unpack("<8I", hashlib.sha256(text.encode()).digest())
    values = [w / 2**32 * 4 - 2 for w in words]
    return list(struct.unpack("<8f", struct.pack("<8f", *values)))


def token_embeddings_for(text: str) -> list[list[float]]:
    """Per-token vectors (one per whitespace word) for the llama.cpp-without-pooling imitation."""
    return [embedding_for(f"{word}#{pos}") for pos, word in enumerate(text.split() or [text])]


def _positive_int(body: JSON, key: str, minimum: int = 1) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad_request(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


# --------------------------------------------------------------------------- chat completions


@dataclass
class Reply:
    """What the fake model "generates" for one request, before it is framed."""

    content: list[str]
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[JSON] = field(default_factory=list)
    finish_reason: str = "stop"
    # vLLM's `stop_reason`: the stop string that ended the answer (null for its natural end).
    stop_reason: str | None = None
    prompt_tokens: int = 1
    logprobs: bool = False
    top_logprobs: int = 0

    def usage(self) -> JSON:
        completion = len(self.content) + len(self.reasoning) + 3 * len(self.tool_calls)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }


def validate_chat(body: JSON) -> None:
    """The strict checks vLLM/OpenAI make, so the proxy's mistakes surface as 400s."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad_request("messages must be a non-empty list")
    if body.get("tools") == []:
        raise _bad_request("tools must not be an empty array")
    if "stream_options" in body and body.get("stream") is not True:
        raise _bad_request("Stream options can only be defined when stream=True.")
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        raise _bad_request("when using `top_logprobs`, `logprobs` must be set to true.")
    _positive_int(body, "top_logprobs", minimum=0)
    for msg in messages:
        _validate_message(msg)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not schema.get("name"):
            raise _bad_request("response_format.json_schema.name is required")
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")


def _validate_message(msg: Any) -> None:
    if not isinstance(msg, dict) or "role" not in msg:
        raise _bad_request(f"each message must be an object with a role, got {msg!r}")
    if msg["role"] == "tool" and not msg.get("tool_call_id"):
        raise _bad_request("a message with role 'tool' requires tool_call_id")
    for call in msg.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not call.get("id"):
            raise _bad_request("assistant tool_calls items require an id and a function")
        if call.get("type") != "function":
            raise _bad_request("assistant tool_calls items require type 'function'")
        if not isinstance(function.get("arguments"), str):
            raise _bad_request("tool_calls[].function.arguments must be a JSON string")


def _wants_thinking(body: JSON, user_text: str) -> bool:
    kwargs = body.get("chat_template_kwargs")
    enable = kwargs.get("enable_thinking") if isinstance(kwargs, dict) else None
    effort = body.get("reasoning_effort")
    # An explicit "off" beats every "on" signal, including the [[think]] marker.
    if enable is False or effort == "none":
        return False
    if enable is True or effort is not None:
        return True
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and (
        reasoning.get("enabled") is True or reasoning.get("effort") not in (None, "none")
    ):
        return True
    return "[[think]]" in user_text


def _tool_calls(tools: list[Any], user_text: str) -> list[JSON]:
    def call(index: int, tool_pos: int, city: str) -> JSON:
        tool = tools[min(tool_pos, len(tools) - 1)]
        spec = tool.get("function", {}) if isinstance(tool, dict) else {}
        arguments = '{"city": "Tok' if "[[bad-args]]" in user_text else json.dumps({"city": city})
        function = {"name": spec.get("name", "tool"), "arguments": arguments}
        call_id = f"chatcmpl-tool-{uuid.uuid4().hex}"
        return {"index": index, "id": call_id, "type": "function", "function": function}

    calls = [call(0, 0, "Tokyo")]
    if "[[parallel]]" in user_text:
        calls.append(call(1, 1, "Paris"))
    elif "[[same-index]]" in user_text:
        calls.append(call(0, 1, "Paris"))  # same index: only the new id tells them apart
    return calls


def plan_chat(body: JSON, faults: Faults) -> Reply:
    messages = body["messages"]
    last = messages[-1]
    user: JSON = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    user_text, mimes = content_text(user.get("content"))
    if last.get("role") == "tool":
        prefix, source = "tool said: ", content_text(last.get("content"))[0]
    else:
        images = f" [images: {len(mimes)} {','.join(mimes)}]" if mimes else ""
        prefix, source = "echo: ", user_text + images
    if faults.long is not None:
        prefix, source = "", " ".join(f"w{i}" for i in range(faults.long))
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )
    reply = Reply(
        content=pieces(json.dumps({"echo": source}) if json_mode else prefix + source),
        prompt_tokens=max(1, sum(len(content_text(m.get("content"))[0].split()) for m in messages)),
        logprobs=body.get("logprobs") is True,
        top_logprobs=body.get("top_logprobs") or 0,
    )
    if _wants_thinking(body, user_text):
        reply.reasoning = pieces("thinking about: " + source)
    # Like vLLM: tool_choice "none" answers in text, whatever tools are offered.
    if body.get("tools") and last.get("role") == "user" and body.get("tool_choice") != "none":
        reply.content, reply.finish_reason = [], "tool_calls"
        reply.tool_calls = _tool_calls(body["tools"], user_text)
        return reply
    _apply_stop(reply, body.get("stop"))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None and len(reply.content) > limit:
        reply.content, reply.finish_reason = reply.content[:limit], "length"
    return reply


def _apply_stop(reply: Reply, stop: Any) -> None:
    """Like vLLM: the text ends before the first stop string, which is not included, and is
    named in the choice's `stop_reason`."""
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    text = "".join(reply.content)
    hits = [(text.find(s), s) for s in stops if isinstance(s, str) and s and s in text]
    if hits:
        at, matched = min(hits)
        reply.content, reply.stop_reason = pieces(text[:at]), matched


def _logprob(token: str, value: float) -> JSON:
    return {"token": token, "logprob": value, "bytes": list(token.encode())}


def _logprob_entry(piece: str, top_n: int) -> JSON:
    alternatives = [_logprob(f"alt{i}", -2.0 - i) for i in range(max(0, top_n - 1))]
    top = [_logprob(piece, -0.5), *alternatives] if top_n > 0 else []
    return {**_logprob(piece, -0.5), "top_logprobs": top}


def _thirds(text: str) -> list[str]:
    cut1, cut2 = len(text) // 3, 2 * len(text) // 3
    return [text[:cut1], text[cut1:cut2], text[cut2:]]


def _include_usage(body: JSON) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _envelope(cid: str, kind: str, model: str) -> JSON:
    return {"id": cid, "object": kind, "created": int(time.time()), "model": model}


def _chunk(base: JSON, choice: JSON, include_usage: bool) -> JSON:
    chunk = {**base, "choices": [{"index": 0, **choice}]}
    if include_usage:
        chunk["usage"] = None  # vLLM marks every chunk but the last when usage is asked for
    return chunk


# --------------------------------------------------------------------------- the server


class FakeBackend:
    """The fake server. Bind happens in __init__ (so `port` is known), serving in start()."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        models: list[JSON] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.host = host
        self.models = [dict(m) for m in (DEFAULT_MODELS if models is None else models)]
        self.api_key = api_key
        # Knobs tests flip between requests.
        self.reasoning_field = "reasoning"  # or "reasoning_content", or "both" (vLLM 0.11)
        self.chunk_delay = 0.0
        self.fault: str | None = None
        self.per_token_embeddings = False
        self.supports_suffix = False
        self.usage_on_finish_chunk = False
        # Recordings, guarded by `lock`.
        self.lock = threading.Lock()
        self.requests: list[JSON] = []
        self.events: list[JSON] = []
        self.open_streams = 0
        self.connections_accepted = 0  # TCP connections, to tell pooled reuse from reconnects
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> FakeBackend:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Quick even with open streams: sleeps wake up and live connections are cut."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        with self.lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    def __enter__(self) -> FakeBackend:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Between tests: no requests or events recorded, no fault set."""
        with self.lock:
            self.fault = None
            self.requests.clear()
            self.events.clear()
            self.connections_accepted = 0

    # Helpers for the handler threads.

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def record_event(self, name: str, path: str) -> None:
        with self.lock:
            self.events.append({"event": name, "path": path, "at": time.monotonic()})

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stop() is called meanwhile; True means "carry on"."""
        return not self._stopping.wait(seconds) if seconds > 0 else True

    def reasoning_fields(self) -> tuple[str, ...]:
        if self.reasoning_field == "both":
            return ("reasoning", "reasoning_content")
        return (self.reasoning_field,)

    def model_id(self, body: JSON) -> str:
        """The requested model, or the first one when omitted (vLLM allows that)."""
        model = body.get("model")
        if model is None and self.models:
            return str(self.models[0]["id"])
        if not any(m["id"] == model for m in self.models):
            raise ApiError(404, f"The model `{model}` does not exist.")
        return str(model)

    def model_card(self, model: JSON) -> JSON:
        card = {"id": model["id"], "object": "model", "created": CREATED, "owned_by": "fake"}
        if "max_model_len" in model:
            card["max_model_len"] = model["max_model_len"]
        return card

    def check_auth(self, authorization: str | None) -> None:
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            raise ApiError(401, "Incorrect API key provided", body=_AUTH_ERROR)

    # Endpoint logic: each returns ("json", body) or ("stream", events).

    def chat(self, body: JSON, faults: Faults) -> tuple[str, Any]:
        model = self.model_id(body)
        validate_chat(body)
        reply = plan_chat(body, faults)
        cid = f"chatcmpl-{self.next_id()}"
        if body.get("stream") is True:
            return "stream", self._chat_events(body, reply, model, cid)
        content = None if reply.tool_calls else "".join(reply.content)
        message: JSON = {"role": "assistant", "content": content}
        for name in self.reasoning_fields() if reply.reasoning else ():
            message[name] = "".join(reply.reasoning)
        if reply.tool_calls:  # the stream's "index" has no place in a whole message
            message["tool_calls"] = [
                {k: v for k, v in call.items() if k != "index"} for call in reply.tool_calls
            ]
        logprobs = None
        if reply.logprobs:
            logprobs = {"content": [_logprob_entry(p, reply.top_logprobs) for p in reply.content]}
        choice = {"message": message, "logprobs": logprobs, "finish_reason": reply.finish_reason,
                  "stop_reason": reply.stop_reason}  # fmt: skip
        envelope = _envelope(cid, "chat.completion", model)
        return "json", {**envelope, "choices": [{"index": 0, **choice}], "usage": reply.usage()}

    def _chat_events(self, body: JSON, reply: Reply, model: str, cid: str) -> list[Event]:
        include_usage = _include_usage(body)
        base = _envelope(cid, "chat.completion.chunk", model)

        def chunk(delta: JSON, finish: str | None = None, logprobs: Any = None) -> JSON:
            choice = {"delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return _chunk(base, choice, include_usage)

        events: list[Event] = [("pre", chunk({"role": "assistant", "content": ""}))]
        fields = self.reasoning_fields()
        events += [("gen", chunk(dict.fromkeys(fields, piece))) for piece in reply.reasoning]
        for call in reply.tool_calls:  # like vLLM: name first, then the arguments in pieces
            head = {**call, "function": {**call["function"], "arguments": ""}}
            events.append(("gen", chunk({"tool_calls": [head]})))
            for fragment in _thirds(call["function"]["arguments"]):
                delta = {"index": call["index"], "function": {"arguments": fragment}}
                events.append(("gen", chunk({"tool_calls": [delta]})))
        for piece in reply.content:
            logprobs = None
            if reply.logprobs:
                logprobs = {"content": [_logprob_entry(piece, reply.top_logprobs)]}
            events.append(("gen", chunk({"content": piece}, logprobs=logprobs)))
        finish = chunk({}, reply.finish_reason)
        finish["choices"][0]["stop_reason"] = reply.stop_reason
        return events + self._closing(base, finish, reply.usage(), include_usage)

    def _closing(self, base: JSON, finish: JSON, usage: JSON, include_usage: bool) -> list[Event]:
        # Some llama.cpp builds always put usage on the finish chunk; vLLM sends it alone after.
        if self.usage_on_finish_chunk:
            return [("end", {**finish, "usage": usage})]
        events: list[Event] = [("end", finish)]
        if include_usage:
            events.append(("end", {**base, "choices": [], "usage": usage}))
        return events

    def completions(self, body: JSON, faults: Faults) -> tuple[str, Any]:
        model = self.model_id(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)  # token ids or a batch: flattened
        if not isinstance(prompt, str) or not prompt:
            raise _bad_request("prompt must be a non-empty string or list")
        suffix = body.get("suffix")
        if suffix is not None and not self.supports_suffix:
            raise _bad_request("suffix is not supported")
        max_tokens = _positive_int(body, "max_tokens") if "max_tokens" in body else 16
        text = "completion: " + prompt + (f" ... {suffix}" if suffix is not None else "")
        if faults.long is not None:
            text = " ".join(f"w{i}" for i in range(faults.long))
        reply = Reply(content=pieces(text), prompt_tokens=max(1, len(prompt.split())))
        if max_tokens is not None and len(reply.content) > max_tokens:
            reply.content, reply.finish_reason = reply.content[:max_tokens], "length"
        top_n = _positive_int(body, "logprobs", minimum=0)  # legacy: an int, not a bool
        base = _envelope(f"cmpl-{self.next_id()}", "text_completion", model)
        if body.get("stream") is True:
            return "stream", self._completion_events(body, reply, base, top_n)
        logprobs = _legacy_logprobs(reply.content, top_n, 0) if isinstance(top_n, int) else None
        choice = {"index": 0, "text": "".join(reply.content), "logprobs": logprobs}
        choice["finish_reason"] = reply.finish_reason
        return "json", {**base, "choices": [choice], "usage": reply.usage()}

    def _completion_events(self, body: JSON, reply: Reply, base: JSON, top_n: Any) -> list[Event]:
        include_usage = _include_usage(body)

        def chunk(text: str, finish: str | None = None, logprobs: Any = None) -> JSON:
            choice = {"text": text, "logprobs": logprobs, "finish_reason": finish}
            return _chunk(base, choice, include_usage)

        events: list[Event] = []
        offset = 0
        for piece in reply.content:
            logprobs = _legacy_logprobs([piece], top_n, offset) if isinstance(top_n, int) else None
            events.append(("gen", chunk(piece, logprobs=logprobs)))
            offset += len(piece)
        finish = chunk("", reply.finish_reason)
        return events + self._closing(base, finish, reply.usage(), include_usage)

    def embeddings(self, body: JSON) -> tuple[str, Any]:
        model = self.model_id(body)
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            raise _bad_request("input must be a non-empty string or a non-empty list of strings")
        if not all(isinstance(text, str) and text for text in inputs):
            raise _bad_request("input must not contain empty or non-string items")
        dims = body.get("dimensions")
        if dims is not None:
            if "matryoshka" not in model.lower():
                raise _bad_request(
                    "This model does not support matryoshka representation, "
                    "changing output dimensions will lead to poor results."
                )
            dims = _positive_int(body, "dimensions")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise _bad_request("encoding_format must be 'float' or 'base64'")
        data = [
            {"object": "embedding", "index": i, "embedding": self._embed(text, dims, encoding)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(max(1, len(text.split())) for text in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        # The data is reversed on purpose: callers must sort by index.
        envelope = _envelope(f"embd-{self.next_id()}", "list", model)
        return "json", {**envelope, "data": data[::-1], "usage": usage}

    def _embed(self, text: str, dims: int | None, encoding: str) -> Any:
        if self.per_token_embeddings:
            # llama-cpp-python without pooling: a list of per-token float lists in the OpenAI
            # envelope; it has no base64 path, so encoding_format is ignored here.
            return [vector[:dims] for vector in token_embeddings_for(text)]
        vector = embedding_for(text)[:dims]
        if encoding == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector


def _legacy_logprobs(tokens: list[str], top_n: int, offset: int) -> JSON:
    """The /v1/completions logprobs object (parallel arrays, top_logprobs as dicts)."""
    offsets = [offset + sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    alternatives = {f"alt{i}": -2.0 - i for i in range(max(0, top_n - 1))}
    return {
        "tokens": tokens,
        "token_logprobs": [-0.5] * len(tokens),
        "top_logprobs": [{token: -0.5, **alternatives} for token in tokens],
        "text_offset": offsets,
    }


def shape_stream(events: list[Event], faults: Faults) -> list[Event]:
    """Apply the stream-shaping markers to a clean event list and add the [DONE] line.

    [[die-after:N]] is not applied here: the writer counts "gen" events as it sends them.
    """
    cut_finish = bool({"no-finish", "error-event"} & faults.flags)
    shaped: list[Event] = []
    generated = 0
    for kind, payload in events:
        if kind == "end" and cut_finish:
            continue
        shaped.append((kind, payload))
        if kind != "gen":
            continue
        generated += 1
        if generated == 1 and "garbage" in faults.flags:
            shaped.append(("raw", "{this is not json"))
        if generated == 2 and "error-event" in faults.flags:
            return [*shaped, ("raw", _MID_STREAM_ERROR), ("done", "[DONE]")]
    if "error-event" in faults.flags:  # fewer than two pieces: the error still comes
        shaped.append(("raw", _MID_STREAM_ERROR))
    return [*shaped, ("done", "[DONE]")]


def sse_bytes(payload: Any, comments: bool) -> bytes:
    data = payload if isinstance(payload, str) else _dumps(payload)
    if comments:  # the parser-robustness variant: comment and event lines, CRLF endings
        return f": ping\r\nevent: message\r\ndata: {data}\r\n\r\n".encode()
    return f"data: {data}\n\n".encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog is 5: a burst of connections would overflow it and see
    # resets no real model server (uvicorn: 2048) would give.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, backend: FakeBackend) -> None:
        self.backend = backend
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A peer that vanished is business as usual here; anything else is a bug worth a trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests' output is no place for an access log

    def setup(self) -> None:
        super().setup()
        # Like uvicorn (vLLM) and llama.cpp: small writes go out at once. Without it, Nagle's
        # algorithm holds a reused connection's answer for the peer's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.backend.lock:
            self.server.backend._connections.add(self.connection)
            self.server.backend.connections_accepted += 1

    def finish(self) -> None:
        with self.server.backend.lock:
            self.server.backend._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    # Every method is recorded: what a proxy must never forward has to show here.
    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        backend = self.server.backend
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"method": method, "path": path, "headers": headers, "json": body, "raw": raw}
        with backend.lock:
            backend.requests.append(record)
        try:
            self._route(method, path, body)
        except ApiError as err:
            self._send_json(err.status, err.body, err.headers)
        except ConnectionError:
            self.close_connection = True
        except Exception as exc:
            # A bug in this fake: answer 500 so the test fails loudly, then let
            # socketserver print the traceback.
            self.close_connection = True
            self._send_json(500, error_body(500, f"fake backend bug: {exc!r}"))
            raise

    def _read_body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        parts = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)

    def _route(self, method: str, path: str, body: Any) -> None:
        backend = self.server.backend
        if path == "/health":
            self._send_json(200, {"status": "ok"})
            return
        if not path.startswith("/v1/"):
            raise ApiError(404, "Not Found", body={"detail": "Not Found"})
        backend.check_auth(self.headers.get("Authorization"))
        if method == "POST" and not isinstance(body, dict):
            raise _bad_request("Request body must be a JSON object (invalid JSON?)")
        faults = Faults.parse(f"{backend.fault or ''}\n{_request_text(body)}")
        if faults.hang and not backend.sleep(faults.hang):
            self._abort()
            return
        if faults.status is not None:
            retry = RETRY_AFTER.get(faults.status)
            headers = {"Retry-After": retry} if retry else {}
            raise ApiError(faults.status, f"fake failure {faults.status}", headers)
        streaming = isinstance(body, dict) and body.get("stream") is True
        if faults.die_after is not None and not streaming:
            self._abort()  # a crash before any byte of the response
            return
        kind, result = self._dispatch(method, path, body, faults)
        if kind == "stream":
            self._write_stream(shape_stream(result, faults), faults, path)
        else:
            self._send_json(200, result)

    def _dispatch(self, method: str, path: str, body: Any, faults: Faults) -> tuple[str, Any]:
        backend = self.server.backend
        posts = {
            "/v1/chat/completions": lambda: backend.chat(body, faults),
            "/v1/completions": lambda: backend.completions(body, faults),
            "/v1/embeddings": lambda: backend.embeddings(body),
        }
        if method == "POST" and path in posts:
            return posts[path]()
        if method == "GET" and path == "/v1/models":
            return "json", {"object": "list", "data": list(map(backend.model_card, backend.models))}
        if method == "GET" and path.startswith("/v1/models/"):
            wanted = path.removeprefix("/v1/models/")  # ids like "org/Model" keep their slash
            for model in backend.models:
                if model["id"] == wanted:
                    return "json", backend.model_card(model)
            raise ApiError(404, f"The model `{wanted}` does not exist.")
        if path in posts or path == "/v1/models":
            raise ApiError(405, "Method Not Allowed", body={"detail": "Method Not Allowed"})
        raise ApiError(404, "Not Found", body={"detail": "Not Found"})

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = _dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _write_chunk(self, data: bytes) -> None:
        # wfile is unbuffered, so each HTTP chunk leaves at once, as uvicorn flushes each event.
        self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data) if data else b"0\r\n\r\n")

    def _write_stream(self, events: list[Event], faults: Faults, path: str) -> None:
        backend = self.server.backend
        delay = faults.slow if faults.slow is not None else backend.chunk_delay
        comments = "comments" in faults.flags
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        with backend.lock:
            backend.open_streams += 1
        outcome = "stream_done"
        try:
            sent = 0
            for position, (kind, payload) in enumerate(events):
                if faults.die_after is not None and kind != "pre" and sent >= faults.die_after:
                    outcome = self._abort_stream("stream_killed", path)
                    return
                if position and not backend.sleep(delay):
                    outcome = self._abort_stream("server_stopped", path)
                    return
                self._write_chunk(sse_bytes(payload, comments))
                sent += kind == "gen"
            # Recorded before the terminator goes out: a client that has seen the end of the
            # body must find the stream counted as done.
            self._end_stream(outcome, path)
            outcome = ""  # counted already
            self._write_chunk(b"")
        except OSError:  # BrokenPipeError, ConnectionResetError and kin: the client went away
            outcome = outcome and "client_closed"
            self.close_connection = True
        finally:
            if outcome:
                self._end_stream(outcome, path)

    def _abort_stream(self, outcome: str, path: str) -> str:
        """Counts the stream, then drops the connection: a client that sees the socket close
        must find the event recorded. Returns "" (nothing left to count)."""
        self._end_stream(outcome, path)
        self._abort()
        return ""

    def _end_stream(self, outcome: str, path: str) -> None:
        backend = self.server.backend
        with backend.lock:
            backend.open_streams -= 1
        backend.record_event(outcome, path)

    def _abort(self) -> None:
        """Drop the connection the way a crashed server would: no terminator, no response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake vLLM-like OpenAI-compatible server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    backend = FakeBackend(args.host, args.port, api_key=args.api_key)
    print(f"fake backend listening on {backend.url}", flush=True)
    with backend, contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()  # the server runs on its own thread until Ctrl-C or SIGTERM


if __name__ == "__main__":
    main()
