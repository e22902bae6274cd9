"""The Ollama Python SDK through the proxy to the fake backend: exact answers, and exactly what
the backend was sent."""

from __future__ import annotations

import base64
import json

import ollama
import pytest

from harness.fake_backend import FakeBackend, embedding_for

from .conftest import BACKEND_KEY

# Model text can carry anything; U+2028/U+2029 split lines in str.splitlines() (the SDK's
# NDJSON reader) unless the proxy escapes them.
TRICKY = "naïve café, 日本語, emoji 🎉, Cyrillic х, line\u2028separator, para\u2029separator"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


def _chat_requests(backend: FakeBackend) -> list[dict]:
    return [r["json"] for r in backend.requests if r["path"] == "/v1/chat/completions"]


@pytest.mark.parametrize("stream", [False, True])
def test_non_ascii_text_survives_both_ways(client, backend, stream: bool) -> None:
    result = client.chat("fake-chat", messages=[{"role": "user", "content": TRICKY}], stream=stream)
    chunks = list(result) if stream else [result]
    assert "".join(chunk.message.content for chunk in chunks) == f"echo: {TRICKY}"
    assert _chat_requests(backend)[-1]["messages"][-1]["content"] == TRICKY


def test_chat_request_reaches_the_backend_translated(client, backend) -> None:
    client.chat(
        "FAKE-CHAT:latest",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
        ],
        options={"temperature": 0.2, "top_p": 0.9, "num_predict": 50, "seed": 7, "top_k": 20},
    )
    sent = _chat_requests(backend)[-1]
    recorded = next(r for r in backend.requests if r["path"] == "/v1/chat/completions")
    assert recorded["headers"]["authorization"] == f"Bearer {BACKEND_KEY}"
    assert sent["model"] == "fake-chat"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert sent["temperature"] == 0.2
    assert sent["top_p"] == 0.9
    assert sent["max_tokens"] == 50
    assert sent["seed"] == 7
    assert sent["top_k"] == 20  # the e2e proxy runs with BACKEND_FLAVOUR=vllm
    assert "tools" not in sent  # the SDK sends tools: [], which vLLM and OpenAI reject


def test_the_clients_model_name_is_echoed(client) -> None:
    reply = client.chat("Fake-Chat", messages=[{"role": "user", "content": "hi"}])
    assert reply.model == "Fake-Chat"


def test_generate_sends_system_and_prompt_as_a_chat(client, backend) -> None:
    reply = client.generate("fake-chat", prompt="tell me", system="You are terse.")
    assert reply.response == "echo: tell me"
    assert _chat_requests(backend)[-1]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "tell me"},
    ]


def test_images_become_data_uris_with_their_type(client, backend) -> None:
    reply = client.chat(
        "fake-chat", messages=[{"role": "user", "content": "what is this?", "images": [PNG]}]
    )
    assert reply.message.content == "echo: what is this? [images: 1 image/png]"
    parts = _chat_requests(backend)[-1]["messages"][0]["content"]
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{PNG}"


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_arrives_in_its_own_field(client, stream: bool) -> None:
    result = client.chat(
        "fake-chat", messages=[{"role": "user", "content": "why"}], think=True, stream=stream
    )
    chunks = list(result) if stream else [result]
    thinking = "".join(chunk.message.thinking or "" for chunk in chunks)
    content = "".join(chunk.message.content for chunk in chunks)
    assert thinking == "thinking about: why"
    assert content == "echo: why"


def test_think_false_keeps_reasoning_away(client, backend) -> None:
    reply = client.chat(
        "fake-chat", messages=[{"role": "user", "content": "why [[think]]"}], think=False
    )
    assert not reply.message.thinking
    sent = _chat_requests(backend)[-1]
    assert sent["chat_template_kwargs"]["enable_thinking"] is False


def test_format_json_asks_the_backend_for_json(client, backend) -> None:
    reply = client.chat("fake-chat", messages=[{"role": "user", "content": "x"}], format="json")
    assert json.loads(reply.message.content) == {"echo": "x"}
    assert _chat_requests(backend)[-1]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls_arrive_whole(client, stream: bool) -> None:
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {}}},
    ]
    result = client.chat(
        "fake-chat",
        messages=[{"role": "user", "content": "weather and time [[parallel]]"}],
        tools=tools,
        stream=stream,
    )
    chunks = list(result) if stream else [result]
    calls = [call for chunk in chunks for call in (chunk.message.tool_calls or [])]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", {"city": "Tokyo"}),
        ("get_time", {"city": "Paris"}),
    ]
    assert chunks[-1].done_reason == "stop"


def test_tool_results_are_matched_to_the_calls_they_answer(client, backend) -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
        },
        {"role": "tool", "content": "-3 degrees", "tool_name": "get_weather"},
    ]
    reply = client.chat("fake-chat", messages=messages)
    assert reply.message.content == "tool said: -3 degrees"
    sent = _chat_requests(backend)[-1]["messages"]
    call = sent[1]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"city":"Oslo"}'
    assert sent[2]["tool_call_id"] == call["id"]


def test_logprobs_in_ollamas_shape(client) -> None:
    reply = client.chat(
        "fake-chat",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        top_logprobs=2,
    )
    assert [entry.token for entry in reply.logprobs] == ["echo:", " hi"]
    assert len(reply.logprobs[0].top_logprobs) == 2


def test_embed_normalises_and_keeps_input_order(client) -> None:
    result = client.embed("fake-embed", input=["alpha", "beta", "gamma"])
    raw = [embedding_for(text) for text in ("alpha", "beta", "gamma")]
    for got, expected in zip(result.embeddings, raw, strict=True):
        norm = sum(x * x for x in expected) ** 0.5
        assert got == pytest.approx([x / norm for x in expected], rel=1e-6)


def test_legacy_embeddings_are_returned_as_the_backend_gave_them(client) -> None:
    result = client.embeddings("fake-embed", prompt="alpha")
    assert result.embedding == pytest.approx(embedding_for("alpha"), rel=1e-6)


def test_pull_of_a_served_model_succeeds(client) -> None:
    statuses = [part.status for part in client.pull("fake-chat", stream=True)]
    assert statuses[-1] == "success"


def test_model_management_the_backend_cannot_do_is_refused_clearly(client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.delete("fake-chat")
    assert caught.value.status_code == 501
    assert "not supported" in caught.value.error


@pytest.mark.parametrize("stream", [False, True])
def test_generate_context_continues_the_conversation(client, backend, stream: bool) -> None:
    first = client.generate("fake-chat", prompt="my name is Ada", system="Be terse.")
    assert first.context
    result = client.generate("fake-chat", prompt="what is my name?", context=first.context,
                             stream=stream)  # fmt: skip
    chunks = list(result) if stream else [result]
    assert "".join(chunk.response for chunk in chunks) == "echo: what is my name?"
    assert _chat_requests(backend)[-1]["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    assert chunks[-1].context


def test_raw_generate_returns_no_context(client) -> None:
    reply = client.generate("fake-chat", prompt="raw text", raw=True)
    assert reply.response == "completion: raw text"
    assert reply.context is None


def test_suffix_on_vllm_is_refused_as_ollama_refuses_insert(client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate("fake-chat", prompt="def add(a, b):", suffix="    return c")
    assert caught.value.status_code == 400
    assert caught.value.error == '"fake-chat" does not support insert'
