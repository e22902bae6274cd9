"""OpenAI answers -> Ollama answers: chunk dicts for a stream, one dict for a whole answer.

`Translator` handles both a whole completion (`stream: false` clients) and a stream fed one
event at a time, for chat (`message`) and generate (`response`) shapes, from chat or legacy
completions events. Tool-call fragments are accumulated and emitted whole, because Ollama
clients expect complete calls with object arguments (docs/protocol.md, "Tool calls").
"""

from __future__ import annotations

import time
from typing import Any

from ...clock import now_rfc3339
from ...wire import ndjson
from ..chat_stream import CompletionReader, Piece, parse_arguments, parse_event
from .context import encode as encode_context

# OpenAI finish_reason -> Ollama done_reason. Ollama never says "tool_calls".
_DONE_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "function_call": "stop",
    "content_filter": "stop",
    "repetition": "stop",
    "eos": "stop",
}


class Timing:
    """Monotonic marks of one request, for Ollama's nanosecond durations."""

    __slots__ = ("first", "headers", "last", "sent", "start")

    def __init__(self) -> None:
        self.start = time.perf_counter_ns()
        self.sent = 0  # the backend request left
        self.headers = 0  # the backend's answer started (a whole answer: arrived)
        self.first = 0
        self.last = 0

    def backend_asked(self) -> None:
        self.sent = time.perf_counter_ns()

    def backend_answered(self) -> None:
        self.headers = time.perf_counter_ns()

    def token(self) -> None:
        now = time.perf_counter_ns()
        if not self.first:
            self.first = now
        self.last = now


