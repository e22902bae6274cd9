"""Calling the backend for a generation and answering in Ollama's framing.

Streams: the first backend event is read before the response starts, so an error that comes
first still gets its HTTP status (G8); after that, a failure becomes a final `{"error": ...}`
line, never a `done: true` that would hide a cut-off answer (G7). The backend connection is
closed in the generator's `finally`, which gunicorn reaches as soon as a write to a departed
client fails: the model server stops generating at once (stack.md §2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests
from flask import Response
from greenlet import GreenletExit
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from ..backend import Backend, parse_json_body
from ..clock import now_rfc3339
from ..errors import BackendError
from ..observe import Exchange
from ..replies import NDJSON_MIMETYPE, STREAM_HEADERS, json_response
from ..stream import finish, iter_raw
from ..wire import SSEProtocolError, iter_sse_batches, ndjson
from .responses_in import StreamError, Translator


def load_reply(model: str, keep_alive: float | None, *, chat: bool) -> Response:
    """Ollama's answer to an empty prompt or message list: the model is (un)loaded (G4).

    One JSON object even when streaming was asked for, as Ollama does.
    """
    reply: dict[str, Any] = {"model": model, "created_at": now_rfc3339()}
    if chat:
        reply["message"] = {"role": "assistant", "content": ""}
    else:
        reply["response"] = ""
    reply["done"] = True
    reply["done_reason"] = "unload" if keep_alive == 0 else "load"
    return json_response(reply)


def whole_answer(
    backend: Backend, path: str, body: dict[str, Any], translator: Translator
) -> dict[str, Any]:
    exchange = Exchange(body.get("model"))
    response = backend.post(path, body)
    completion = parse_json_body(response, path)
    if not isinstance(completion, dict):
        raise BackendError(f"backend sent an unexpected answer for {path}")
    try:
        result = translator.complete(completion)
    except StreamError as exc:
        raise BackendError(exc.message, exc.status) from None
    exchange.tokens(translator.usage)
    return result


def replay_as_stream(result: dict[str, Any], *, chat: bool) -> Response:
    """A whole answer in Ollama's stream framing: one chunk with everything the model said, then
    the final chunk. For backends that cannot stream a request (see flavours.py)."""
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
    return Response(ndjson(said) + ndjson(final), mimetype=NDJSON_MIMETYPE)


def stream_answer(
    backend: Backend, path: str, body: dict[str, Any], translator: Translator
) -> Response:
    exchange = Exchange(body.get("model"))
    response = backend.post(path, body, stream=True)
    translator.timing.backend_answered()
    relay = _Relay(response, backend, translator, exchange)
    try:
        head, ended = relay.head()
    except StreamError as exc:
        response.close()
        raise BackendError(exc.message, exc.status) from None
    except BaseException:
        response.close()
        raise
    if ended is not None:
        relay.whole(ended)
        return Response(head, mimetype=NDJSON_MIMETYPE)
    return Response(relay.body(head), mimetype=NDJSON_MIMETYPE, headers=STREAM_HEADERS)


class _Relay:
    """One backend SSE stream relayed to one client as NDJSON.

    The lines made from one network read go out in one write: fewer writes (each a syscall and
    gunicorn's bookkeeping), and nothing that has arrived is held back.
    """

    def __init__(
        self,
        response: requests.Response,
        backend: Backend,
        translator: Translator,
        exchange: Exchange,
    ) -> None:
        self.response = response
        self.backend = backend
        self.translator = translator
        self.exchange = exchange
        self._batches = self._read()
        self._error: str | None = None

    def head(self) -> tuple[bytes, str | None]:
        """The output up to the first text, and the outcome if the stream is already over.

        A stream that ends before any output (all tool calls, or a backend that fails with an
        empty 200 as llama-cpp-python does) is finished here, so its errors still get an HTTP
        status (G8).
        """
        for batch in self._batches:
            try:
                data = self._translate(batch)
            except StreamError as exc:
                if not exc.partial:
                    raise  # nothing was said yet: the error keeps its HTTP status
                self._error = exc.message
                return exc.partial + ndjson({"error": exc.message}), "backend_error"
            if data:
                return data, None
        return self._tail(), "completed"

    def whole(self, outcome: str) -> None:
        """Bookkeeping for a stream `head` found over (`outcome`): it goes out in one write."""
        if outcome == "completed":
            finish(self.response)
            self.backend.stream_completed()
        else:
            self.response.close()
        self.exchange.stream_started()
        self.exchange.first_chunk()
        translator = self.translator
        self.exchange.stream_ended(outcome, translator.usage, translator.pieces, self._error)

    def body(self, head: bytes) -> Iterator[bytes]:
        exchange = self.exchange
        exchange.stream_started()
        outcome, error = "error", None
        try:
            yield head
            exchange.first_chunk()
            for batch in self._batches:
                data = self._translate(batch)
                if data:
                    yield data
            yield self._tail()
            outcome = "completed"
            self.backend.stream_completed()
        except StreamError as exc:
            outcome, error = "backend_error", exc.message
            yield exc.partial + ndjson({"error": exc.message})
        except GreenletExit:
            # The worker cuts what still runs when the graceful timeout nears: tell the client
            # the answer is cut off, then end the response (the worker exits right after).
            outcome = "shutdown"
            yield ndjson({"error": "the proxy is shutting down; the answer was cut off"})
        except GeneratorExit:
            outcome = "client_disconnect"  # the write to the client failed: gunicorn closed us
            raise
        finally:
            if outcome == "completed":
                finish(self.response)
            else:
                self.response.close()  # a departed client: the backend stops generating now
            exchange.stream_ended(outcome, self.translator.usage, self.translator.pieces, error)

    def _translate(self, batch: list[bytes]) -> bytes:
        feed = self.translator.feed
        lines: list[bytes] = []
        try:
            for payload in batch:
                lines.extend(ndjson(chunk) for chunk in feed(_event(payload)))
        except StreamError as exc:
            exc.partial = b"".join(lines)
            raise
        return b"".join(lines)

    def _tail(self) -> bytes:
        calls = self.translator.tool_chunk()
        final = ndjson(self.translator.final())
        return final if calls is None else ndjson(calls) + final

    def _read(self) -> Iterator[list[bytes]]:
        """The backend's event payloads, a network read at a time; every way the stream can
        break becomes a StreamError."""
        backend = self.backend
        try:
            yield from iter_sse_batches(iter_raw(self.response))
        except ReadTimeoutError as exc:
            backend.stream_broke(exc, "stream_timeout")
            raise StreamError(
                f"the backend sent nothing for {backend.timeout[1]:g}s in the middle of the answer"
            ) from None
        except (Urllib3Error, requests.RequestException, OSError) as exc:
            backend.stream_broke(exc)
            raise StreamError(
                "the connection to the backend broke in the middle of the answer"
            ) from None
        except SSEProtocolError as exc:
            raise StreamError(f"the backend's event stream is malformed: {exc}") from None


def _event(payload: bytes) -> dict[str, Any]:
    try:
        # Decoded first: json.loads(bytes) sniffs the encoding in Python on every event.
        event = json.loads(payload.decode())
    except ValueError:  # UnicodeDecodeError included
        event = None
    if not isinstance(event, dict):
        raise StreamError(f"the backend sent a malformed event: {payload[:100]!r}")
    return event
