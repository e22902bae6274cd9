"""/api/generate's extras through the Ollama SDK: images, format, thinking, logprobs, raw,
keep_alive forms."""

from __future__ import annotations

import base64
import json

import httpx
import ollama
import pytest

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 32).decode()
GIF = base64.b64encode(b"GIF89a" + b"\x00" * 32).decode()


@pytest.mark.parametrize("stream", [False, True])
def test_images_on_generate_are_sent_with_their_types(client, stream: bool) -> None:
    result = client.generate("fake-chat", prompt="describe", images=[JPEG, GIF], stream=stream)
    chunks = list(result) if stream else [result]
    assert "".join(c.response for c in chunks) == (
        "echo: describe [images: 2 image/jpeg,image/gif]"
    )


@pytest.mark.parametrize("stream", [False, True])
def test_format_schema_on_generate(client, backend, stream: bool) -> None:
    schema = {"title": "Reply", "type": "object", "properties": {"echo": {"type": "string"}}}
    result = client.generate("fake-chat", prompt="x", format=schema, stream=stream)
    chunks = list(result) if stream else [result]
    assert json.loads("".join(c.response for c in chunks)) == {"echo": "x"}
    sent = backend.requests[-1]["json"]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "Reply", "schema": schema}}


@pytest.mark.parametrize("think", [True, "high"])
def test_thinking_on_generate(client, backend, think) -> None:
    chunks = list(client.generate("fake-chat", prompt="why", think=think, stream=True))
    assert "".join(c.thinking or "" for c in chunks) == "thinking about: why"
    assert "".join(c.response for c in chunks) == "echo: why"
    sent = backend.requests[-1]["json"]
    assert sent["chat_template_kwargs"]["enable_thinking"] is True
    if think == "high":
        assert sent["reasoning_effort"] == "high"


@pytest.mark.parametrize("stream", [False, True])
def test_logprobs_on_generate(client, stream: bool) -> None:
    result = client.generate("fake-chat", prompt="hi", logprobs=True, top_logprobs=1, stream=stream)
    chunks = list(result) if stream else [result]
    tokens = [entry for chunk in chunks for entry in (chunk.logprobs or [])]
    assert [entry.token for entry in tokens] == ["echo:", " hi"]
    assert all(len(entry.top_logprobs) == 1 for entry in tokens)


@pytest.mark.parametrize("stream", [False, True])
def test_raw_generate_uses_completions_with_max_tokens(client, backend, stream: bool) -> None:
    result = client.generate(
        "fake-chat", prompt="<s>[INST] hi [/INST]", raw=True, options={"num_predict": 9},
        stream=stream,
    )  # fmt: skip
    chunks = list(result) if stream else [result]
    assert "".join(c.response for c in chunks) == "completion: <s>[INST] hi [/INST]"
    recorded = backend.requests[-1]
    assert recorded["path"] == "/v1/completions"
    assert recorded["json"]["prompt"] == "<s>[INST] hi [/INST]"
    assert recorded["json"]["max_tokens"] == 9


@pytest.mark.parametrize("keep_alive", ["5m", "1h30m", 300, -1, "-1m", 0, "0s"])
def test_keep_alive_forms_are_accepted(client, keep_alive) -> None:
    reply = client.generate("fake-chat", keep_alive=keep_alive)
    zero = keep_alive in (0, "0s")
    assert reply.done_reason == ("unload" if zero else "load")


def test_a_bare_number_string_keep_alive_is_a_400(proxy) -> None:
    response = httpx.post(
        proxy.url + "/api/generate", json={"model": "fake-chat", "keep_alive": "5"}
    )
    assert response.status_code == 400
    assert "duration" in response.json()["error"]


def test_unload_of_an_unknown_model_is_still_a_404(client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate("not-served", keep_alive=0)
    assert caught.value.status_code == 404
