"""Tool calls and thinking through `/api/chat`:
Ollama's whole calls with object arguments against OpenAI's fragments with string arguments."""

from __future__ import annotations

import re

import pytest

from app import create_app
from app.config import ModelMapping, Settings
from tests.checks import ollama_error
from tests.samples import WEATHER_TOOL

from .helpers import (
    BACKEND,
    CHAT_URL,
    USER,
    add_stream,
    chat,
    completion,
    delta,
    lines,
    sent,
    single,
    sse,
    usage_event,
    whole,
)


def test_tool_call_round_trip_sends_openai_shapes(client, backend):
    """Turn 2 of the round trip: the Python SDK drops ids; the proxy assigns and matches them."""
    whole(backend, completion("It is 22°C in Tokyo."))
    call = {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}
    messages = [
        {"role": "user", "content": "Weather in Tokyo?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "content": "22°C", "tool_name": "get_weather"},
    ]
    body = single(chat(client, messages=messages, tools=[WEATHER_TOOL], stream=False))
    assert body["message"] == {"role": "assistant", "content": "It is 22°C in Tokyo."}
    upstream = sent(backend, CHAT_URL)
    assert upstream["tools"] == [WEATHER_TOOL]
    user, assistant, tool = upstream["messages"]
    assert user == {"role": "user", "content": "Weather in Tokyo?"}
    call_id = assistant["tool_calls"][0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", call_id)
    function = {"name": "get_weather", "arguments": '{"city":"Tokyo"}'}
    assert assistant == {
        "role": "assistant",
        "content": "",  # accepted by every server; llama-cpp-python refuses null with a 500
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }
    assert tool == {"role": "tool", "tool_call_id": call_id, "content": "22°C"}


def test_client_tool_call_ids_are_kept(client, backend):
    whole(backend)
    calls = [
        {"id": "call_a", "function": {"name": "f", "arguments": {}}},
        {"id": "call_b", "function": {"name": "g", "arguments": {"x": 1}}},
    ]
    messages = [
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "content": "G", "tool_call_id": "call_b"},
        {"role": "tool", "content": "F", "tool_name": "f"},
    ]
    single(chat(client, messages=messages, stream=False))
    upstream = sent(backend, CHAT_URL)["messages"]
    assert [c["id"] for c in upstream[0]["tool_calls"]] == ["call_a", "call_b"]
    assert [m["tool_call_id"] for m in upstream[1:]] == ["call_b", "call_a"]


def test_tool_results_are_matched_by_order_when_names_do_not_help(client, backend):
    whole(backend)
    calls = [{"id": "a", "function": {"name": "f"}}, {"id": "b", "function": {"name": "f"}}]
    messages = [
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "content": "1"},  # no tool_name, no tool_call_id
        {"role": "tool", "content": "2", "tool_name": "other"},
        {"role": "tool", "content": "3", "tool_name": "f"},  # every call is answered already
    ]
    single(chat(client, messages=messages, stream=False))
    upstream = sent(backend, CHAT_URL)["messages"]
    assert upstream[0]["tool_calls"][0]["function"]["arguments"] == "{}"
    ids = [m["tool_call_id"] for m in upstream[1:]]
    assert ids[:2] == ["a", "b"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", ids[2])


def test_streamed_tool_call_fragments_come_back_whole(client, backend):
    first = {"index": 0, "id": "chatcmpl-tool-9f", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip
    fragments = ['{"city', '": "Tok', 'yo"}']
    events = [delta("", role="assistant"), delta(tool_calls=[first])]
    events += [delta(tool_calls=[{"index": 0, "function": {"arguments": a}}]) for a in fragments]
    events += [delta(finish="tool_calls"), usage_event()]
    add_stream(backend, CHAT_URL, sse(*events))
    chunks = lines(chat(client, tools=[WEATHER_TOOL]))
    calls = [call for chunk in chunks for call in chunk["message"].get("tool_calls", [])]
    function = {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}
    assert calls == [{"id": "chatcmpl-tool-9f", "function": function}]
    assert (chunks[-1]["done"], chunks[-1]["done_reason"]) == (True, "stop")


def test_whole_tool_call_answer_has_object_arguments(client, backend):
    function = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    call = {"id": "call_1", "type": "function", "function": function}
    whole(backend, completion(None, finish="tool_calls", tool_calls=[call]))
    body = single(chat(client, tools=[WEATHER_TOOL], stream=False))
    function = {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}
    assert body["message"] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "function": function}],
    }
    assert body["done_reason"] == "stop"


