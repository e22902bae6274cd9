"""Ollama messages and tools -> OpenAI messages and tools."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from app.errors import BadRequest
from app.flavours import flavour
from app.translate.ollama.messages import sanitize_tools, to_openai_messages, tool_call_id
from tests.samples import WEATHER_TOOL

NINE_ALNUM = re.compile(r"^[A-Za-z0-9]{9}$")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(24)).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(24)).decode()
WEBP = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="  # a real 1x1 lossless WebP

# Turn 2 of the tool round trip: what the Python SDK sends back (ids and indexes dropped).
TOKYO_CALL = {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}
TURN_2: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Tokyo?"},
    {"role": "assistant", "tool_calls": [TOKYO_CALL]},
    {"role": "tool", "content": "22°C", "tool_name": "get_weather"},
]


def test_worked_example_turn_2() -> None:
    converted = to_openai_messages(TURN_2, flavour("generic"))
    call_id = converted[1]["tool_calls"][0]["id"]
    assert NINE_ALNUM.match(call_id)
    assert converted == [
        {"role": "user", "content": "Weather in Tokyo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "22°C"},
    ]


def test_assigned_ids_are_deterministic_across_turns() -> None:
    first = to_openai_messages(TURN_2, flavour("generic"))
    again = to_openai_messages([dict(message) for message in TURN_2], flavour("generic"))
    assert first == again
    assert first[1]["tool_calls"][0]["id"] == tool_call_id(1, 0, "get_weather")


def test_ids_differ_by_position_and_name() -> None:
    ids = {tool_call_id(m, c, n) for m in range(3) for c in range(3) for n in ("a", "b")}
    assert len(ids) == 18
    assert all(NINE_ALNUM.match(i) for i in ids)


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("vllm", True),
        ("llamacpp", True),
        ("generic", False),
        ("openai", False),
        ("openrouter", False),
    ],
)
def test_tool_result_carries_name_only_where_templates_read_it(name: str, named: bool) -> None:
    tool = to_openai_messages(TURN_2, flavour(name))[2]
    assert ("name" in tool) is named
    if named:
        assert tool["name"] == "get_weather"


def _assistant(*names: str, ids: tuple[str | None, ...] = ()) -> dict[str, Any]:
    calls = []
    for position, name in enumerate(names):
        call: dict[str, Any] = {"function": {"name": name, "arguments": {"n": position}}}
        if position < len(ids) and ids[position]:
            call["id"] = ids[position]
        calls.append(call)
    return {"role": "assistant", "tool_calls": calls}


def _result_ids(messages: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    converted = to_openai_messages(messages, flavour("generic"))
    calls = [call for message in converted for call in message.get("tool_calls", [])]
    call_ids = [call["id"] for call in calls]
    return call_ids, [message["tool_call_id"] for message in converted if message["role"] == "tool"]


def test_parallel_results_are_matched_by_tool_name_not_position() -> None:
    calls, results = _result_ids(
        [
            {"role": "user", "content": "weather and time?"},
            _assistant("get_weather", "get_time"),
            {"role": "tool", "content": "12:00", "tool_name": "get_time"},
            {"role": "tool", "content": "22°C", "tool_name": "get_weather"},
        ]
    )
    assert results == [calls[1], calls[0]]
    assert calls[0] != calls[1]


def test_results_of_the_same_tool_are_matched_in_order() -> None:
    calls, results = _result_ids(
        [
            _assistant("get_weather", "get_weather", "get_weather"),
            {"role": "tool", "content": "a", "tool_name": "get_weather"},
            {"role": "tool", "content": "b", "tool_name": "get_weather"},
            {"role": "tool", "content": "c", "tool_name": "get_weather"},
        ]
    )
    assert results == calls
    assert len(set(calls)) == 3


def test_results_without_tool_name_take_the_next_unanswered_call() -> None:
    calls, results = _result_ids(
        [
            _assistant("a", "b"),
            {"role": "tool", "content": "1", "tool_name": "b"},
            {"role": "tool", "content": "2"},
        ]
    )
    assert results == [calls[1], calls[0]]


def test_explicit_ids_are_kept_and_consume_their_call() -> None:
    calls, results = _result_ids(
        [
            _assistant("a", "a", ids=("call_1", None)),
            {"role": "tool", "content": "x", "tool_call_id": "call_1"},
            {"role": "tool", "content": "y", "tool_name": "a"},
        ]
    )
    assert calls[0] == "call_1"
    assert NINE_ALNUM.match(calls[1])
    assert results == ["call_1", calls[1]]


def test_an_unknown_explicit_id_is_kept_and_leaves_the_open_calls_alone() -> None:
    calls, results = _result_ids(
        [
            _assistant("a"),
            {"role": "tool", "content": "x", "tool_call_id": "call_from_client"},
            {"role": "tool", "content": "y"},
        ]
    )
    assert results == ["call_from_client", calls[0]]


def test_results_answer_only_the_latest_assistant_message() -> None:
    calls, results = _result_ids(
        [
            _assistant("get_weather"),
            {"role": "tool", "content": "22°C", "tool_name": "get_weather"},
            {"role": "user", "content": "and tomorrow?"},
            _assistant("get_weather"),
            {"role": "tool", "content": "25°C", "tool_name": "get_weather"},
        ]
    )
    assert results == calls
    assert calls[0] != calls[1]


def test_a_result_without_any_call_gets_a_fresh_id() -> None:
    _, results = _result_ids([{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}])
    assert results == [tool_call_id(1, 0, "tool")]


@pytest.mark.parametrize(
    ("arguments", "sent"),
    [
        ({"city": "Zürich", "days": 3}, '{"city":"Zürich","days":3}'),
        ({}, "{}"),
        (None, "{}"),
        ('{"already": "encoded"}', '{"already": "encoded"}'),
    ],
)
def test_tool_call_arguments_are_sent_as_json_text(arguments: Any, sent: str) -> None:
    calls = [{"id": "c1", "function": {"name": "f", "arguments": arguments}}]
    message = {"role": "assistant", "content": "", "tool_calls": calls}
    assert to_openai_messages([message], flavour("generic"))[0]["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": sent}}
    ]


def test_assistant_text_beside_tool_calls_is_kept() -> None:
    calls = [{"function": {"name": "f"}}]
    message = {"role": "assistant", "content": "Let me check.", "tool_calls": calls}
    converted = to_openai_messages([message], flavour("generic"))[0]
    assert converted["content"] == "Let me check."
    assert converted["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "USER", "content": "hi"}, ("user", "hi")),
        ({"role": "System", "content": "be brief"}, ("system", "be brief")),
        ({"role": "assistant"}, ("assistant", "")),
        ({"role": "assistant", "content": "ok", "tool_calls": []}, ("assistant", "ok")),
        ({"role": "assistant", "content": "42", "thinking": "6x7"}, ("assistant", "42")),
        ({"role": "user", "content": None, "images": []}, ("user", "")),
    ],
)
def test_plain_messages(message: dict[str, Any], expected: tuple[str, str]) -> None:
    role, content = expected
    assert to_openai_messages([message], flavour("openai")) == [{"role": role, "content": content}]


def test_images_become_image_url_parts_with_the_sniffed_type() -> None:
    message = {"role": "user", "content": "What is this?", "images": [PNG, JPEG]}
    assert to_openai_messages([message], flavour("vllm")) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}},
            ],
        }
    ]


def test_images_without_text_have_no_text_part() -> None:
    [message] = to_openai_messages([{"role": "user", "images": [JPEG]}], flavour("generic"))
    assert message["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}}
    ]


def test_webp_is_refused_clearly_for_llamacpp() -> None:
    # llama.cpp cannot decode WebP. Ollama re-encodes it to PNG, which would
    # need an imaging library here; a 400 that says what to send instead is the honest answer.
    with pytest.raises(BadRequest, match=r"messages\[0\]: images\[0\] is WebP"):
        to_openai_messages([{"role": "user", "images": [WEBP]}], flavour("llamacpp"))
    [message] = to_openai_messages([{"role": "user", "images": [WEBP]}], flavour("vllm"))
    assert message["content"][0]["image_url"]["url"].startswith("data:image/webp;base64,")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("hello", "must be an object"),
        ({"content": "hi"}, "role is required and must be a string"),
        ({"role": ""}, "role is required and must be a string"),
        ({"role": 1}, "role is required and must be a string"),
        ({"role": "user", "content": ["a"]}, "content must be a string"),
        ({"role": "user", "images": ["%%%"]}, "images[0] is not valid base64"),
        ({"role": "user", "images": [PNG, ""]}, "images[1] is empty"),
        ({"role": "user", "images": PNG}, "images must be a list of base64 strings"),
        ({"role": "assistant", "tool_calls": {"function": {}}}, "tool_calls must be a list"),
        ({"role": "assistant", "tool_calls": ["f"]}, "tool_calls[0].function must be an object"),
        (
            {"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]},
            "tool_calls[0].function.name is required",
        ),
        (
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]},
            "tool_calls[0].function.arguments must be an object",
        ),
    ],
)
def test_invalid_messages_are_bad_requests_naming_the_message(message: Any, error: str) -> None:
    with pytest.raises(BadRequest) as caught:
        to_openai_messages([{"role": "user", "content": "first"}, message], flavour("generic"))
    assert caught.value.status == 400
    assert caught.value.message == f"invalid message at messages[1]: {error}"


EMPTY = {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("tool", "expected_function"),
    [
        (WEATHER_TOOL, WEATHER_TOOL["function"]),
        ({"function": {"name": "f", "parameters": None}}, {"name": "f", "parameters": EMPTY}),
        ({"function": {"name": "f"}}, {"name": "f", "parameters": EMPTY}),
        (
            {"function": {"name": "f", "parameters": {"properties": None}}},
            {"name": "f", "parameters": EMPTY},
        ),
        (
            {
                "function": {
                    "name": "f",
                    "parameters": {"properties": {"x": {"type": "integer, string"}}},
                }
            },
            {
                "name": "f",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": ["integer", "string"]}},
                },
            },
        ),
        (
            {"function": {"name": "f", "strict": True, "description": 5}},
            {"name": "f", "parameters": EMPTY, "strict": True},
        ),
    ],
)
def test_sanitize_tools(tool: dict[str, Any], expected_function: dict[str, Any]) -> None:
    assert sanitize_tools([tool]) == [{"type": "function", "function": expected_function}]


def test_sanitize_tools_drops_go_s_stray_items_and_keeps_order() -> None:
    tools = [
        {**WEATHER_TOOL, "items": None},
        {"type": "function", "function": {"name": "get_time"}},
    ]
    sanitized = sanitize_tools(tools)
    assert [tool["function"]["name"] for tool in sanitized] == ["get_weather", "get_time"]
    assert sanitized[0] == WEATHER_TOOL


@pytest.mark.parametrize(
    ("tool", "error"),
    [
        ("get_weather", "function must be an object"),
        ({"type": "function"}, "function must be an object"),
        ({"function": {"description": "no name"}}, "function.name is required"),
        ({"function": {"name": ""}}, "function.name is required"),
    ],
)
def test_invalid_tools_name_the_tool(tool: Any, error: str) -> None:
    with pytest.raises(BadRequest) as caught:
        sanitize_tools([WEATHER_TOOL, tool])
    assert caught.value.message == f"invalid tool at tools[1]: {error}"
