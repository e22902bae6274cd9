"""The Responses translator, both ways, as pure functions: Responses requests to chat bodies,
backend events and completions to Responses events and response objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.errors import BadRequest
from app.flavours import ThinkStyle, flavour
from app.responses.schemas import responses_schema
from app.translate.chat_stream import StreamError
from app.translate.ollama.to_backend import Target
from app.translate.responses.from_backend import ResponseTranslator
from app.translate.responses.to_backend import chat_body, tools_of
from app.validation import load
from harness import openai_events as events
from tests.checks import sse_events, translated
from tests.samples import PNG, RESPONSES_WEATHER_TOOL

GENERIC = Target("m", flavour("generic"), ThinkStyle.NONE)
VLLM = Target("m", flavour("vllm"), ThinkStyle.CHAT_TEMPLATE_KWARGS)
LLAMA_CPP_PYTHON = Target("m", flavour("llama-cpp-python"), ThinkStyle.CHAT_TEMPLATE_KWARGS)


def request(**fields: Any) -> Any:
    return load(responses_schema, {"model": "gpt-x", "input": "Hi", **fields})


def body_of(target: Target = GENERIC, **fields: Any) -> dict[str, Any]:
    return chat_body(request(**fields), target, stream=False)


# What Codex sends on the second turn of a tool round trip.
CODEX_INPUT = [
    {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "You are Codex."}],
    },
    {
        "type": "message",
        "role": "user",
        "id": "msg_a",
        "content": [{"type": "input_text", "text": "Weather in Paris?"}],
    },
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "tool"}]},
    {
        "type": "function_call",
        "id": "fc_call_8f2k",
        "call_id": "call_8f2k",
        "name": "get_weather",
        "arguments": '{"zone":"eu","city":"Paris"}',
    },
    {"type": "function_call_output", "call_id": "call_8f2k", "output": "18C"},
    {"type": "agent_message", "content": "newer than this proxy"},
]


# --------------------------------------------------------------------------- requests


def test_codex_input_items_become_a_chat_with_the_call_and_its_result() -> None:
    body = body_of(input=CODEX_INPUT, tools=[RESPONSES_WEATHER_TOOL])
    assert body["messages"] == [
        {"role": "system", "content": "You are Codex."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",  # the generic flavour's form for a message that only calls tools
            "tool_calls": [
                {
                    "id": "call_8f2k",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"zone":"eu","city":"Paris"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_8f2k", "content": "18C"},
    ]
    assert body["tools"][0]["function"]["name"] == "get_weather"


def test_instructions_come_first_and_late_system_text_joins_the_users_turn() -> None:
    sent = body_of(
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "One"},
            {"role": "developer", "content": "Mind the tests."},
        ],
    )["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "One\n\nMind the tests."},
    ]


def test_namespaces_are_flattened_and_builtin_tools_left_out() -> None:
    tools = [
        {"type": "web_search"},
        {
            "type": "namespace",
            "name": "mcp_fs",
            "description": "files",
            "tools": [{"type": "function", "name": "read", "parameters": None}],
        },
    ]
    body = body_of(tools=tools)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "mcp_fs__read",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    assert tools_of(request(tools=tools))[1] == {"mcp_fs__read": ("mcp_fs", "read")}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", "required"),
        (
            {"type": "function", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice, expected) -> None:
    assert body_of(tools=[RESPONSES_WEATHER_TOOL], tool_choice=choice)["tool_choice"] == expected


def test_text_format_reasoning_and_limits() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}}
    body = body_of(
        VLLM, text=fmt, reasoning={"effort": "minimal"}, max_output_tokens=50, temperature=0.5
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert body["reasoning_effort"] == "low"
    assert (body["max_tokens"], body["temperature"]) == (50, 0.5)
    assert body_of(LLAMA_CPP_PYTHON, text=fmt)["response_format"] == {
        "type": "json_object",
        "schema": schema,
    }
    assert body_of(text={"format": {"type": "json_object"}})["response_format"] == {
        "type": "json_object"
    }


def test_images_in_input_and_in_function_output() -> None:
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Look"}, image]},
        {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [image]},
    ]
    messages = body_of(input=items)["messages"]
    assert messages[0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": ""}
    assert messages[3]["role"] == "user"
    assert messages[3]["content"][0]["type"] == "image_url"


def test_a_result_without_call_id_answers_the_open_call() -> None:
    items = [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "output": "done"},
    ]
    assert body_of(input=items)["messages"][1]["tool_call_id"] == "c1"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"store": True}, "store"),
        ({"background": True}, "background"),
        ({"conversation": {"id": "conv_1"}}, "conversation"),
        ({"input": 5}, "input"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning"),
        ({"text": {"format": {"type": "yaml"}}}, "text"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_invalid_and_stateful_fields_are_400_naming_the_field(fields, field) -> None:
    with pytest.raises(BadRequest, match=field):
        request(**fields)


def test_stateless_values_are_accepted() -> None:
    accepted = request(store=False, previous_response_id=None, background=False)
    assert accepted.model == "gpt-x"


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        ([{"type": "item_reference", "id": "msg_1"}], "stores none"),
        ([{"role": "wizard", "content": "x"}], "role must be"),
        ([{"type": "function_call", "name": "f", "arguments": "{}"}], "call_id is required"),
        ([{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}], "file inputs"),
    ],
)
def test_malformed_items_are_400_naming_the_item(items, problem) -> None:
    with pytest.raises(BadRequest, match=problem) as caught:
        body_of(input=items)
    assert caught.value.message.startswith("input.0: ")


# --------------------------------------------------------------------------- answers


def translator(**fields: Any) -> ResponseTranslator:
    return ResponseTranslator(
        request(**fields), "resp_1", namespaces=tools_of(request(**fields))[1], input_estimate=5
    )


def test_a_streamed_answer_follows_the_responses_event_grammar() -> None:
    got = translated(
        translator(),
        events.delta_chunk(role="assistant", content=""),
        events.delta_chunk(reasoning="Thinking."),
        events.delta_chunk(content="Let me "),
        events.delta_chunk(content="check."),
        events.delta_chunk(
            tool_calls=events.tool_fragment(0, "call_8f2k", "get_weather")["tool_calls"]
        ),
        events.delta_chunk(
            tool_calls=events.tool_fragment(0, arguments='{"city": "Paris"}')["tool_calls"]
        ),
        events.chunk({}, "tool_calls"),
        events.usage_chunk(12, 4),
    )
    assert [name.removeprefix("response.") for name, _ in got] == [
        "created",
        "in_progress",
        "output_item.added",
        "reasoning_summary_part.added",
        "reasoning_summary_text.delta",
        "reasoning_summary_text.done",
        "reasoning_summary_part.done",
        "output_item.done",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    assert [data["sequence_number"] for _, data in got] == list(range(len(got)))
    # Every item has its own output_index, and is done with the id it was added with.
    added = [data for name, data in got if name == "response.output_item.added"]
    done = [data for name, data in got if name == "response.output_item.done"]
    assert [data["output_index"] for data in added] == [0, 1, 2]
    assert [data["item"]["id"] for data in added] == [data["item"]["id"] for data in done]
    call = done[2]["item"]
    assert (call["call_id"], call["name"], call["arguments"]) == (
        "call_8f2k",
        "get_weather",
        '{"city":"Paris"}',
    )
    final = got[-1][1]["response"]
    assert (final["id"], final["status"], final["model"]) == ("resp_1", "completed", "gpt-x")
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "Let me check."
    assert final["usage"]["input_tokens"] == 12
    assert final["usage"]["total_tokens"] == 16


def test_a_length_stop_is_incomplete_with_its_reason() -> None:
    got = translated(translator(), events.delta_chunk(content="cut"), events.chunk({}, "length"))
    name, data = got[-1]
    assert name == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["response"]["output"][0]["status"] == "incomplete"


def test_a_namespaced_call_is_split_back() -> None:
    tools = [{"type": "namespace", "name": "fs", "tools": [{"type": "function", "name": "read"}]}]
    tr = translator(tools=tools)
    completion = events.completion(
        None,
        finish="tool_calls",
        tool_calls=[
            {"id": "c1", "type": "function", "function": {"name": "fs__read", "arguments": "{}"}}
        ],
    )
    item = tr.complete(completion)["output"][0]
    assert (item["namespace"], item["name"]) == ("fs", "read")


def test_a_failure_after_the_start_is_error_then_response_failed() -> None:
    tr = translator()
    started = tr.event(json.dumps(events.delta_chunk(content="partial")).encode())
    got = sse_events(started + tr.error("the backend broke"))
    assert [name for name, _ in got][-2:] == ["error", "response.failed"]
    assert [data["sequence_number"] for _, data in got] == list(range(len(got)))
    failed = got[-1][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "the backend broke"}


def test_a_failure_before_any_output_still_starts_the_response() -> None:
    # The SDK needs response.created first, even before a failure.
    got = sse_events(translator().error("the backend broke"))
    assert [name for name, _ in got] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]


def test_an_answer_that_never_finished_is_an_error() -> None:
    tr = translator()
    tr.event(json.dumps(events.delta_chunk(content="partial")).encode())
    with pytest.raises(StreamError, match="finish_reason"):
        tr.tail()


def test_a_whole_answer_echoes_the_request() -> None:
    tr = translator(instructions="Be brief.", temperature=0.3, metadata={"k": "v"})
    response = tr.complete(events.completion("Hello!", reasoning="hm"))
    assert response["status"] == "completed"
    assert [item["type"] for item in response["output"]] == ["reasoning", "message"]
    assert response["output"][0]["summary"] == [{"type": "summary_text", "text": "hm"}]
    assert (response["instructions"], response["temperature"], response["metadata"]) == (
        "Be brief.",
        0.3,
        {"k": "v"},
    )
    assert (response["store"], response["previous_response_id"]) == (False, None)
    assert response["usage"]["output_tokens"] == 3
