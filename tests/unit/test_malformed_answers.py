"""A backend's answer of the wrong shape (a field of the wrong type, anywhere the translators
read) is the backend's fault, reported as one: a StreamError, which becomes a 502 before a
stream starts and the API's in-band error after. Never a TypeError or an AttributeError,
which was a 500 for a whole answer and a stream cut off with no error event at all."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from app.responses.schemas import responses_schema
from app.translate.anthropic.from_backend import MessageTranslator
from app.translate.chat_stream import StreamError
from app.translate.ollama.from_backend import Translator
from app.translate.responses.from_backend import ResponseTranslator

TRANSLATORS: dict[str, Callable[[], Any]] = {
    "ollama": lambda: Translator("m", chat=True, top_logprobs=5),
    "anthropic": lambda: MessageTranslator("m", "msg_1", input_estimate=1),
    "responses": lambda: ResponseTranslator(
        responses_schema.load({"model": "m", "input": "x"}), "resp_1", namespaces={},
        input_estimate=1,
    ),
}  # fmt: skip
END = {"index": 0, "delta": {}, "finish_reason": "stop"}
MALFORMED_EVENTS = [
    {"choices": [5]},
    {"choices": {"0": {}}},
    {"choices": [{"index": 0, "delta": "text"}]},
    {"choices": [{"index": 0, "delta": {"content": {"a": 1}}}]},
    {"choices": [{"index": 0, "delta": {"content": 5}}]},
    {"choices": [{"index": 0, "delta": {"reasoning": [1]}}]},
    {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": ["stop"]}]},
    {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": {"a": 1}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": "call"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [5]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": [1]}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": 5}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                                                        "function": {"name": 5}}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
        "name": "f", "arguments": {"a": 1}}}]}}]},
]  # fmt: skip
JUNK_ON_THE_SIDE = [  # ignored: the answer itself is fine
    {"choices": [END], "usage": "many"},
    {"choices": [END], "usage": {"prompt_tokens": "5", "completion_tokens": [1],
                                 "prompt_tokens_details": 5, "completion_tokens_details": [1]}},
    {"choices": [END], "usage": {"prompt_tokens_details": {"cached_tokens": "x"}}},
    {"choices": [END], "timings": [1]},
    {"choices": [END], "timings": {"prompt_ms": 1.0, "predicted_ms": "5", "prompt_n": 3,
                                   "cache_n": "x"}},
    {"choices": [{**END, "logprobs": {"tokens": ["a"], "token_logprobs": {"a": 1},
                                      "top_logprobs": "x"}}]},
    {"choices": [{**END, "logprobs": {"content": [{"token": "a", "top_logprobs": {"b": 1}}]}}]},
]  # fmt: skip


def stream(translator: Any, *events: dict[str, Any]) -> bytes:
    return b"".join(translator.event(json.dumps(e).encode()) for e in events) + translator.tail()


@pytest.mark.parametrize("name", sorted(TRANSLATORS))
@pytest.mark.parametrize("event", MALFORMED_EVENTS)
def test_a_malformed_stream_event_is_a_stream_error(name: str, event: dict[str, Any]) -> None:
    with pytest.raises(StreamError, match="malformed"):
        stream(TRANSLATORS[name](), event, {"choices": [END]})


@pytest.mark.parametrize("name", sorted(TRANSLATORS))
@pytest.mark.parametrize("event", JUNK_ON_THE_SIDE)
def test_junk_beside_a_good_answer_is_ignored(name: str, event: dict[str, Any]) -> None:
    assert stream(TRANSLATORS[name](), {"choices": [{"index": 0, "delta": {"content": "hi"}}]},
                  event)  # fmt: skip
    assert TRANSLATORS[name]().complete({"choices": [{"message": {"content": "hi"}}], **{
        key: value for key, value in event.items() if key != "choices"}})  # fmt: skip


@pytest.mark.parametrize("name", sorted(TRANSLATORS))
@pytest.mark.parametrize(
    "completion",
    [
        {"choices": {"0": {}}},
        {"choices": [{"message": {"content": 5}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"content": "x", "tool_calls": "abc"}}]},
        {"choices": [{"message": {"content": "x", "tool_calls": [5]}}]},
        {"choices": [{"message": {"tool_calls": [{"function": {"name": [1]}}]}}]},
        {"choices": [{"message": {"content": "x"}, "finish_reason": 7}]},
        {"choices": [{"message": {"content": "x", "reasoning_content": {"a": 1}}}]},
    ],
)
def test_a_malformed_whole_answer_is_a_stream_error(name: str, completion: dict[str, Any]):
    translator = TRANSLATORS[name]()
    with pytest.raises(StreamError):
        translator.complete(completion)


def call_event(index: int) -> dict[str, Any]:
    call = {"index": index, "id": f"c{index}", "function": {"name": "f", "arguments": "{}"}}
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}


@pytest.mark.parametrize("name", sorted(TRANSLATORS))
def test_an_answer_with_more_tool_calls_than_a_message_may_carry_is_refused(name: str) -> None:
    # 200,000 streamed calls stalled a worker for 7 s at the end of the stream (300,000 in a
    # whole answer: 3.3 s); the bound is the one requests have.
    ending = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    assert stream(TRANSLATORS[name](), *[call_event(i) for i in range(1000)], ending)
    with pytest.raises(StreamError, match="more than 1000 tool calls"):
        stream(TRANSLATORS[name](), *[call_event(i) for i in range(1001)], ending)
    calls = [{"id": f"c{i}", "function": {"name": "f", "arguments": "{}"}} for i in range(1001)]
    with pytest.raises(StreamError, match="more than 1000 tool calls"):
        TRANSLATORS[name]().complete({"choices": [{"message": {"tool_calls": calls}}]})
