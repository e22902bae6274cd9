"""The official Anthropic SDK through a real gunicorn to the fake backend: what the backend
receives, thinking, images, stop sequences, errors, and the metrics and log lines of the new
endpoint."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.samples import ANTHROPIC_WEATHER_TOOL, PNG

MODEL = "fake-chat"


def user(content: object) -> list[dict[str, object]]:
    return [{"role": "user", "content": content}]


def chat_requests(backend) -> list[dict]:
    return [r["json"] for r in backend.requests if r["path"] == "/v1/chat/completions"]


def test_claude_codes_request_reaches_the_backend_as_a_plain_chat(anthropic_client, backend):
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.3; cch=9f2e;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ]
    message = anthropic_client.messages.create(
        model=MODEL,
        max_tokens=32000,
        system=system,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}
                ],
            },
        ],
        tools=[{**ANTHROPIC_WEATHER_TOOL, "defer_loading": True}],
        tool_choice={"type": "none"},
        thinking={"type": "adaptive"},
        output_config={"effort": "high"},
        metadata={"user_id": "u-1"},
        extra_body={"context_management": {"edits": []}},
        extra_headers={"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"},
    )
    assert message.content[-1].text == "echo: hello"
    [sent] = chat_requests(backend)
    assert sent["messages"][0] == {"role": "system", "content": "You are Claude Code."}
    # Nothing of Anthropic's own reaches a chat completions server; 32,000 tokens cannot fit
    # fake-chat's 8,192-token window, so the backend's own limit applies.
    assert set(sent) == {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "chat_template_kwargs",
        "reasoning_effort",
    }
    assert sent["tools"][0]["function"] == {
        "name": "get_weather",
        "description": "Get weather",
        "parameters": ANTHROPIC_WEATHER_TOOL["input_schema"],
    }
    headers = backend.requests[-1]["headers"]
    assert "x-api-key" not in headers
    assert "anthropic-beta" not in headers
    assert headers["authorization"] == "Bearer sk-e2e-backend-secret-5f1c"


def test_tool_ids_survive_the_round_trip_to_the_backend(anthropic_client, backend):
    first = anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=user("weather?"), tools=[ANTHROPIC_WEATHER_TOOL]
    )
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.id.startswith("toolu_")
    assert call.input == {"city": "Tokyo"}
    backend_id = call.id.removeprefix("toolu_")
    history = [
        *user("weather?"),
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22 degrees"}],
        },
    ]
    second = anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=history, tools=[ANTHROPIC_WEATHER_TOOL]
    )
    assert second.content[0].text == "tool said: 22 degrees"
    assert second.stop_reason == "end_turn"
    sent = chat_requests(backend)[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == backend_id
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": backend_id,
        "content": "22 degrees",
        "name": "get_weather",
    }


def test_a_streamed_tool_call_is_whole_in_the_final_message(anthropic_client, backend):
    with anthropic_client.messages.stream(
        model=MODEL,
        max_tokens=100,
        messages=user("[[parallel]] weather?"),
        tools=[ANTHROPIC_WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_message()
    assert [(block.type, block.input) for block in final.content] == [
        ("tool_use", {"city": "Tokyo"}),
        ("tool_use", {"city": "Paris"}),
    ]
    assert final.stop_reason == "tool_use"


def test_thinking_streams_as_a_signed_thinking_block(anthropic_client, backend):
    with anthropic_client.messages.stream(
        model=MODEL,
        max_tokens=100,
        messages=user("why?"),
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        final = stream.get_final_message()
    thinking, text = final.content
    assert (thinking.type, thinking.thinking) == ("thinking", "thinking about: why?")
    assert thinking.signature
    assert text.text == "echo: why?"
    assert chat_requests(backend)[-1]["chat_template_kwargs"]["enable_thinking"] is True


def test_thinking_disabled_reaches_the_backend(anthropic_client, backend):
    message = anthropic_client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=user("[[think]] why?"),
        thinking={"type": "disabled"},
    )
    assert [block.type for block in message.content] == ["text"]
    assert chat_requests(backend)[-1]["chat_template_kwargs"]["enable_thinking"] is False


def test_images_base64_reach_the_backend(anthropic_client, backend):
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    message = anthropic_client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=user([image, {"type": "text", "text": "what is it?"}]),
    )
    assert message.content[0].text == "echo: what is it? [images: 1 image/png]"


def test_a_stop_sequence_is_reported(anthropic_client, backend):
    message = anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=user("one two three"), stop_sequences=["three"]
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "three")
    assert message.content[0].text == "echo: one two"


def test_max_tokens_is_reported(anthropic_client, backend):
    message = anthropic_client.messages.create(
        model=MODEL, max_tokens=2, messages=user("one two three four")
    )
    assert message.stop_reason == "max_tokens"


def test_backend_errors_raise_the_sdks_exceptions(anthropic_client, backend):
    with pytest.raises(anthropic.RateLimitError) as caught:
        anthropic_client.messages.create(
            model=MODEL, max_tokens=10, messages=user("[[status:429]]")
        )
    assert caught.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.BadRequestError) as bad:
        anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"


def test_a_stream_that_breaks_raises_in_the_sdk(anthropic_client, backend):
    with (
        pytest.raises(anthropic.APIStatusError, match="fake mid-stream error"),
        anthropic_client.messages.stream(
            model=MODEL, max_tokens=100, messages=user("a b c d [[error-event]]")
        ) as stream,
    ):
        stream.get_final_message()


def test_metrics_and_the_access_line_cover_the_endpoint(anthropic_client, proxy, backend):
    with anthropic_client.messages.stream(
        model=MODEL, max_tokens=100, messages=user("count me")
    ) as stream:
        stream.get_final_message()
    families = {
        family.name: family
        for family in text_string_to_metric_families(httpx.get(proxy.metrics_url).text)
    }

    def total(name: str, **labels: str) -> float:
        return sum(
            sample.value
            for sample in families[name].samples
            if all(sample.labels.get(key) == value for key, value in labels.items())
            and not sample.name.endswith(("_bucket", "_created", "_sum"))
        )

    endpoint = {"endpoint": "/v1/messages", "model": MODEL}
    assert total("proxy_time_to_first_token_seconds", **endpoint) >= 1
    assert total("proxy_completion_tokens", **endpoint) >= 3
    assert total("proxy_stream_outcomes", endpoint="/v1/messages", outcome="completed") >= 1
    access = [
        json.loads(line)
        for line in proxy.logs().splitlines()
        if '"gunicorn.access"' in line and '"/v1/messages"' in line
    ]
    assert access
    assert access[-1]["model"] == MODEL
    assert access[-1]["completion_tokens"] >= 3
