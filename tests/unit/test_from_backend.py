"""OpenAI answers -> Ollama chunks: the Translator fed real backend event sequences."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from app.translate.chat_stream import StreamError
from app.translate.ollama.from_backend import Timing, Translator, convert_logprobs
from harness.openai_events import chunk, tool_fragment, usage_chunk

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
Json = dict[str, Any]


def strip(chunk: Json | None) -> Json | None:
    """The chunk without its wall-clock stamp and durations, both checked for their type."""
    if chunk is None:
        return None
    assert STAMP.match(chunk.pop("created_at"))
    for key in DURATIONS:
        if key in chunk:
            value = chunk.pop(key)
            assert type(value) is int
            assert value > 0
    return chunk


def run(
    events: list[Json], *, chat: bool = True, drop: bool = False, top: int = 0
) -> tuple[Any, Any, Any]:
    translator = Translator("qwen3", chat=chat, drop_thinking=drop, top_logprobs=top)
    chunks = [strip(chunk) for item in events for chunk in translator.feed(item)]
    return chunks, strip(translator.tool_chunk()), strip(translator.final())


def msg(content: str = "", **more: Any) -> Json:
    return {
        "model": "qwen3",
        "message": {"role": "assistant", "content": content, **more},
        "done": False,
    }


def done(reason: str = "stop", **metrics: int) -> Json:
    message = {"role": "assistant", "content": ""}
    return {"model": "qwen3", "message": message, "done": True, "done_reason": reason, **metrics}


def fn(index: int, name: str, arguments: Json, call_id: str = "") -> Json:
    result: Json = {"function": {"index": index, "name": name, "arguments": arguments}}
    return {"id": call_id, **result} if call_id else result


def test_vllm_content_stream() -> None:
    chunks, tools, final = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            usage_chunk(82, 17),
        ]
    )
    assert chunks == [msg("Hel"), msg("lo")]
    assert tools is None
    assert final == done(prompt_eval_count=82, eval_count=17)


def test_generate_shape_uses_response() -> None:
    events = [chunk({"reasoning": "hm"}), chunk({"content": "Hi"}, "length"), usage_chunk(3, 2)]
    chunks, _, final = run(events, chat=False)
    assert chunks == [
        {"model": "qwen3", "response": "", "thinking": "hm", "done": False},
        {"model": "qwen3", "response": "Hi", "done": False},
    ]
    assert final == {
        "model": "qwen3",
        "response": "",
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 3,
        "eval_count": 2,
    }


@pytest.mark.parametrize(
    "delta",
    [
        {"reasoning": "Let me think"},  # vLLM >= 0.17, OpenRouter, Ollama's /v1
        {"reasoning_content": "Let me think"},  # llama.cpp, DeepSeek, vLLM <= 0.10
        {"reasoning": "Let me think", "reasoning_content": "Let me think"},  # vLLM 0.11-0.16
    ],
)
def test_reasoning_becomes_thinking_once(delta: Json) -> None:
    chunks, _, _ = run([chunk(delta), chunk({"content": "42"}, "stop")])
    assert chunks == [msg(thinking="Let me think"), msg("42")]


def test_think_false_drops_stray_reasoning() -> None:
    events = [chunk({"reasoning": "x"}), chunk({"reasoning_content": "y", "content": "4"}, "stop")]
    chunks, _, _ = run(events, drop=True)
    assert chunks == [msg("4")]


def test_worked_example_tool_call_stream() -> None:
    chunks, tools, final = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk(tool_fragment(0, "chatcmpl-tool-9f", "get_weather")),
            chunk(tool_fragment(0, arguments='{"city": "')),
            chunk(tool_fragment(0, arguments='Tokyo"}')),
            chunk({}, "tool_calls"),
            usage_chunk(169, 15),
        ]
    )
    assert chunks == []
    weather = fn(0, "get_weather", {"city": "Tokyo"}, "chatcmpl-tool-9f")
    assert tools == msg(tool_calls=[weather])
    assert final == done(prompt_eval_count=169, eval_count=15)


def test_parallel_fragments_are_accumulated_by_index() -> None:
    _, tools, _ = run(
        [
            chunk(tool_fragment(0, "call_a", "get_weather")),
            chunk(tool_fragment(1, "call_b", "get_time", "{}")),
            chunk(tool_fragment(0, arguments='{"ci')),
            chunk(tool_fragment(0, arguments='ty":"Tokyo"}')),
            chunk({}, "tool_calls"),
        ]
    )
    assert tools["message"]["tool_calls"] == [
        fn(0, "get_weather", {"city": "Tokyo"}, "call_a"),
        fn(1, "get_time", {}, "call_b"),
    ]


def test_same_index_with_a_new_id_is_a_new_call() -> None:
    _, tools, _ = run(
        [
            chunk(tool_fragment(0, "a", "f", '{"x":')),
            chunk(tool_fragment(0, arguments="1}")),
            chunk(tool_fragment(0, "b", "g", '{"y":2}')),
            chunk(tool_fragment(0, "b")),
            chunk({}, "tool_calls"),
        ]
    )
    assert tools["message"]["tool_calls"] == [fn(0, "f", {"x": 1}, "a"), fn(1, "g", {"y": 2}, "b")]


def test_an_id_that_arrives_after_the_first_fragment_is_kept() -> None:
    _, tools, _ = run(
        [
            chunk(tool_fragment(0, name="f")),
            chunk(tool_fragment(0, "call_late", arguments="{}"), "stop"),
        ]
    )
    assert tools["message"]["tool_calls"] == [fn(0, "f", {}, "call_late")]


def test_split_names_missing_ids_and_double_encoded_arguments() -> None:
    encoded_twice = '"{\\"city\\": \\"Oslo\\"}"'
    _, tools, _ = run(
        [
            chunk({"tool_calls": [{"index": 0, "function": {"name": "get_", "arguments": ""}}]}),
            chunk({"tool_calls": [{"function": {"name": "weather", "arguments": encoded_twice}}]}),
            chunk({}, "stop"),
        ]
    )
    assert tools["message"]["tool_calls"] == [fn(0, "get_weather", {"city": "Oslo"})]


def test_content_beside_tool_calls_is_kept_and_generate_puts_calls_at_top_level() -> None:
    both = {"content": "Checking.", **tool_fragment(0, "c", "f", "{}")}
    chunks, tools, _ = run([chunk(both, "tool_calls")], chat=False)
    assert chunks == [{"model": "qwen3", "response": "Checking.", "done": False}]
    assert tools == {
        "model": "qwen3",
        "response": "",
        "done": False,
        "tool_calls": [fn(0, "f", {}, "c")],
    }


@pytest.mark.parametrize("arguments", ['{"city": "Tok', "[1, 2]", '"just text"', "null"])
def test_invalid_tool_arguments_are_a_stream_error_naming_the_tool(arguments: str) -> None:
    translator = Translator("qwen3", chat=True, drop_thinking=False)
    translator.feed(chunk(tool_fragment(0, "c", "get_weather", arguments), "tool_calls"))
    with pytest.raises(StreamError, match="invalid tool call arguments for 'get_weather'"):
        translator.tool_chunk()


@pytest.mark.parametrize(
    ("finish", "done_reason"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "stop"),
        ("function_call", "stop"),
        ("content_filter", "stop"),
        ("repetition", "stop"),
        ("eos", "stop"),
    ],
)
def test_finish_reason_maps_to_ollamas_done_reason(finish: str, done_reason: str) -> None:
    _, _, final = run([chunk({"content": "x"}), chunk({}, finish)])
    assert final["done_reason"] == done_reason


def test_a_stream_that_never_finishes_is_an_error_not_stop() -> None:
    translator = Translator("qwen3", chat=True, drop_thinking=False)
    assert translator.feed(chunk({"content": "partial"}))
    with pytest.raises(StreamError, match="ended before it was complete"):
        translator.final()


OPENROUTER_ERROR = {
    "error": {"code": 502, "message": "Provider returned error"},
    **chunk({"content": ""}, "error"),
}


@pytest.mark.parametrize(
    ("error_event", "text", "status"),
    [
        (
            {"error": {"message": "CUDA OOM", "type": "InternalServerError", "code": 500}},
            "CUDA OOM",
            502,
        ),
        (
            {"error": {"message": "too many tokens", "type": "BadRequestError", "code": 400}},
            "too many tokens",
            400,
        ),
        (
            {"error": {"message": "Invalid API key", "code": "invalid_api_key"}},
            "Invalid API key",
            502,
        ),
        ({"object": "error", "message": "flat vLLM", "type": "BadRequestError"}, "flat vLLM", 502),
        ({"object": "error", "message": "flat 400", "code": 400}, "flat 400", 400),
        (OPENROUTER_ERROR, "Provider returned error", 502),
        ({"error": "plain string"}, "plain string", 502),
        ({"error": {"code": 500}}, "the backend reported an error", 502),
        ({"object": "error"}, "the backend reported an error", 502),
    ],
)
def test_error_events_in_every_dialect_stop_the_stream(
    error_event: Json, text: str, status: int
) -> None:
    translator = Translator("qwen3", chat=True)
    translator.feed(chunk({"content": "Hi"}))
    with pytest.raises(StreamError) as caught:
        translator.feed(error_event)
    assert (caught.value.message, caught.value.status) == (text, status)


@pytest.mark.parametrize("finish", ["error", "abort"])
def test_error_and_abort_finish_reasons_are_errors(finish: str) -> None:
    translator = Translator("qwen3", chat=True, drop_thinking=False)
    with pytest.raises(StreamError, match=f"finish_reason '{finish}'"):
        translator.feed(chunk({"content": "x"}, finish))


def test_usage_on_the_finish_chunk_and_the_last_usage_wins() -> None:
    early = {"prompt_tokens": 1, "completion_tokens": 1}
    _, _, final = run([chunk({"content": "a"}, "stop", usage=early), usage_chunk(9, 4)])
    assert (final["prompt_eval_count"], final["eval_count"]) == (9, 4)


def test_zero_metrics_are_omitted() -> None:
    _, _, final = run([chunk({}, "stop"), usage_chunk(0, 0)])
    assert not {"prompt_eval_count", "eval_count"} & final.keys()


def test_durations_are_integer_nanoseconds_from_the_timing_marks() -> None:
    timing = Timing()
    translator = Translator("qwen3", chat=True, drop_thinking=False, timing=timing)
    translator.feed(chunk({"content": "x"}, "stop"))
    timing.start = time.perf_counter_ns() - 10_000_000_000
    timing.headers, timing.first, timing.last = (timing.start + ms * 1_000_000 for ms in (1, 3, 7))
    final = translator.final()
    assert final["load_duration"] == 1_000_000
    assert final["prompt_eval_duration"] == 2_000_000
    assert final["eval_duration"] == 4_000_000
    assert final["total_duration"] >= 10_000_000_000


def test_load_duration_is_the_wait_for_the_backends_answer() -> None:
    translator = Translator("qwen3", chat=True, drop_thinking=False)
    translator.feed(chunk({}, "stop"))
    assert "load_duration" not in translator.final()
    translator.timing.backend_answered()
    assert 0 < translator.final()["load_duration"] <= translator.final()["total_duration"]


def test_llamacpp_timings_give_durations_and_counts() -> None:
    timings = {"cache_n": 10, "prompt_n": 26, "prompt_ms": 12.5, "predicted_n": 5}
    translator = Translator("qwen3", chat=True, drop_thinking=False)
    translator.feed(chunk({"content": "x"}, "stop", timings={**timings, "predicted_ms": 300.25}))
    final = translator.final()
    assert (final["prompt_eval_duration"], final["eval_duration"]) == (12_500_000, 300_250_000)
    # llama.cpp timings: prompt_eval_count = cache_n + prompt_n, eval_count = predicted_n.
    assert (final["prompt_eval_count"], final["eval_count"]) == (36, 5)


def test_without_usage_eval_count_is_estimated_from_the_deltas() -> None:
    # Without usage, the streamed content and reasoning pieces are the estimate.
    deltas = [{"reasoning": "a"}, {"content": "b"}, {"content": "c"}]
    _, _, final = run([*map(chunk, deltas), chunk({"content": "d"}, "stop")])
    assert final["eval_count"] == 4


LOGPROB = {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}
TOP = {"token": "Yo", "logprob": -1.5}
EOS = {"token": "<eos>", "logprob": -9999.0, "bytes": None, "top_logprobs": []}


FIRST = {"content": [{**LOGPROB, "top_logprobs": [LOGPROB, {**TOP, "bytes": None}]}]}


def test_chat_logprobs_ride_on_their_chunk_even_without_text() -> None:
    chunks, _, _ = run(
        [
            chunk({"content": "Hi"}, logprobs={**FIRST, "refusal": None}),
            chunk({"content": ""}, logprobs={"content": [EOS]}),
            chunk({}, "stop", logprobs={"content": []}),
        ],
        top=2,
    )
    assert chunks == [
        {**msg("Hi"), "logprobs": [{**LOGPROB, "top_logprobs": [LOGPROB, TOP]}]},
        {**msg(""), "logprobs": [{"token": "<eos>", "logprob": -9999.0}]},
    ]


@pytest.mark.parametrize(("top", "alternatives"), [(0, None), (1, [LOGPROB]), (5, [LOGPROB, TOP])])
def test_alternatives_are_shown_only_as_many_as_asked_for(
    top: int, alternatives: list[Json] | None
) -> None:
    chunks, _, _ = run([chunk({"content": "Hi"}, "stop", logprobs=FIRST)], top=top)
    expected = LOGPROB if alternatives is None else {**LOGPROB, "top_logprobs": alternatives}
    assert chunks == [{**msg("Hi"), "logprobs": [expected]}]


def test_legacy_completions_stream() -> None:
    legacy = {
        "tokens": ["Hel", "lo"],
        "token_logprobs": [-0.1, -0.2],
        "top_logprobs": [{"Hel": -0.1, "He": -2.0}, None],
        "text_offset": [0, 3],
    }
    text = {"index": 0, "text": "Hello", "logprobs": legacy, "finish_reason": None}
    end = {"index": 0, "text": "", "logprobs": None, "finish_reason": "length"}
    events = [{"object": "text_completion", "choices": [c]} for c in (text, end)]
    chunks, _, final = run([*events, usage_chunk(5, 16)], chat=False, top=2)
    top = [{"token": "Hel", "logprob": -0.1}, {"token": "He", "logprob": -2.0}]
    tokens = [
        {"token": "Hel", "logprob": -0.1, "top_logprobs": top},
        {"token": "lo", "logprob": -0.2},
    ]
    assert chunks == [{"model": "qwen3", "response": "Hello", "done": False, "logprobs": tokens}]
    assert (final["done_reason"], final["eval_count"]) == ("length", 16)


@pytest.mark.parametrize(
    "value", [None, [], "x", {"content": []}, {"content": None}, {"tokens": 1}]
)
def test_logprobs_without_tokens_convert_to_nothing(value: Any) -> None:
    assert convert_logprobs(value) is None


def test_legacy_logprobs_with_missing_values_default_to_zero() -> None:
    assert convert_logprobs({"tokens": ["a", "b"], "token_logprobs": [-1.0]}) == [
        {"token": "a", "logprob": -1.0},
        {"token": "b", "logprob": 0.0},
    ]


def complete(answer: Json, *, chat: bool = True, drop: bool = False) -> Json:
    result = strip(Translator("qwen3", chat=chat, drop_thinking=drop).complete(answer))
    assert result is not None
    return result


def test_complete_chat_with_reasoning_and_usage() -> None:
    message = {
        "role": "assistant",
        "content": "22°C.",
        "reasoning": "look",
        "reasoning_content": "look",
    }
    answer = {
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {"prompt_tokens": 201, "completion_tokens": 11, "total_tokens": 212},
    }
    assert complete(answer) == {
        **done(prompt_eval_count=201, eval_count=11),
        "message": {"role": "assistant", "content": "22°C.", "thinking": "look"},
    }
    assert "thinking" not in complete(answer, drop=True)["message"]


def test_complete_tool_calls_have_object_arguments() -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    result = complete({"choices": [{"finish_reason": "tool_calls", "message": message}]})
    assert result["message"] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            fn(0, "get_weather", {"city": "Tokyo"}, "call_1"),
            fn(1, "get_time", {}, "call_2"),
        ],
    }
    assert result["done_reason"] == "stop"


def test_complete_legacy_completion_in_generate_shape() -> None:
    logprobs = {"tokens": ["Paris"], "token_logprobs": [-0.01], "top_logprobs": None}
    choice = {"text": "Paris", "index": 0, "finish_reason": "length", "logprobs": logprobs}
    answer = {"choices": [choice], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}
    assert complete(answer, chat=False) == {
        "model": "qwen3",
        "response": "Paris",
        "logprobs": [{"token": "Paris", "logprob": -0.01}],
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 4,
        "eval_count": 1,
    }


def test_complete_without_finish_reason_counts_as_stop() -> None:
    answer = {"choices": [{"message": {"content": "ok"}, "finish_reason": None}]}
    assert complete(answer)["done_reason"] == "stop"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"error": {"message": "no model `x`"}}, "no model `x`"),
        ({"object": "error", "message": "bad"}, "bad"),
        ({"choices": []}, "the backend's answer has no choices"),
        ({"choices": ["x"]}, "the backend's answer has no choices"),
        ({"id": "x"}, "the backend's answer has no choices"),
        ({"choices": [{"finish_reason": "abort"}]}, "the backend stopped the answer"),
    ],
)
def test_complete_errors(answer: Json, message: str) -> None:
    with pytest.raises(StreamError) as caught:
        Translator("qwen3", chat=True, drop_thinking=False).complete(answer)
    assert caught.value.message.startswith(message)