def test_parallel_calls_are_told_apart_even_on_a_reused_index(client, backend):
    """Some servers send every parallel call at index 0, each with a new id."""
    first = {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"n": 1}'}}
    second = {"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}
    add_stream(backend, CHAT_URL, sse(delta(tool_calls=[first]), delta(tool_calls=[second]),
                                      delta(finish="tool_calls")))  # fmt: skip
    calls = [c for chunk in lines(chat(client)) for c in chunk["message"].get("tool_calls", [])]
    assert calls == [
        {"id": "a", "function": {"index": 0, "name": "f", "arguments": {"n": 1}}},
        {"id": "b", "function": {"index": 1, "name": "g", "arguments": {}}},
    ]


@pytest.mark.parametrize(
    ("arguments", "parsed"),
    [("", {}), ('"{\\"n\\": 2}"', {"n": 2}), ('{"n": 3}', {"n": 3})],
    ids=["empty", "double-encoded", "plain"],
)
def test_returned_arguments_are_always_an_object(client, backend, arguments, parsed):
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    whole(backend, completion(None, finish="tool_calls", tool_calls=[call]))
    body = single(chat(client, stream=False))
    assert body["message"]["tool_calls"][0]["function"]["arguments"] == parsed


@pytest.mark.parametrize("stream", [True, False])
def test_unparseable_arguments_are_an_error_not_a_string(client, backend, stream):
    call = {"index": 0, "id": "c", "function": {"name": "f", "arguments": "[1, 2"}}
    if stream:
        add_stream(
            backend, CHAT_URL, sse(delta("x"), delta(tool_calls=[call], finish="tool_calls"))
        )
        last = lines(chat(client))[-1]
        assert list(last) == ["error"]
        assert "invalid tool call arguments" in last["error"]
    else:
        whole(backend, completion(None, finish="tool_calls", tool_calls=[call]))
        assert "invalid tool call arguments" in ollama_error(chat(client, stream=False), 502)


def test_tool_definitions_are_sanitised(client, backend):
    whole(backend)
    tools = [
        {"type": "function", "function": {"name": "now", "parameters": None}},
        {"function": {"name": "pick", "parameters": {"type": "object", "properties": {
            "x": {"type": "integer, string"}}, "required": ["x"]}}},
    ]  # fmt: skip
    single(chat(client, tools=tools, stream=False))
    assert sent(backend, CHAT_URL)["tools"] == [
        {"type": "function",
         "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "pick", "parameters": {
            "type": "object", "properties": {"x": {"type": ["integer", "string"]}},
            "required": ["x"]}}},
    ]  # fmt: skip


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, backend_flavour="vllm")])
def test_string_arguments_pass_through_and_vllm_gets_the_tool_name(client, backend):
    whole(backend)
    call = {"function": {"name": "f", "arguments": '{"a":1}'}}
    messages = [{"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "Tool", "content": "1", "tool_name": "f"}]  # fmt: skip
    single(chat(client, messages=messages, stream=False))
    assistant, tool = sent(backend, CHAT_URL)["messages"]
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    call_id = assistant["tool_calls"][0]["id"]
    assert tool == {"role": "tool", "content": "1", "tool_call_id": call_id, "name": "f"}


def test_thinking_comes_from_reasoning_deltas(client, backend):
    events = [delta("", role="assistant"), delta(reasoning="Let me "), delta(reasoning="think."),
              delta("Answer"), delta(finish="stop"), usage_event()]  # fmt: skip
    add_stream(backend, CHAT_URL, sse(*events))
    chunks = lines(chat(client, model="Qwen/Qwen3-8B"))
    assert [c["message"] for c in chunks[:-1]] == [
        {"role": "assistant", "content": "", "thinking": "Let me "},
        {"role": "assistant", "content": "", "thinking": "think."},
        {"role": "assistant", "content": "Answer"},
    ]
    assert chunks[-1]["done"] is True


def test_reasoning_content_duplicate_is_not_doubled(client, backend):
    event = delta("", role="assistant")
    event["choices"][0]["delta"].update(reasoning="Hmm", reasoning_content="Hmm")
    add_stream(backend, CHAT_URL, sse(event, delta("ok", finish="stop")))
    assert lines(chat(client, model="Qwen/Qwen3-8B"))[0]["message"]["thinking"] == "Hmm"


def test_think_false_drops_stray_reasoning(client, backend):
    events = [delta(reasoning="secret"), delta("Answer"), delta(finish="stop")]
    add_stream(backend, CHAT_URL, sse(*events))
    chunks = lines(chat(client, model="Qwen/Qwen3-8B", think=False))
    assert [c["message"] for c in chunks] == [
        {"role": "assistant", "content": "Answer"},
        {"role": "assistant", "content": ""},
    ]


@pytest.mark.parametrize(
    ("flavour", "think", "expected"),
    [
        ("vllm", True, {"chat_template_kwargs": {"enable_thinking": True, "thinking": True}}),
        ("vllm", False, {"chat_template_kwargs": {"enable_thinking": False, "thinking": False}}),
        ("openai", "high", {"reasoning_effort": "high"}),
        ("openai", False, {"reasoning_effort": "none"}),
        ("openai", "max", {"reasoning_effort": "high"}),
        ("openai", True, {}),
        ("openrouter", "low", {"reasoning": {"effort": "low"}}),
        ("openrouter", "max", {"reasoning": {"effort": "xhigh"}}),
        ("openrouter", True, {"reasoning": {"enabled": True}}),
        ("openrouter", False, {"reasoning": {"enabled": False}}),
        (
            "vllm",
            "medium",
            {
                "chat_template_kwargs": {"enable_thinking": True, "thinking": True},
                "reasoning_effort": "medium",
            },
        ),
        ("generic", True, {}),
    ],
)
def test_think_is_sent_in_the_backends_dialect(backend, flavour, think, expected):
    client = create_app(Settings(backend_url=BACKEND, backend_flavour=flavour)).test_client()
    whole(backend)
    single(chat(client, model="Qwen/Qwen3-8B", think=think, stream=False))
    assert sent(backend, CHAT_URL) == {"model": "Qwen/Qwen3-8B", "messages": USER, **expected}


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, backend_flavour="vllm")])
def test_trailing_assistant_message_is_continued_on_vllm(client, backend):
    whole(backend)
    messages = [*USER, {"role": "assistant", "content": "Once upon"}]
    single(chat(client, messages=messages, stream=False))
    upstream = sent(backend, CHAT_URL)
    assert (upstream["continue_final_message"], upstream["add_generation_prompt"]) == (True, False)


