"""Self-test of the fake vLLM-like backend: if these fail, the e2e results mean nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
import requests
from openai.types.chat import ChatCompletionMessageParam

from harness.fake_backend import FakeBackend, embedding_for

CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hello world"}]}


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    with FakeBackend() as server:
        yield server


def sse_data(response: requests.Response) -> list[str]:
    """The data payloads of an SSE response, in order."""
    return [
        line.removeprefix("data: ")
        for line in response.iter_lines(decode_unicode=True)
        if line.startswith("data: ")
    ]


def drain(response: requests.Response, into: list[str]) -> None:
    """Read lines until the body ends, keeping what arrived even if it ends in an error."""
    for line in response.iter_lines(decode_unicode=True):
        into.append(line)


def test_models_list_has_the_defaults(backend: FakeBackend) -> None:
    with requests.get(f"{backend.url}/models", timeout=5) as response:
        assert response.status_code == 200
        models = response.json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["fake-chat", "fake-embed", "org/Fake-Model-7B"]
    assert models["data"][0]["max_model_len"] == 8192
    assert "max_model_len" not in models["data"][2]


def test_streamed_chat_is_valid_sse_with_usage(backend: FakeBackend) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    url = f"{backend.url}/chat/completions"
    with requests.post(url, json=body, stream=True, timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["transfer-encoding"] == "chunked"
        payloads = sse_data(response)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "echo: hello world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert backend.events[-1]["event"] == "stream_done"
    assert backend.requests[-1]["json"] == body


def test_openai_sdk_chat_stream_and_embeddings(backend: FakeBackend) -> None:
    with openai.OpenAI(base_url=backend.url, api_key="x", max_retries=0) as client:
        hello: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello world"}]
        reply = client.chat.completions.create(model="fake-chat", messages=hello)
        assert reply.choices[0].message.content == "echo: hello world"
        assert reply.usage is not None
        assert reply.usage.total_tokens == 5

        pieces: list[str] = []
        with client.chat.completions.create(
            model="fake-chat", messages=hello, stream=True
        ) as stream:
            for chunk in stream:
                pieces.extend(choice.delta.content or "" for choice in chunk.choices)
        assert "".join(pieces) == "echo: hello world"

        # The SDK asks for base64 and decodes it; the data arrives reversed, the SDK keeps that.
        result = client.embeddings.create(model="fake-embed", input=["one", "two"])
    assert backend.requests[-1]["json"]["encoding_format"] == "base64"
    by_index = sorted(result.data, key=lambda item: item.index)
    assert [item.embedding for item in by_index] == [embedding_for("one"), embedding_for("two")]


def test_validation_error_uses_the_vllm_shape(backend: FakeBackend) -> None:
    tools_body = {**CHAT, "tools": []}
    url = f"{backend.url}/chat/completions"
    with requests.post(url, json=tools_body, timeout=5) as response:
        assert response.status_code == 400
        assert response.json() == {
            "error": {
                "message": "tools must not be an empty array",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        }


def test_die_after_ends_the_stream_without_done(backend: FakeBackend) -> None:
    messages = [{"role": "user", "content": "one two three four [[die-after:2]]"}]
    body = {**CHAT, "messages": messages, "stream": True}
    url = f"{backend.url}/chat/completions"
    received: list[str] = []
    # The missing terminating chunk is what tells the client the server died.
    with (
        requests.post(url, json=body, stream=True, timeout=5) as response,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        drain(response, received)
    payloads = [line for line in received if line.startswith("data: ")]
    assert len(payloads) == 3  # the role chunk and two content pieces
    assert "data: [DONE]" not in payloads
    assert backend.events[-1]["event"] == "stream_killed"
