"""The Anthropic translator, both ways, as pure functions: Messages requests to chat bodies,
backend events and completions to Anthropic's events and message objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.anthropic.schemas import count_tokens_schema, messages_schema
from app.errors import BadRequest
from app.flavours import ThinkStyle, flavour
from app.translate.anthropic.from_backend import MessageTranslator, signature
from app.translate.anthropic.to_backend import chat_body, conversation
from app.translate.chat_stream import StreamError
from app.translate.ollama.to_backend import Target
from app.validation import load
from harness import openai_events as events
from tests.checks import sse_events, translated
from tests.samples import ANTHROPIC_WEATHER_TOOL, PNG

GENERIC = Target("m", flavour("generic"), ThinkStyle.NONE)
VLLM = Target("m", flavour("vllm"), ThinkStyle.CHAT_TEMPLATE_KWARGS)


def request(**fields: Any) -> Any:
    body = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
    return load(messages_schema, {**body, **fields})


def body_of(target: Target = GENERIC, *, stream: bool = False, **fields: Any) -> dict[str, Any]:
    return chat_body(request(**fields), target, stream=stream)


TOOL_TURNS = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "use the tool", "signature": "foreign"},
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_call_8f2k",
                "name": "get_weather",
                "input": {"zone": "eu", "city": "Paris"},
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Answer in one line."},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_call_8f2k",
                "content": [
                    {"type": "text", "text": "18C"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            },
        ],
    },
]


# --------------------------------------------------------------------------- requests


def test_a_tool_round_trip_becomes_calls_then_results_then_the_users_text() -> None:
    body = body_of(VLLM, messages=TOOL_TURNS, tools=[ANTHROPIC_WEATHER_TOOL])
    user, assistant, tool, after = body["messages"]
    assert user == {"role": "user", "content": "Weather in Paris?"}
    # Thinking is not sent back; the call keeps the backend's own id and the client's key order.
    assert assistant == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": "call_8f2k",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"zone":"eu","city":"Paris"}'},
            }
        ],
    }
    assert tool == {
        "role": "tool",
        "tool_call_id": "call_8f2k",
        "content": "18C",
        "name": "get_weather",
    }
    # The result's image rides in the user message that follows, before the user's text.
    assert after["role"] == "user"
    assert after["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert after["content"][1] == {"type": "text", "text": "Answer in one line."}


def test_system_blocks_are_joined_and_claude_codes_billing_header_is_dropped() -> None:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=ab12;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief."},
    ]
    first = body_of(system=system)["messages"][0]
    assert first == {"role": "system", "content": "You are Claude Code.\n\nBe brief."}


def test_a_system_message_after_the_users_turn_keeps_its_text_in_that_turn() -> None:
    messages = [
        {"role": "user", "content": "Fix the bug."},
        {"role": "system", "content": [{"type": "text", "text": "<reminder>tests</reminder>"}]},
    ]
    sent = body_of(system="Be brief.", messages=messages)["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Fix the bug.\n\n<reminder>tests</reminder>"},
    ]


def test_tools_lose_anthropics_own_fields_and_choices_map_to_openai() -> None:
    tool = {**ANTHROPIC_WEATHER_TOOL, "cache_control": {"type": "ephemeral"}, "defer_loading": True}
    body = body_of(tools=[tool], tool_choice={"type": "tool", "name": "get_weather"})
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get weather",
                "parameters": ANTHROPIC_WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    forced = body_of(tools=[tool], tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert (forced["tool_choice"], forced["parallel_tool_calls"]) == ("required", False)
    assert "tool_choice" not in body_of(tool_choice={"type": "auto"})  # no tools: no choice


def test_server_tools_are_refused_by_name() -> None:
    with pytest.raises(BadRequest, match="web_search_20250305"):
        body_of(tools=[{"type": "web_search_20250305", "name": "web_search"}])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, {"enable_thinking": True}),
        ({"thinking": {"type": "disabled"}}, {"enable_thinking": False}),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"thinking": {"type": "adaptive"}}, None),
    ],
)
def test_thinking_and_effort_reach_the_backend_like_think(fields, expected) -> None:
    body = body_of(VLLM, **fields)
    if expected is None:
        assert "chat_template_kwargs" not in body
    elif isinstance(expected, str):
        assert body["reasoning_effort"] == expected
    else:
        assert body["chat_template_kwargs"]["enable_thinking"] is expected["enable_thinking"]


def test_sampling_fields_stop_sequences_and_the_output_limit() -> None:
    fields = {"temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END", ""]}
    vllm = body_of(VLLM, **fields)
    assert (vllm["temperature"], vllm["top_p"], vllm["top_k"]) == (0.2, 0.9, 5)
    assert (vllm["stop"], vllm["max_tokens"]) == (["END"], 100)
    assert "top_k" not in body_of(GENERIC, **fields)  # OpenAI and strict servers reject it


def test_an_output_limit_that_cannot_fit_the_context_is_left_to_the_backend() -> None:
    # Claude Code asks for 32,000 tokens; vLLM refuses prompt + max_tokens over its window.
    big = request(max_tokens=32000)
    assert "max_tokens" not in chat_body(big, VLLM, stream=False, context_length=8192)
    assert chat_body(big, VLLM, stream=False, context_length=131072)["max_tokens"] == 32000


def test_streaming_asks_for_usage() -> None:
    body = body_of(stream=True)
    assert body["stream_options"] == {"include_usage": True}


def test_image_sources() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.test/a.png"}}
    messages = [{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}]
    content = body_of(messages=messages)["messages"][0]["content"]
    assert content[0] == {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}}
    source = {"type": "base64", "media_type": "image/png", "data": "%%%"}
    bad = [{"role": "user", "content": [{"type": "image", "source": source}]}]
    with pytest.raises(BadRequest, match=r"messages\.0: image is not valid base64"):
        body_of(messages=bad)


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([{"role": "wizard", "content": "x"}], "role must be 'user' or 'assistant'"),
        ([{"role": "user", "content": 5}], "content must be a string or a list"),
        ([{"role": "user", "content": [{"type": "tool_result"}]}], "tool_use_id is required"),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "n", "input": "{}"}],
                }
            ],
            "input must be an object",
        ),
        ([{"role": "user", "content": [{"type": "video"}]}], "type 'video' is not supported"),
    ],
)
def test_malformed_messages_are_400_naming_the_message(messages, problem) -> None:
    with pytest.raises(BadRequest, match=problem) as caught:
        body_of(messages=messages)
    assert caught.value.message.startswith("messages.0: ")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": -1}}, "thinking"),
        ({"output_config": {"effort": "extreme"}}, "output_config"),
        ({"temperature": 3}, "temperature"),
        ({"stop_sequences": ["a", 1]}, "stop_sequences"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(fields, field) -> None:
    with pytest.raises(BadRequest, match=field):
        request(**fields)


def test_count_tokens_needs_no_max_tokens_and_counts_what_the_model_reads() -> None:
    counted = load(count_tokens_schema, {"model": "m", "messages": TOOL_TURNS})
    messages, tools = conversation(counted, flavour("generic"))
    assert counted.max_tokens is None
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user"]
    assert tools == []


# --------------------------------------------------------------------------- answers


def translator(**fields: Any) -> MessageTranslator:
    return MessageTranslator("claude-x", "msg_1", input_estimate=9, **fields)


def test_a_streamed_answer_follows_anthropics_event_grammar() -> None:
    got = translated(
        translator(),
        events.delta_chunk(role="assistant", content=""),
        events.delta_chunk(reasoning="Think"),
        events.delta_chunk(reasoning="ing."),
        events.delta_chunk(content="Hello"),
        events.delta_chunk(content=" there"),
        events.chunk({}, "stop"),
        events.usage_chunk(12, 4),
    )
    names = [name for name, _ in got]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = got[0][1]["message"]
    assert (start["id"], start["model"], start["content"]) == ("msg_1", "claude-x", [])
    assert start["usage"] == {"input_tokens": 9, "output_tokens": 0}
    assert got[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    }
    assert got[5][1]["delta"] == {"type": "signature_delta", "signature": signature("Thinking.")}
    assert got[7][1]["content_block"] == {"type": "text", "text": ""}
    assert [data["index"] for name, data in got if name.startswith("content_block")] == [0] * 5 + [
        1
    ] * 4
    assert got[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 12, "output_tokens": 4},
    }


def test_tool_calls_arrive_whole_after_the_text_with_stop_reason_tool_use() -> None:
    got = translated(
        translator(),
        events.delta_chunk(content="Let me check."),
        events.delta_chunk(
            tool_calls=events.tool_fragment(0, "call_8f2k", "get_weather")["tool_calls"]
        ),
        events.delta_chunk(
            tool_calls=events.tool_fragment(0, arguments='{"zone": "eu", ')["tool_calls"]
        ),
        events.delta_chunk(
            tool_calls=events.tool_fragment(0, arguments='"city": "Paris"}')["tool_calls"]
        ),
        events.chunk({}, "stop"),  # vLLM says "stop" for a forced tool choice
    )
    blocks = [data for name, data in got if name.startswith("content_block")]
    assert blocks[3] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_call_8f2k",
            "name": "get_weather",
            "input": {},
        },
    }
    assert blocks[4]["delta"] == {
        "type": "input_json_delta",
        "partial_json": '{"zone":"eu","city":"Paris"}',
    }
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish", "stop_string", "expected"),
    [
        ("stop", "END", ("stop_sequence", "END")),
        ("stop", None, ("end_turn", None)),
        ("length", None, ("max_tokens", None)),
        ("content_filter", None, ("refusal", None)),
    ],
)
def test_stop_reasons(finish, stop_string, expected) -> None:
    tr = translator(stop_sequences=("END",))
    finish_event = events.chunk({}, finish)
    finish_event["choices"][0]["stop_reason"] = stop_string
    got = translated(tr, events.delta_chunk(content="a"), finish_event)
    ending = got[-2][1]["delta"]
    assert (ending["stop_reason"], ending["stop_sequence"]) == expected


def test_invalid_tool_arguments_end_the_stream_in_error_never_as_partial_json() -> None:
    tr = translator()
    tr.event(json.dumps(events.delta_chunk(content="x")).encode())
    tr.event(
        json.dumps(
            events.delta_chunk(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "c",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": '},
                    }
                ]
            )
        ).encode()
    )
    tr.event(json.dumps(events.chunk({}, "tool_calls")).encode())
    with pytest.raises(StreamError, match="invalid tool call arguments"):
        tr.tail()
    assert sse_events(tr.error("broken")) == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "broken"}})
    ]


def test_an_answer_without_usage_counts_pieces_and_the_estimate() -> None:
    got = translated(
        translator(),
        events.delta_chunk(content="a"),
        events.delta_chunk(content="b"),
        events.chunk({}, "stop"),
    )
    assert got[-2][1]["usage"] == {"input_tokens": 9, "output_tokens": 2}


def test_a_whole_answer_is_one_message_object() -> None:
    completion = events.completion(
        "Let me check.",
        finish="tool_calls",
        reasoning="use the tool",
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    )
    message = translator().complete(completion)
    assert message == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {
                "type": "thinking",
                "thinking": "use the tool",
                "signature": signature("use the tool"),
            },
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_call_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 3},
    }


def test_a_whole_answer_replays_as_the_same_stream() -> None:
    got = sse_events(translator().replay(events.completion("Hello")))
    assert [name for name, _ in got][:3] == ["message_start", "ping", "content_block_start"]
    assert got[3][1]["delta"] == {"type": "text_delta", "text": "Hello"}
    assert got[-1][0] == "message_stop"


def test_thinking_dropped_when_the_client_disabled_it() -> None:
    got = translated(
        translator(drop_thinking=True),
        events.delta_chunk(reasoning="hidden"),
        events.delta_chunk(content="shown"),
        events.chunk({}, "stop"),
    )
    assert [
        data["content_block"]["type"] for name, data in got if name == "content_block_start"
    ] == ["text"]
