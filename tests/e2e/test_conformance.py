"""Ollama-SDK conformance: what any Ollama client relies on, checked by shape and behaviour.

Runs against the fake backend in `make test` and against a real llama.cpp server in
`make e2e-real`, so nothing here depends on the text a model writes.
"""

from __future__ import annotations

import math

import httpx
import ollama
import pytest

from .conftest import Target


def test_root_and_version_answer_like_ollama(proxy) -> None:
    root = httpx.get(proxy.url + "/")
    assert root.status_code == 200
    assert root.text == "Ollama is running"
    version = httpx.get(proxy.url + "/api/version").json()["version"]
    assert tuple(int(part) for part in version.split(".")) >= (0, 6, 4)


def test_list_shows_the_backend_models_with_ollama_names(client, target: Target) -> None:
    names = [model.model for model in client.list().models]
    assert f"{target.chat_model}:latest" in names
    listed = next(m for m in client.list().models if m.model == f"{target.chat_model}:latest")
    assert listed.modified_at is not None
    assert len(listed.digest or "") == 64


def test_show_reports_capabilities_and_context_length(client, target: Target) -> None:
    shown = client.show(target.chat_model)
    assert "completion" in (shown.capabilities or [])
    arch = shown.modelinfo["general.architecture"]
    assert shown.modelinfo[f"{arch}.context_length"] > 0


def test_ps_lists_served_models(client, target: Target) -> None:
    running = [model.model for model in client.ps().models]
    assert f"{target.chat_model}:latest" in running


def test_chat_without_streaming(client, target: Target) -> None:
    reply = client.chat(
        target.chat_model,
        messages=[{"role": "user", "content": "Say hello."}],
        options={"num_predict": 16},
    )
    assert reply.done is True
    assert reply.done_reason in ("stop", "length")
    assert reply.message.role == "assistant"
    assert reply.message.content
    assert reply.model == target.chat_model
    assert isinstance(reply.eval_count, int)
    assert reply.eval_count > 0
    assert isinstance(reply.total_duration, int)


def test_chat_streaming_ends_with_one_done_chunk(client, target: Target) -> None:
    chunks = list(
        client.chat(
            target.chat_model,
            messages=[{"role": "user", "content": "Say hello."}],
            options={"num_predict": 16},
            stream=True,
        )
    )
    assert [chunk.done for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
    assert "".join(chunk.message.content or "" for chunk in chunks)
    assert chunks[-1].done_reason in ("stop", "length")
    assert chunks[-1].eval_count


@pytest.mark.parametrize("stream", [False, True])
def test_generate(client, target: Target, stream: bool) -> None:
    result = client.generate(
        target.chat_model, prompt="Write one word.", options={"num_predict": 8}, stream=stream
    )
    chunks = list(result) if stream else [result]
    assert chunks[-1].done is True
    assert "".join(chunk.response for chunk in chunks)


def test_num_predict_stops_with_length(client, target: Target) -> None:
    prompt = "Count from 1 to 100, separated by spaces."
    if not target.real:
        prompt += " [[long:50]]"
    reply = client.generate(target.chat_model, prompt=prompt, options={"num_predict": 5})
    assert reply.done_reason == "length"
    assert reply.eval_count is not None
    assert reply.eval_count <= 5


def test_load_and_unload_answer_without_generating(client, target: Target) -> None:
    loaded = client.chat(target.chat_model)
    assert loaded.done_reason == "load"
    unloaded = client.generate(target.chat_model, keep_alive=0)
    assert unloaded.done_reason == "unload"


def test_embed_gives_one_unit_vector_per_input(client, target: Target) -> None:
    result = client.embed(target.embed_model, input=["the first text", "a second one"])
    assert len(result.embeddings) == 2
    assert len(result.embeddings[0]) == len(result.embeddings[1]) > 0
    for vector in result.embeddings:
        assert math.isclose(math.hypot(*vector), 1.0, rel_tol=1e-6)


def test_legacy_embeddings_gives_one_vector(client, target: Target) -> None:
    result = client.embeddings(target.embed_model, prompt="some text")
    assert len(result.embedding) > 0


def test_unknown_model_is_a_404_ollama_clients_understand(client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat("no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404
    assert "not found" in caught.value.error


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string", "description": "The city"}},
        },
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(client, target: Target, stream: bool) -> None:
    messages = [{"role": "user", "content": "What is the weather in Tokyo? Use the tool."}]
    chunks = client.chat(target.chat_model, messages=messages, tools=[WEATHER_TOOL], stream=stream)
    replies = list(chunks) if stream else [chunks]
    calls = [call for reply in replies for call in (reply.message.tool_calls or [])]
    if target.real and not calls:
        # A 135M model may answer in prose; the reply must still be a well-formed answer.
        assert replies[-1].done is True
        return
    assert calls, "the model was expected to call the tool"
    call = calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(call.function.arguments, dict)
    messages.append({"role": "assistant", "content": "", "tool_calls": calls})
    messages.append({"role": "tool", "content": "22 degrees and sunny", "tool_name": "get_weather"})
    answer = client.chat(target.chat_model, messages=messages, tools=[WEATHER_TOOL])
    assert answer.done is True
    assert answer.message.content or answer.message.tool_calls
