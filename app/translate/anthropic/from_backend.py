"""OpenAI chat completions answers -> Anthropic Messages answers: a stream of named events, or
one message object.

`MessageTranslator` is fed the backend's events one at a time (the relay's `Translation`) or one
whole completion. The stream follows the grammar the Anthropic SDKs accumulate (docs/
messages-api.md, "Streaming"):

    message_start ping (content_block_start content_block_delta* content_block_stop)*
    message_delta message_stop          or, once something broke, an `error` event last

Blocks are numbered from 0 and only one is open at a time: thinking and text alternate as the
backend sends them; a thinking block ends with an opaque `signature_delta`. Tool calls are
gathered whole and sent after the text, each as one block with its arguments parsed and
re-encoded in one `input_json_delta`: a client that concatenates broken JSON fragments fails.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ...wire import sse_event
from ..chat_stream import Piece, PieceTranslator, ToolCall, parse_arguments
from .errors import error_object
from .to_backend import client_call_id

PING = sse_event("ping", {"type": "ping"})
# While the backend says nothing (a long prompt being read), the client hears a ping this often:
# clients, proxies and load balancers drop connections that stay silent.
KEEPALIVE_SECONDS = 10.0
_STOP_REASONS = {"length": "max_tokens", "content_filter": "refusal"}


def signature(thinking: str) -> str:
    """An opaque, non-empty signature for a thinking block (clients that replay history drop
    unsigned ones); derived from the text, so the same thinking signs the same."""
    return "sig_" + hashlib.blake2b(thinking.encode(), digest_size=16).hexdigest()


class MessageTranslator(PieceTranslator):
    keepalive = PING
    keepalive_seconds = KEEPALIVE_SECONDS

    def __init__(
        self,
        model: str,
        message_id: str,
        *,
        input_estimate: int,
        stop_sequences: tuple[str, ...] = (),
        drop_thinking: bool = False,
    ) -> None:
        super().__init__(drop_thinking=drop_thinking)
        self.model = model  # the name the client asked for, echoed
        self.id = message_id
        self.input_estimate = input_estimate
        self.stop_sequences = stop_sequences
        self._started = False
        self._index = -1
        self._open: str | None = None  # the kind of the block being streamed
        self._thinking: list[str] = []  # of the open thinking block, for its signature

    # -- the relay's side (event and replay: PieceTranslator) ----------------------------------

    def tail(self) -> bytes:
        """The tool-call blocks, then message_delta and message_stop; raises StreamError when the
        answer never finished or a call's arguments are not a JSON object."""
        reason = self.reader.check_finished()
        calls = self._parsed_calls()
        out: list[bytes] = []
        self._start(out)
        self._close(out)
        for call, arguments in calls:
            self._index += 1
            block = {
                "type": "tool_use",
                "id": client_call_id(call.id),
                "name": call.name,
                "input": {},
            }
            out.append(self._block_event("content_block_start", content_block=block))
            json_delta = {"type": "input_json_delta", "partial_json": _encoded(arguments)}
            out.append(self._block_event("content_block_delta", delta=json_delta))
            out.append(self._block_event("content_block_stop"))
        stop_reason, stop_sequence = self._stop(reason, bool(calls))
        ending = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        out.append(
            sse_event(
                "message_delta", {"type": "message_delta", "delta": ending, "usage": self._usage()}
            )
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, message: str) -> bytes:
        return sse_event("error", error_object(message, 500))

    # -- a whole answer --------------------------------------------------------------------------

    def complete(self, completion: dict[str, Any]) -> dict[str, Any]:
        """The message object for a non-streamed completion."""
        piece = self.reader.whole(completion)
        content: list[dict[str, Any]] = []
        if piece.thinking:
            content.append(
                {
                    "type": "thinking",
                    "thinking": piece.thinking,
                    "signature": signature(piece.thinking),
                }
            )
        if piece.text:
            content.append({"type": "text", "text": piece.text})
        self.pieces = 1 if piece.text or piece.thinking else 0
        calls = self._parsed_calls()
        content.extend(
            {
                "type": "tool_use",
                "id": client_call_id(call.id),
                "name": call.name,
                "input": arguments,
            }
            for call, arguments in calls
        )
        stop_reason, stop_sequence = self._stop(self.reader.check_finished(), bool(calls))
        message = self._message(content)
        message.update(stop_reason=stop_reason, stop_sequence=stop_sequence, usage=self._usage())
        return message

    # -- inside --------------------------------------------------------------------------------

    def _message(self, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
        }

    def _piece(self, piece: Piece, out: list[bytes]) -> None:
        if piece.thinking:
            self._open_block("thinking", out)
            self._thinking.append(piece.thinking)
            delta = {"type": "thinking_delta", "thinking": piece.thinking}
            out.append(self._block_event("content_block_delta", delta=delta))
        if piece.text:
            self._open_block("text", out)
            delta = {"type": "text_delta", "text": piece.text}
            out.append(self._block_event("content_block_delta", delta=delta))

    def _start(self, out: list[bytes]) -> None:
        """message_start, sent with the first output (not before: an error that comes first
        still gets its HTTP status), then a ping as Anthropic's own API sends."""
        if self._started:
            return
        self._started = True
        message = self._message([])
        usage = {"input_tokens": self.input_estimate, "output_tokens": 0}
        message.update(stop_reason=None, stop_sequence=None, usage=usage)
        out.append(sse_event("message_start", {"type": "message_start", "message": message}))
        out.append(PING)

    def _open_block(self, kind: str, out: list[bytes]) -> None:
        self._start(out)
        if self._open == kind:
            return
        self._close(out)
        self._index += 1
        self._open = kind
        block: dict[str, Any] = {"type": "text", "text": ""}
        if kind == "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
        out.append(self._block_event("content_block_start", content_block=block))

    def _close(self, out: list[bytes]) -> None:
        if self._open == "thinking":
            delta = {"type": "signature_delta", "signature": signature("".join(self._thinking))}
            out.append(self._block_event("content_block_delta", delta=delta))
            self._thinking = []
        if self._open is not None:
            out.append(self._block_event("content_block_stop"))
        self._open = None

    def _block_event(self, name: str, **fields: Any) -> bytes:
        return sse_event(name, {"type": name, "index": self._index, **fields})

    def _parsed_calls(self) -> list[tuple[ToolCall, dict[str, Any]]]:
        return [(call, parse_arguments(call.name, call.arguments)) for call in self.reader.calls]

    def _stop(self, reason: str, called: bool) -> tuple[str, str | None]:
        # A tool call decides, whatever the backend's finish_reason (vLLM says "stop" for a
        # forced tool choice).
        if called:
            return "tool_use", None
        matched = self.reader.stop_string
        if reason == "stop" and matched is not None and matched in self.stop_sequences:
            return "stop_sequence", matched
        return _STOP_REASONS.get(reason, "end_turn"), None

    def _usage(self) -> dict[str, int]:
        usage = self.reader.usage or {}
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        return {
            "input_tokens": prompt if isinstance(prompt, int) else self.input_estimate,
            "output_tokens": completion if isinstance(completion, int) else self.pieces,
        }


def _encoded(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
