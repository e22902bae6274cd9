"""The openai SDK's `responses` client through a real gunicorn to the fake backend: what the
backend receives from a Codex-like request, function calling, structured output, reasoning,
and failures."""

from __future__ import annotations

import json

import openai
import pytest

from tests.samples import ECHO_SCHEMA, RESPONSES_WEATHER_TOOL

MODEL = "fake-chat"


def chat_requests(backend) -> list[dict]:
    return [r["json"] for r in backend.requests if r["path"] == "/v1/chat/completions"]


def test_a_codex_request_reaches_the_backend_as_a_plain_chat(openai_client, backend):
    namespace = {
        "type": "namespace",
        "name": "mcp_fs",
        "description": "files",
        "tools": [{"type": "function", "name": "read", "parameters": {"type": "object"}}],
    }
    with openai_client.responses.stream(
        model=MODEL,
        input=[
            {"type": "message", "role": "developer", "content": "You are Codex."},
            {"type": "message", "role": "user", "id": "msg_1", "content": "weather?"},
        ],
        tools=[{"type": "web_search"}, namespace, RESPONSES_WEATHER_TOOL],
        tool_choice="auto",
        parallel_tool_calls=False,
        reasoning={"effort": "medium", "summary": "auto"},
        store=False,
        include=["reasoning.encrypted_content"],
        extra_body={"prompt_cache_key": "k", "client_metadata": {"session": "s"}},
    ) as stream:
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "function_call"]
    [sent] = chat_requests(backend)
    assert sent["messages"][:2] == [
        {"role": "system", "content": "You are Codex."},
        {"role": "user", "content": "weather?"},
    ]
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["mcp_fs__read", "get_weather"]
    assert not {"include", "prompt_cache_key", "client_metadata", "store", "reasoning"} & set(sent)
    assert sent["parallel_tool_calls"] is False
    assert sent["reasoning_effort"] == "medium"


def test_function_calling_round_trip_keeps_the_call_id(openai_client, backend):
    items: list = [{"role": "user", "content": "weather?"}]
    first = openai_client.responses.create(model=MODEL, input=items, tools=[RESPONSES_WEATHER_TOOL])
    [call] = first.output
    assert (call.type, call.name, json.loads(call.arguments)) == (
        "function_call",
        "get_weather",
        {"city": "Tokyo"},
    )
    items += [call.model_dump(exclude_none=True)]
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "22C"})
    second = openai_client.responses.create(
        model=MODEL, input=items, tools=[RESPONSES_WEATHER_TOOL]
    )
    assert second.output_text == "tool said: 22C"
    sent = chat_requests(backend)[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2]["tool_call_id"] == call.call_id


def test_structured_output_parses_into_a_model(openai_client, backend):
    schema = ECHO_SCHEMA
    response = openai_client.responses.create(
        model=MODEL,
        input="hello",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"echo": "hello"}
    sent = chat_requests(backend)[-1]["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }


def test_reasoning_is_a_summary_item_before_the_message(openai_client, backend):
    response = openai_client.responses.create(
        model=MODEL, input="why?", reasoning={"effort": "high"}
    )
    reasoning, message = response.output
    assert reasoning.summary[0].text == "thinking about: why?"
    assert message.content[0].text == "echo: why?"


def test_a_cut_answer_is_incomplete(openai_client, backend):
    response = openai_client.responses.create(
        model=MODEL, input="one two three four", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


def test_stateful_fields_are_refused_by_name(openai_client, backend):
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        openai_client.responses.create(model=MODEL, input="hi", previous_response_id="resp_1")
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve("resp_1")
    assert not chat_requests(backend)


def test_a_stream_that_breaks_ends_with_response_failed(openai_client, backend):
    with openai_client.responses.stream(model=MODEL, input="a b c d [[error-event]]") as stream:
        names = [event.type for event in stream]
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert names[-2:] == ["error", "response.failed"]


def test_backend_errors_keep_their_status(openai_client, backend):
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.responses.create(model=MODEL, input="[[status:429]]")
    assert caught.value.response.headers["retry-after"] == "7"