class Translator:
    def __init__(
        self,
        model: str,
        *,
        chat: bool,
        drop_thinking: bool = False,
        top_logprobs: int = 0,
        conversation: list[dict[str, str]] | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.model = model
        self.chat = chat
        self.reader = CompletionReader(keep_thinking=not drop_thinking)
        # Alternatives are shown only when asked for (a backend may need to compute one anyway).
        self.top_logprobs = top_logprobs
        self.pieces = 0  # output chunks: the token count when a backend reports no usage
        # Generate's `context`: the turns so far; the answer's text is collected to append.
        self.conversation = conversation
        self._answer: list[str] = []
        self.timing = timing or Timing()

    @property
    def usage(self) -> dict[str, Any] | None:
        return self.reader.usage

    # -- streaming: the relay's side (bytes) -------------------------------------------------

    def event(self, payload: bytes) -> bytes:
        """NDJSON lines for one backend event payload."""
        return b"".join(ndjson(chunk) for chunk in self.feed(parse_event(payload)))

    def tail(self) -> bytes:
        """The lines that end a stream: the tool calls, then the final `done` chunk."""
        calls = self.tool_chunk()
        final = ndjson(self.final())
        return final if calls is None else ndjson(calls) + final

    def error(self, message: str) -> bytes:
        return ndjson({"error": message})

    # -- streaming: chunks -------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Ollama chunks for one backend event (often one, sometimes none)."""
        chunks = []
        for piece in self.reader.feed(event):
            chunk = self._piece_chunk(piece)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _piece_chunk(self, piece: Piece) -> dict[str, Any] | None:
        text, thinking = piece.text, piece.thinking
        tokens = convert_logprobs(piece.logprobs, self.top_logprobs) if piece.logprobs else None
        if not (text or thinking or tokens):
            # Role-only and finish events carry nothing; Ollama never sends empty chunks.
            if piece.calls:
                self.timing.token()
            return None
        self.timing.token()
        self.pieces += 1
        if self.conversation is not None and text:
            self._answer.append(text)
        chunk = self._chunk(text, thinking)
        if tokens:
            chunk["logprobs"] = tokens
        return chunk

    def tool_chunk(self) -> dict[str, Any] | None:
        """The accumulated tool calls as one chunk, sent just before the final one."""
        if not self.reader.calls:
            return None
        chunk = self._chunk("", "")
        (chunk["message"] if self.chat else chunk)["tool_calls"] = self._complete_calls()
        return chunk

    def _complete_calls(self) -> list[dict[str, Any]]:
        return [
            tool_call(call.id, call.name, call.arguments, position)
            for position, call in enumerate(self.reader.calls)
        ]

    def final(self) -> dict[str, Any]:
        """The `done: true` chunk with Ollama's metrics; raises if the answer never finished."""
        chunk = self._chunk("", "")
        chunk.update(self._closing())
        return chunk

    def _closing(self, *, whole: bool = False) -> dict[str, Any]:
        reason = self.reader.check_finished()
        closing: dict[str, Any] = {"done": True, "done_reason": _DONE_REASONS.get(reason, "stop")}
        if self.conversation is not None:
            answer = {"role": "assistant", "content": "".join(self._answer)}
            closing["context"] = encode_context([*self.conversation, answer])
        closing.update(self._metrics(whole=whole))
        return closing

    def _chunk(self, text: str, thinking: str) -> dict[str, Any]:
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            return {"model": self.model, "created_at": now_rfc3339(), "message": message,
                    "done": False}  # fmt: skip
        chunk: dict[str, Any] = {"model": self.model, "created_at": now_rfc3339(), "response": text}
        if thinking:
            chunk["thinking"] = thinking
        chunk["done"] = False
        return chunk

    # -- whole answers -----------------------------------------------------------------------

    def complete(self, completion: dict[str, Any]) -> dict[str, Any]:
        """One Ollama object for a non-streamed completion (chat or legacy)."""
        piece = self.reader.whole(completion)
        if self.conversation is not None:
            self._answer.append(piece.text)
        result = self._chunk(piece.text, piece.thinking)
        tokens = convert_logprobs(piece.logprobs, self.top_logprobs)
        if tokens:
            result["logprobs"] = tokens
        if self.reader.calls:
            (result["message"] if self.chat else result)["tool_calls"] = self._complete_calls()
        result.update(self._closing(whole=True))
        return result

    def _metrics(self, *, whole: bool) -> dict[str, int]:
        timing = self.timing
        end = time.perf_counter_ns()
        metrics = {"total_duration": end - timing.start}
        usage = self.reader.usage or {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        llama = self.reader.timings or {}
        if whole:
            # Ollama's time to get the model ready; here the proxy's own, up to the backend call.
            asked = timing.sent or timing.start
            metrics["load_duration"] = max(1, asked - timing.start)
        elif timing.headers:
            metrics["load_duration"] = timing.headers - timing.start
        if isinstance(llama.get("prompt_ms"), int | float):
            # llama.cpp measured its own prefill and decode: better than our view from outside.
            predicted = llama.get("predicted_ms")
            metrics["prompt_eval_duration"] = int(llama["prompt_ms"] * 1_000_000)
            metrics["eval_duration"] = int(
                (predicted if isinstance(predicted, int | float) else 0) * 1_000_000
            )
        elif whole:
            # One answer, no first-token mark: the backend's time is split between prompt and
            # generation in proportion to their token counts.
            spent = (timing.headers or end) - (timing.sent or timing.start)
            prompt = prompt_tokens if isinstance(prompt_tokens, int) and prompt_tokens > 0 else 1
            made = completion_tokens if isinstance(completion_tokens, int) else 1
            share = spent * prompt // (prompt + max(made, 1))
            metrics["prompt_eval_duration"] = max(1, share)
            metrics["eval_duration"] = max(1, spent - share)
        elif timing.first:
            metrics["prompt_eval_duration"] = timing.first - (timing.headers or timing.start)
            metrics["eval_duration"] = timing.last - timing.first
        if not isinstance(prompt_tokens, int) and isinstance(llama.get("prompt_n"), int):
            # llama.cpp counts cached prompt tokens apart (cache_n); Ollama counts them all.
            cached = llama.get("cache_n")
            prompt_tokens = llama["prompt_n"] + (cached if isinstance(cached, int) else 0)
        if not isinstance(completion_tokens, int) and isinstance(llama.get("predicted_n"), int):
            completion_tokens = llama["predicted_n"]
        if isinstance(prompt_tokens, int):
            metrics["prompt_eval_count"] = prompt_tokens
        if isinstance(completion_tokens, int):
            metrics["eval_count"] = completion_tokens
        elif self.pieces:
            # Without usage (llama-cpp-python streams) each streamed piece is one token.
            metrics["eval_count"] = self.pieces
        # Ollama omits zero metrics (omitempty); clients divide by eval_duration.
        return {key: value for key, value in metrics.items() if value > 0}


def tool_call(call_id: str, name: str, arguments: str, index: int) -> dict[str, Any]:
    """One complete Ollama tool call; arguments must be a JSON object (the SDKs require it)."""
    parsed = parse_arguments(name, arguments)
    function: dict[str, Any] = {"index": index, "name": name, "arguments": parsed}
    call: dict[str, Any] = {"function": function}
    if call_id:
        call["id"] = call_id
    return call


def convert_logprobs(logprobs: Any, top: int = 20) -> list[dict[str, Any]] | None:
    """OpenAI chat (`{"content": [...]}`) or legacy (`{"tokens": [...], ...}`) logprobs ->
    Ollama's per-token list, with at most `top` alternatives per token."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if isinstance(content, list):
        return [_token(entry, top) for entry in content if isinstance(entry, dict)] or None
    tokens = logprobs.get("tokens")
    if not isinstance(tokens, list):
        return None
    values = logprobs.get("token_logprobs")
    tops = logprobs.get("top_logprobs")
    values = values if isinstance(values, list) else []
    tops = tops if isinstance(tops, list) else []
    converted = []
    for position, token in enumerate(tokens):
        entry: dict[str, Any] = {
            "token": token,
            "logprob": values[position] if position < len(values) else 0.0,
        }
        alternatives = tops[position] if position < len(tops) else None
        if top and isinstance(alternatives, dict) and alternatives:
            entry["top_logprobs"] = [
                {"token": t, "logprob": lp} for t, lp in list(alternatives.items())[:top]
            ]
        converted.append(entry)
    return converted or None


def _token(entry: dict[str, Any], top: int = 0) -> dict[str, Any]:
    token = {"token": entry.get("token", ""), "logprob": entry.get("logprob", 0.0)}
    if entry.get("bytes") is not None:
        token["bytes"] = entry["bytes"]
    alternatives = entry.get("top_logprobs")
    if top and alternatives and isinstance(alternatives, list):
        token["top_logprobs"] = [
            _token(item) for item in alternatives[:top] if isinstance(item, dict)
        ]
    return token


def load_reply(model: str, keep_alive: float | None, *, chat: bool) -> dict[str, Any]:
    """Ollama's answer to an empty prompt or message list: the model is (un)loaded. Ollama
    sends it as one JSON object even when streaming was asked for."""
    reply: dict[str, Any] = {"model": model, "created_at": now_rfc3339()}
    if chat:
        reply["message"] = {"role": "assistant", "content": ""}
    else:
        reply["response"] = ""
    reply["done"] = True
    reply["done_reason"] = "unload" if keep_alive == 0 else "load"
    return reply


def replay_lines(result: dict[str, Any], *, chat: bool) -> bytes:
    """A whole answer in Ollama's stream framing: one chunk with everything the model said, then
    the final chunk. For backends that cannot stream a request (Flavour.streams_tool_calls)."""
    said_keys = (
        ("message", "logprobs") if chat else ("response", "thinking", "tool_calls", "logprobs")
    )
    said = {"model": result["model"], "created_at": result["created_at"]}
    final = dict(result)
    for key in said_keys:
        if key in final:
            said[key] = final.pop(key)
    said["done"] = False
    if chat:
        final["message"] = {"role": "assistant", "content": ""}
    else:
        said.setdefault("response", "")
        final["response"] = ""
    return ndjson(said) + ndjson(final)
