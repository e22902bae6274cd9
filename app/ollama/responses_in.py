"""OpenAI answers -> Ollama answers. Pure: dicts in, dicts out; no Flask, no I/O.

`Translator` handles both a whole completion (`stream: false` clients) and a stream fed one
event at a time, for chat (`message`) and generate (`response`) shapes, from chat or legacy
completions events. Tool-call fragments are accumulated by index and emitted whole, because
Ollama clients expect complete calls with object arguments (protocol.md §7 G1, G2).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..clock import now_rfc3339
from .context import encode as encode_context

# OpenAI finish_reason -> Ollama done_reason. Ollama never says "tool_calls" (G3).
_DONE_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "function_call": "stop",
    "content_filter": "stop",
    "repetition": "stop",
    "eos": "stop",
}


class StreamError(Exception):
    """The backend's answer broke off or reported an error; `message` is for the client."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        # Output made from earlier events of the same network read, still owed to the client.
        self.partial = b""


class Timing:
    """Monotonic marks of one request, for Ollama's nanosecond durations."""

    __slots__ = ("first", "headers", "last", "start")

    def __init__(self) -> None:
        self.start = time.perf_counter_ns()
        self.headers = 0
        self.first = 0
        self.last = 0

    def backend_answered(self) -> None:
        self.headers = time.perf_counter_ns()

    def token(self) -> None:
        now = time.perf_counter_ns()
        if not self.first:
            self.first = now
        self.last = now


class _ToolCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, call_id: str, name: str) -> None:
        self.id = call_id
        self.name = name
        self.arguments: list[str] = []


def event_error(event: dict[str, Any]) -> StreamError | None:
    """An in-band error event as a StreamError, keeping a client-error status it carries (vLLM
    rejects some requests with a 400 event once the stream is open)."""
    message = error_message(event)
    if message is None:
        return None
    error = event.get("error")
    code = error.get("code") if isinstance(error, dict) else event.get("code")
    status = code if isinstance(code, int) and 400 <= code < 500 else 502
    return StreamError(message, status)


