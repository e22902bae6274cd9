"""Tools, structured output, logprobs and reasoning through /v1 with the OpenAI SDK: the
pass-through must deliver each unchanged, streamed and not."""

from __future__ import annotations

import json

import pytest

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_tool_call_round_trip(openai_client) -> None:
    messages = [{"role": "user", "content": "weather in Tokyo?"}]
    first = openai_client.chat.completions.create(model="fake-chat", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "Tokyo"}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = openai_client.chat.completions.create(model="fake-chat", messages=messages)
    assert second.choices[0].message.content == "tool said: sunny"


def test_streamed_tool_call_fragments_arrive_as_the_backend_sent_them(openai_client) -> None:
    stream = openai_client.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        stream=True,
    )
    fragments = [
        call.function.arguments
        for chunk in stream
        if chunk.choices and chunk.choices[0].delta.tool_calls
        for call in chunk.choices[0].delta.tool_calls
    ]
    assert json.loads("".join(fragments)) == {"city": "Tokyo"}
    assert len(fragments) > 1


@pytest.mark.parametrize("stream", [False, True])
def test_structured_output(openai_client, stream: bool) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": {"type": "object"}},
    }
    result = openai_client.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "x"}],
        response_format=response_format,
        stream=stream,
    )
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
    else:
        text = result.choices[0].message.content
    assert json.loads(text) == {"echo": "x"}


def test_logprobs(openai_client) -> None:
    result = openai_client.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        top_logprobs=2,
    )
    tokens = result.choices[0].logprobs.content
    assert [token.token for token in tokens] == ["echo:", " hi"]
    assert len(tokens[0].top_logprobs) == 2


def test_reasoning_fields_pass_through(openai_client) -> None:
    result = openai_client.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "why"}],
        extra_body={"chat_template_kwargs": {"enable_thinking": True}},
    )
    assert result.choices[0].message.model_extra["reasoning"] == "thinking about: why"