DECLARED = ModelMapping(
    models={
        "llama3.2": {"capabilities": ["completion", "tools"]},
        "Qwen/Qwen3-8B": {"capabilities": ["completion", "tools", "thinking"]},
    }
)


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, mapping=DECLARED)])
@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
@pytest.mark.parametrize("think", [True, "high"])
def test_think_on_a_model_known_not_to_think_is_ollamas_400(client, backend, path, think):
    body = {"model": "llama3.2", "messages": USER, "prompt": "hi", "think": think}
    assert ollama_error(client.post(path, json=body), 400) == '"llama3.2" does not support thinking'
    assert not [call for call in backend.calls if call.request.method == "POST"]


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, mapping=DECLARED)])
def test_think_false_and_thinking_models_are_fine(client, backend):
    whole(backend)
    whole(backend)
    ok = {"messages": USER, "stream": False}
    assert chat(client, **ok, think=False).status_code == 200
    assert chat(client, **ok, model="Qwen/Qwen3-8B", think=True).status_code == 200


def test_think_is_never_refused_on_a_guess_from_the_name(client, backend):
    # Nothing declared, nothing reported: "llama3.2" does not look like a thinking model, but
    # only the backend knows.
    whole(backend)
    assert chat(client, messages=USER, stream=False, think=True).status_code == 200
