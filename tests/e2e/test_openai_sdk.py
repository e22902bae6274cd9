"""The OpenAI Python SDK on the proxy's /v1: passed through to the backend untouched."""

from __future__ import annotations

import openai
import pytest


def test_models_are_listed_in_openai_shape(openai_client) -> None:
    ids = [model.id for model in openai_client.models.list()]
    assert ids == ["fake-chat", "fake-embed", "org/Fake-Model-7B"]


def test_chat_completion(openai_client) -> None:
    completion = openai_client.chat.completions.create(
        model="fake-chat", messages=[{"role": "user", "content": "hi there"}]
    )
    assert completion.choices[0].message.content == "echo: hi there"
    assert completion.usage is not None


def test_streamed_chat_completion_arrives_chunk_by_chunk(openai_client) -> None:
    stream = openai_client.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[-1].usage is not None


def test_embeddings_come_back_in_the_encoding_the_sdk_asked_for(openai_client, backend) -> None:
    # The SDK asks for base64 and decodes it itself; the proxy must not re-encode anything.
    result = openai_client.embeddings.create(model="fake-embed", input=["alpha", "beta"])
    assert [item.index for item in result.data] == [1, 0]
    assert backend.requests[-1]["json"]["encoding_format"] == "base64"
    assert len(result.data[0].embedding) == 8


def test_backend_errors_keep_their_status_and_shape(openai_client) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(
            model="missing", messages=[{"role": "user", "content": "hi"}]
        )
    assert "does not exist" in caught.value.message


def test_rate_limits_pass_through_with_retry_after(openai_client) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.chat.completions.create(
            model="fake-chat", messages=[{"role": "user", "content": "[[status:429]]"}]
        )
    assert caught.value.response.headers["retry-after"] == "7"
