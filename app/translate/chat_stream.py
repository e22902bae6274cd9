"""Reading a backend's OpenAI answer, whatever client API it is translated for.

`CompletionReader` takes chat completion (or legacy completion) events one at a time, or one
whole completion, and keeps what every translator needs: the text and reasoning of each piece,
tool-call fragments accumulated into whole calls, the finish reason, usage, and llama.cpp's
timings. Backends differ in all of these (docs/protocol.md, "Streaming from the backend"); the
differences are absorbed here, once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .limits import MAX_TOOL_CALLS


class StreamError(Exception):
    """The backend's answer broke off or reported an error; `message` is for the client."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _malformed(problem: str) -> StreamError:
    return StreamError(f"the backend sent a malformed answer: {problem}")


def _too_many_calls() -> StreamError:
    # As many as one message may carry in a request: each costs a parse and a few events at the
    # end of the answer, all at once (200,000 streamed calls stalled the worker for 7 s).
    return StreamError(f"the backend returned more than {MAX_TOOL_CALLS} tool calls")


def _text(value: Any, what: str) -> str:
    """A text field of the backend's answer: a string, or nothing."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _malformed(f"{what} is not a string")
    return value


def parse_event(payload: bytes) -> dict[str, Any]:
    """One SSE data payload as a JSON object."""
    try:
        # Decoded first: json.loads(bytes) sniffs the encoding in Python on every event.
        event = json.loads(payload.decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deeply
        event = None
    if not isinstance(event, dict):
        raise StreamError(f"the backend sent a malformed event: {payload[:100]!r}")
    return event


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


class ToolCall:
    """One tool call, assembled from the fragments a stream sends."""

    __slots__ = ("fragments", "id", "name")

    def __init__(self, call_id: str, name: str) -> None:
        self.id = call_id
        self.name = name
        self.fragments: list[str] = []

    @property
    def arguments(self) -> str:
        return "".join(self.fragments)


@dataclass(slots=True)
class Piece:
    """What one choice of one event said."""

    text: str
    thinking: str
    logprobs: Any  # the backend's logprobs object, chat or legacy form, or None
    calls: bool  # it carried tool-call fragments


def parse_arguments(name: str, arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as an object; anything else is the backend's fault."""
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
        if isinstance(parsed, str):  # some models double-encode their arguments
            parsed = json.loads(parsed)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise StreamError(
            f"the backend returned invalid tool call arguments for {name!r}: {arguments[:200]!r}"
        )
    return parsed


