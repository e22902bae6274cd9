"""OpenAI chat completions answers -> OpenAI Responses answers: a stream of events, or one
response object.

`ResponseTranslator` is fed the backend's events one at a time (the relay's `Translation`) or
one whole completion. The stream follows the grammar the openai SDK checks and Codex reads
(docs/responses-api.md, "Streaming"):

    response.created response.in_progress item* (response.completed | response.incomplete)
    or, once something broke: error response.failed

One item is open at a time and each has its own `output_index`: a `reasoning` item (its text as
a summary, which is what Codex shows), a `message` item with one `output_text` part, then each
function call, gathered whole and sent with its arguments parsed and re-encoded (Codex takes an
item into its history only from `response.output_item.done`, so every item there is complete).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ...wire import sse_event
from ..chat_request import new_id
from ..chat_stream import Piece, PieceTranslator, parse_arguments
from .request_types import ResponsesRequest

# While the backend says nothing, a comment line keeps the connection alive; both SDKs' event
# parsers skip comments.
KEEPALIVE = b": keepalive\n\n"
KEEPALIVE_SECONDS = 10.0
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ResponseTranslator(PieceTranslator):
    keepalive = KEEPALIVE
    keepalive_seconds = KEEPALIVE_SECONDS

    def __init__(
        self,
        request: ResponsesRequest,
        response_id: str,
        *,
        namespaces: dict[str, tuple[str, str]],
        input_estimate: int,
        drop_thinking: bool = False,
    ) -> None:
        super().__init__(drop_thinking=drop_thinking)
        self.request = request
        self.id = response_id
        self.namespaces = namespaces
        self.input_estimate = input_estimate
        self.created_at = int(time.time())
        self._sequence = 0
        self._started = False
        self._items: list[dict[str, Any]] = []  # finished output items, in output_index order
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._text: list[str] = []  # of the open item

    # -- the relay's side (event and replay: PieceTranslator) ----------------------------------

    def tail(self) -> bytes:
        reason = self.reader.check_finished()
        calls = self._calls()
        out: list[bytes] = []
        self._begin(out)
        incomplete = _INCOMPLETE.get(reason) if not calls else None
        self._close(out, "incomplete" if incomplete else "completed")
        for call in calls:
            index = len(self._items)
            arguments = call["arguments"]
            added = {**call, "status": "in_progress", "arguments": ""}
            out.append(self._emit("response.output_item.added", output_index=index, item=added))
            place = {"item_id": call["id"], "output_index": index}
            out.append(
                self._emit("response.function_call_arguments.delta", **place, delta=arguments)
            )
            out.append(
                self._emit("response.function_call_arguments.done", **place, arguments=arguments)
            )
            out.append(self._emit("response.output_item.done", output_index=index, item=call))
            self._items.append(call)
        response = self._response("incomplete" if incomplete else "completed", incomplete)
        name = "response.incomplete" if incomplete else "response.completed"
        out.append(self._emit(name, response=response))
        return b"".join(out)

    def error(self, message: str) -> bytes:
        out: list[bytes] = []
        self._begin(out)
        out.append(self._emit("error", code="server_error", message=message, param=None))
        response = self._response("failed")
        response["error"] = {"code": "server_error", "message": message}
        out.append(self._emit("response.failed", response=response))
        return b"".join(out)

    # -- a whole answer --------------------------------------------------------------------------

    def complete(self, completion: dict[str, Any]) -> dict[str, Any]:
        piece = self.reader.whole(completion)
        reason = self.reader.check_finished()
        calls = self._calls()
        incomplete = _INCOMPLETE.get(reason) if not calls else None
        if piece.thinking:
            self._items.append(_reasoning_item(new_id("rs_"), piece.thinking))
        if piece.text:
            status = "incomplete" if incomplete else "completed"
            self._items.append(_message_item(new_id("msg_"), piece.text, status))
        self.pieces = 1 if piece.text or piece.thinking else 0
        self._items.extend(calls)
        return self._response("incomplete" if incomplete else "completed", incomplete)

    # -- inside --------------------------------------------------------------------------------

    def _emit(self, name: str, **fields: Any) -> bytes:
        event = {"type": name, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse_event(name, event)

    def _begin(self, out: list[bytes]) -> None:
        """response.created and response.in_progress, with the first output (not before: an
        error that comes first still gets its HTTP status)."""
        if self._started:
            return
        self._started = True
        response = self._response("in_progress")
        out.append(self._emit("response.created", response=response))
        out.append(self._emit("response.in_progress", response=response))

    def _piece(self, piece: Piece, out: list[bytes]) -> None:
        if piece.thinking:
            self._open_item("reasoning", out)
            out.append(
                self._emit(
                    "response.reasoning_summary_text.delta",
                    **self._place(),
                    summary_index=0,
                    delta=piece.thinking,
                )
            )
            self._text.append(piece.thinking)
        if piece.text:
            self._open_item("message", out)
            out.append(
                self._emit(
                    "response.output_text.delta",
                    **self._place(),
                    content_index=0,
                    delta=piece.text,
                    logprobs=[],
                )
            )
            self._text.append(piece.text)

    def _place(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": len(self._items)}

    def _open_item(self, kind: str, out: list[bytes]) -> None:
        self._begin(out)
        if self._open is not None and self._open["type"] == kind:
            return
        self._close(out, "completed")
        index = len(self._items)
        if kind == "reasoning":
            self._open = {"id": new_id("rs_"), "type": "reasoning", "summary": []}
            out.append(
                self._emit("response.output_item.added", output_index=index, item=self._open)
            )
            part = {"type": "summary_text", "text": ""}
            out.append(
                self._emit(
                    "response.reasoning_summary_part.added",
                    **self._place(),
                    summary_index=0,
                    part=part,
                )
            )
        else:
            self._open = {
                "id": new_id("msg_"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            out.append(
                self._emit("response.output_item.added", output_index=index, item=self._open)
            )
            out.append(
                self._emit(
                    "response.content_part.added",
                    **self._place(),
                    content_index=0,
                    part=_output_text(""),
                )
            )

    def _close(self, out: list[bytes], status: str) -> None:
        item = self._open
        if item is None:
            return
        text, place = "".join(self._text), self._place()
        if item["type"] == "reasoning":
            done = _reasoning_item(item["id"], text)
            out.append(
                self._emit(
                    "response.reasoning_summary_text.done", **place, summary_index=0, text=text
                )
            )
            out.append(
                self._emit(
                    "response.reasoning_summary_part.done",
                    **place,
                    summary_index=0,
                    part=done["summary"][0],
                )
            )
        else:
            done = _message_item(item["id"], text, status)
            out.append(
                self._emit(
                    "response.output_text.done", **place, content_index=0, text=text, logprobs=[]
                )
            )
            out.append(
                self._emit(
                    "response.content_part.done", **place, content_index=0, part=done["content"][0]
                )
            )
        out.append(
            self._emit("response.output_item.done", output_index=place["output_index"], item=done)
        )
        self._items.append(done)
        self._open, self._text = None, []

    def _calls(self) -> list[dict[str, Any]]:
        """The backend's tool calls as function_call items; raises StreamError for arguments
        that are not a JSON object."""
        items = []
        for call in self.reader.calls:
            arguments = parse_arguments(call.name, call.arguments)
            item: dict[str, Any] = {
                "id": new_id("fc_"),
                "type": "function_call",
                "status": "completed",
                "call_id": call.id or new_id("call_"),
                "name": call.name,
                "arguments": json.dumps(arguments, ensure_ascii=False, separators=(",", ":")),
            }
            if call.name in self.namespaces:
                item["namespace"], item["name"] = self.namespaces[call.name]
            items.append(item)
        return items

    def _response(self, status: str, incomplete: str | None = None) -> dict[str, Any]:
        """The response object, echoing the request as OpenAI does."""
        request = self.request
        finished = status in ("completed", "incomplete")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if finished else None,
            "error": None,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": request.model,
            "instructions": request.instructions,
            "previous_response_id": None,
            "output": list(self._items),
            "tools": list(request.tools),
            "tool_choice": request.tool_choice or "auto",
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_output_tokens": request.max_output_tokens,
            "reasoning": request.reasoning,
            "text": request.text or {"format": {"type": "text"}},
            "truncation": "disabled",
            "store": False,
            "background": False,
            "metadata": request.metadata or {},
            "usage": self._usage() if finished else None,
        }

    def _usage(self) -> dict[str, Any]:
        usage = self.reader.usage or {}
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        prompt = prompt if isinstance(prompt, int) else self.input_estimate
        completion = completion if isinstance(completion, int) else self.pieces
        cached = _count(usage.get("prompt_tokens_details"), "cached_tokens")
        reasoning = _count(usage.get("completion_tokens_details"), "reasoning_tokens")
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion,
        }


def _count(details: Any, key: str) -> int:
    """A token count inside a usage details object, 0 when the backend gave none (or junk)."""
    value = details.get(key) if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_output_text(text)],
    }


def _reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}