def error_message(event: dict[str, Any]) -> str | None:
    """The message of an in-band error event, in any backend's dialect, or None."""
    error = event.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or "the backend reported an error")
    if isinstance(error, str) and error:
        return error
    if event.get("object") == "error":  # vLLM before 0.10.1
        return str(event.get("message") or "the backend reported an error")
    return None


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
        self.drop_thinking = drop_thinking
        # Alternatives are shown only when asked for (a backend may need to compute one anyway).
        self.top_logprobs = top_logprobs
        self.pieces = 0  # output chunks: the token count when a backend reports no usage
        # Generate's `context`: the turns so far; the answer's text is collected to append.
        self.conversation = conversation
        self._answer: list[str] = []
        self.timing = timing or Timing()
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.timings: dict[str, Any] | None = None
        self._calls: list[_ToolCall] = []
        self._call_at: dict[int, _ToolCall] = {}

    # -- streaming ---------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Ollama chunks for one backend event (often one, sometimes none)."""
        error = event_error(event)
        if error is not None:
            raise error
        if event.get("usage"):
            self.usage = event["usage"]
        if event.get("timings"):
            self.timings = event["timings"]
        chunks = []
        for choice in event.get("choices") or ():  # [] on the usage-only event
            delta = choice.get("delta")
            if delta is None:  # legacy completions stream text, not deltas
                delta = {"content": choice.get("text")}
            chunk = self._delta_chunk(delta, choice.get("logprobs"))
            if chunk is not None:
                chunks.append(chunk)
            reason = choice.get("finish_reason")
            if reason:
                self._finish(reason)
        return chunks

    def _delta_chunk(self, delta: dict[str, Any], logprobs: Any) -> dict[str, Any] | None:
        text = delta.get("content") or ""
        thinking = self._thinking(delta)
        calls = delta.get("tool_calls")
        if calls:
            self._accumulate(calls)
        tokens = convert_logprobs(logprobs, self.top_logprobs) if logprobs else None
        if not (text or thinking or tokens):
            # Role-only and finish events carry nothing; Ollama never sends empty chunks (G26).
            if calls:
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

    def _thinking(self, delta: dict[str, Any]) -> str:
        if self.drop_thinking:
            return ""
        # vLLM 0.11-0.16 sends the same text under both names: take one, never both (G22).
        return delta.get("reasoning") or delta.get("reasoning_content") or ""

    def _accumulate(self, deltas: list[dict[str, Any]]) -> None:
        for delta in deltas:
            index = delta.get("index", 0)
            function = delta.get("function") or {}
            call_id = delta.get("id") or ""
            call = self._call_at.get(index)
            # Some servers reuse index 0 for every parallel call, told apart only by a new id.
            if call is None or (call_id and call.id and call_id != call.id):
                call = _ToolCall(call_id, "")
                self._call_at[index] = call
                self._calls.append(call)
            elif call_id and not call.id:
                call.id = call_id
            if function.get("name"):
                call.name += function["name"]
            if function.get("arguments"):
                call.arguments.append(function["arguments"])

    def _finish(self, reason: str) -> None:
        if reason in ("error", "abort"):
            raise StreamError(f"the backend stopped the answer (finish_reason {reason!r})")
        self.finish_reason = reason

    def tool_chunk(self) -> dict[str, Any] | None:
        """The accumulated tool calls as one chunk, sent just before the final one."""
        if not self._calls:
            return None
        chunk = self._chunk("", "")
        (chunk["message"] if self.chat else chunk)["tool_calls"] = self._complete_calls()
        return chunk

    def _complete_calls(self) -> list[dict[str, Any]]:
        return [
            tool_call(call.id, call.name, "".join(call.arguments), position)
            for position, call in enumerate(self._calls)
        ]

    def final(self) -> dict[str, Any]:
        """The `done: true` chunk with Ollama's metrics; raises if the answer never finished."""
        chunk = self._chunk("", "")
        chunk.update(self._closing())
        return chunk

    def _closing(self) -> dict[str, Any]:
        if self.finish_reason is None:
            raise StreamError(
                "the backend's answer ended before it was complete (no finish_reason)"
            )
        closing: dict[str, Any] = {
            "done": True,
            "done_reason": _DONE_REASONS.get(self.finish_reason, "stop"),
        }
        if self.conversation is not None:
            answer = {"role": "assistant", "content": "".join(self._answer)}
            closing["context"] = encode_context([*self.conversation, answer])
        closing.update(self._metrics())
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
        error = event_error(completion)
        if error is not None:
            raise error
        choices = completion.get("choices")
        if not choices or not isinstance(choices[0], dict):
            raise StreamError("the backend's answer has no choices")
        choice = choices[0]
        self.usage = completion.get("usage")
        self.timings = completion.get("timings")
        # Without a stream there is no first-token mark: the whole exchange counts as decoding.
        self.timing.first = self.timing.start
        self.timing.last = time.perf_counter_ns()
        self._finish(choice.get("finish_reason") or "stop")
        answer = choice.get("message")
        if not isinstance(answer, dict):
            answer = {"content": choice.get("text")}
        text = answer.get("content") or ""
        if self.conversation is not None:
            self._answer.append(text)
        result = self._chunk(text, self._thinking(answer))
        tokens = convert_logprobs(choice.get("logprobs"), self.top_logprobs)
        if tokens:
            result["logprobs"] = tokens
        calls = answer.get("tool_calls")
        if calls:
            self._accumulate([{**call, "index": n} for n, call in enumerate(calls)])
            (result["message"] if self.chat else result)["tool_calls"] = self._complete_calls()
        result.update(self._closing())
        return result

    def _metrics(self) -> dict[str, int]:
        timing = self.timing
        end = time.perf_counter_ns()
        metrics = {"total_duration": end - timing.start}
        if timing.headers:
            metrics["load_duration"] = timing.headers - timing.start
        usage = self.usage or {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        llama = self.timings or {}
        if isinstance(llama.get("prompt_ms"), int | float):
            # llama.cpp measured its own prefill and decode: better than our view from outside.
            metrics["prompt_eval_duration"] = int(llama["prompt_ms"] * 1_000_000)
            metrics["eval_duration"] = int(llama.get("predicted_ms", 0) * 1_000_000)
        elif timing.first:
            metrics["prompt_eval_duration"] = timing.first - (timing.headers or timing.start)
            metrics["eval_duration"] = timing.last - timing.first
        if not isinstance(prompt_tokens, int) and isinstance(llama.get("prompt_n"), int):
            # llama.cpp counts cached prompt tokens apart (cache_n); Ollama counts them all.
            prompt_tokens = llama["prompt_n"] + int(llama.get("cache_n") or 0)
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


def parse_arguments(name: str, arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
        if isinstance(parsed, str):  # some models double-encode their arguments
            parsed = json.loads(parsed)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise StreamError(
            f"the backend returned invalid tool call arguments for {name!r}: {arguments[:200]!r}"
        )
    return parsed


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
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
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
    if top and alternatives:
        token["top_logprobs"] = [
            _token(item) for item in alternatives[:top] if isinstance(item, dict)
        ]
    return token
