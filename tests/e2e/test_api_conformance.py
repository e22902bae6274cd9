"""Anthropic Messages and OpenAI Responses conformance, through the official SDKs: what their
users rely on, checked by shape and behaviour.

Runs against the fake backend in `make test` and against real llama.cpp servers in
`make e2e-real` (translated, and passed through to llama-server's own routes with
BACKEND_FLAVOUR=llama-server-native), so nothing here depends on the text a model writes.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.samples import ANTHROPIC_WEATHER_TOOL, ECHO_SCHEMA, RESPONSES_WEATHER_TOOL

from .conftest import Target

PROMPT = "Say hello."


def test_messages_create(anthropic_client: anthropic.Anthropic, target: Target) -> None:
    message = anthropic_client.messages.create(
        model=target.chat_model, max_tokens=16, messages=[{"role": "user", "content": PROMPT}]
    )
    assert message.id
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert "".join(block.text for block in message.content if block.type == "text")
    assert message.usage.output_tokens > 0


def test_messages_stream(anthropic_client: anthropic.Anthropic, target: Target) -> None:
    with anthropic_client.messages.stream(
        model=target.chat_model, max_tokens=16, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[-1].type == "text"
    assert final.content[-1].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0


def test_messages_tool_round_trip(anthropic_client: anthropic.Anthropic, target: Target) -> None:
    messages: list[dict] = [
        {"role": "user", "content": "What is the weather in Tokyo? Use the tool."}
    ]
    first = anthropic_client.messages.create(
        model=target.chat_model, max_tokens=128, messages=messages, tools=[ANTHROPIC_WEATHER_TOOL]
    )
    calls = [block for block in first.content if block.type == "tool_use"]
    if target.real and not calls:
        # A 135M model may answer in prose; the answer must still be complete.
        assert first.stop_reason in ("end_turn", "max_tokens")
        return
    assert first.stop_reason == "tool_use"
    assert calls[0].name == "get_weather"
    assert isinstance(calls[0].input, dict)
    messages.append(
        {"role": "assistant", "content": [block.model_dump() for block in first.content]}
    )
    messages.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": calls[0].id,
                    "content": "22 degrees and sunny",
                }
            ],
        }
    )
    second = anthropic_client.messages.create(
        model=target.chat_model, max_tokens=64, messages=messages, tools=[ANTHROPIC_WEATHER_TOOL]
    )
    assert second.content


@pytest.mark.translated
def test_messages_unknown_model_is_not_found(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client.messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_count_tokens(anthropic_client: anthropic.Anthropic, target: Target) -> None:
    counted = anthropic_client.messages.count_tokens(
        model=target.chat_model, messages=[{"role": "user", "content": "Count these words."}]
    )
    assert counted.input_tokens > 0


def test_responses_create(openai_client: openai.OpenAI, target: Target) -> None:
    response = openai_client.responses.create(
        model=target.chat_model, input=PROMPT, max_output_tokens=16
    )
    assert response.id
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    assert response.usage is not None
    assert response.usage.output_tokens > 0


@pytest.mark.translated
def test_responses_stream(openai_client: openai.OpenAI, target: Target) -> None:
    with openai_client.responses.stream(
        model=target.chat_model, input=PROMPT, max_output_tokens=64
    ) as stream:
        events = list(stream)
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    # A small model may run into the limit: incomplete is then the right ending.
    terminal = events[-1]
    assert terminal.type in ("response.completed", "response.incomplete")
    assert "".join(deltas) == terminal.response.output_text
    assert terminal.response.output_text


def test_responses_function_calling_round_trip(
    openai_client: openai.OpenAI, target: Target
) -> None:
    items: list = [{"role": "user", "content": "What is the weather in Tokyo? Use the tool."}]
    first = openai_client.responses.create(
        model=target.chat_model, input=items, tools=[RESPONSES_WEATHER_TOOL], max_output_tokens=128
    )
    calls = [item for item in first.output if item.type == "function_call"]
    if target.real and not calls:
        assert first.output_text or first.status == "incomplete"
        return
    assert calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments), dict)
    items += [item.model_dump(exclude_none=True) for item in first.output]
    items.append(
        {
            "type": "function_call_output",
            "call_id": calls[0].call_id,
            "output": "22 degrees and sunny",
        }
    )
    second = openai_client.responses.create(
        model=target.chat_model, input=items, tools=[RESPONSES_WEATHER_TOOL], max_output_tokens=64
    )
    assert second.status in ("completed", "incomplete")


@pytest.mark.translated
def test_responses_structured_output(openai_client: openai.OpenAI, target: Target) -> None:
    schema = ECHO_SCHEMA
    response = openai_client.responses.create(
        model=target.chat_model,
        input="Reply with a JSON object whose echo field says hello.",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema}},
        max_output_tokens=64,
    )
    if response.status == "incomplete":  # a small model may ramble until the limit
        return
    assert isinstance(json.loads(response.output_text)["echo"], str)