class CompletionReader:
    def __init__(self, *, keep_thinking: bool = True) -> None:
        self.keep_thinking = keep_thinking
        self.finish_reason: str | None = None
        # vLLM names the stop string that ended the answer (`stop_reason`); others say only
        # "stop", for a stop string and for the end of the turn alike.
        self.stop_string: str | None = None
        self.usage: dict[str, Any] | None = None
        self.timings: dict[str, Any] | None = None  # llama.cpp's own measurements
        self.calls: list[ToolCall] = []
        self._call_at: dict[int, ToolCall] = {}

    def feed(self, event: dict[str, Any]) -> list[Piece]:
        """The pieces of one streamed event (usually one; none on the usage-only event).

        Every field read is checked for its type here, once: a backend's answer of the wrong
        shape is a StreamError (the API's error, in-band once a stream has started), never a
        TypeError further on that would cut a stream with no error at all.
        """
        error = event_error(event)
        if error is not None:
            raise error
        if isinstance(event.get("usage"), dict) and event["usage"]:
            self.usage = event["usage"]  # on any event: the last one wins
        if isinstance(event.get("timings"), dict) and event["timings"]:
            self.timings = event["timings"]
        choices = event.get("choices") or ()  # [] on the usage-only event
        if not isinstance(choices, list | tuple):
            raise _malformed("choices is not a list")
        pieces = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise _malformed("a choice is not an object")
            delta = choice.get("delta")
            if delta is None:  # legacy completions stream text, not deltas
                delta = {"content": choice.get("text")}
            elif not isinstance(delta, dict):
                raise _malformed("a delta is not an object")
            calls = delta.get("tool_calls")
            if calls:
                self._accumulate(calls)
            thinking = self._thinking(delta)
            content = _text(delta.get("content"), "content")
            pieces.append(Piece(content, thinking, choice.get("logprobs"), bool(calls)))
            reason = choice.get("finish_reason")
            if reason:
                self._finish(reason, choice.get("stop_reason"))
        return pieces

    def whole(self, completion: dict[str, Any]) -> Piece:
        """A non-streamed completion (chat or legacy) as one piece, tool calls gathered."""
        error = event_error(completion)
        if error is not None:
            raise error
        choices = completion.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise StreamError("the backend's answer has no choices")
        choice = choices[0]
        usage, timings = completion.get("usage"), completion.get("timings")
        self.usage = usage if isinstance(usage, dict) else None
        self.timings = timings if isinstance(timings, dict) else None
        self._finish(choice.get("finish_reason") or "stop", choice.get("stop_reason"))
        answer = choice.get("message")
        if not isinstance(answer, dict):
            answer = {"content": choice.get("text")}
        calls = answer.get("tool_calls")
        if calls:
            if not isinstance(calls, list) or not all(isinstance(call, dict) for call in calls):
                raise _malformed("tool_calls is not a list of objects")
            if len(calls) > MAX_TOOL_CALLS:
                raise _too_many_calls()
            self._accumulate([{**call, "index": n} for n, call in enumerate(calls)])
        text = _text(answer.get("content"), "content")
        return Piece(text, self._thinking(answer), choice.get("logprobs"), bool(calls))

    def _thinking(self, delta: dict[str, Any]) -> str:
        if not self.keep_thinking:
            return ""
        # vLLM 0.11-0.16 sends the same text under both names: take one, never both.
        thinking = delta.get("reasoning") or delta.get("reasoning_content")
        return _text(thinking, "reasoning")

    def _accumulate(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise _malformed("tool_calls is not a list")
        for delta in deltas:
            if not isinstance(delta, dict):
                raise _malformed("a tool call is not an object")
            function = delta.get("function") or {}
            index = delta.get("index", 0)
            if not isinstance(function, dict) or not isinstance(index, int):
                raise _malformed("a tool call needs a whole-number index and a function object")
            call_id = _text(delta.get("id"), "a tool call's id")
            call = self._call_at.get(index)
            # Some servers reuse index 0 for every parallel call, told apart only by a new id.
            if call is None or (call_id and call.id and call_id != call.id):
                if len(self.calls) >= MAX_TOOL_CALLS:
                    raise _too_many_calls()
                call = ToolCall(call_id, "")
                self._call_at[index] = call
                self.calls.append(call)
            elif call_id and not call.id:
                call.id = call_id
            name = _text(function.get("name"), "a tool call's name")
            # A name may come in pieces; some servers (llama-cpp-python) repeat it whole in
            # every fragment instead.
            if name and name != call.name:
                call.name += name
            arguments = _text(function.get("arguments"), "a tool call's arguments")
            if arguments:
                call.fragments.append(arguments)

    def _finish(self, reason: Any, stop_reason: Any = None) -> None:
        if not isinstance(reason, str):
            raise _malformed("finish_reason is not a string")
        if reason in ("error", "abort"):
            raise StreamError(f"the backend stopped the answer (finish_reason {reason!r})")
        self.finish_reason = reason
        if isinstance(stop_reason, str):
            self.stop_string = stop_reason

    def check_finished(self) -> str:
        """The finish reason; a stream that ended without one was cut off."""
        if self.finish_reason is None:
            raise StreamError(
                "the backend's answer ended before it was complete (no finish_reason)"
            )
        return self.finish_reason


class PieceTranslator:
    """What the answer translators of the SSE APIs (Anthropic, Responses) share: the backend's
    answer read piece by piece, fed one event at a time (the relay's `event`) or replayed from
    a whole completion. Subclasses say what a piece becomes (`_piece`) and how a stream ends
    (`tail`)."""

    def __init__(self, *, drop_thinking: bool) -> None:
        self.reader = CompletionReader(keep_thinking=not drop_thinking)
        self.pieces = 0  # output pieces: the token count when the backend reports no usage

    @property
    def usage(self) -> dict[str, Any] | None:
        return self.reader.usage

    def event(self, payload: bytes) -> bytes:
        out: list[bytes] = []
        for piece in self.reader.feed(parse_event(payload)):
            self._counted(piece, out)
        return b"".join(out)

    def replay(self, completion: dict[str, Any]) -> bytes:
        """A whole completion as the stream a streaming client expects."""
        out: list[bytes] = []
        self._counted(self.reader.whole(completion), out)
        return b"".join(out) + self.tail()

    def _counted(self, piece: Piece, out: list[bytes]) -> None:
        self._piece(piece, out)
        if piece.text or piece.thinking:
            self.pieces += 1

    def tail(self) -> bytes:
        raise NotImplementedError

    def _piece(self, piece: Piece, out: list[bytes]) -> None:
        raise NotImplementedError
