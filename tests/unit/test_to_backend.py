"""The exact OpenAI bodies sent for Ollama chat and generate requests."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from app.errors import BadRequest
from app.flavours import ThinkStyle, flavour
from app.ollama.schemas import chat_schema, generate_schema
from app.translate.ollama.context import conversation, decode
from app.translate.ollama.to_backend import (
    Target,
    chat_body,
    completions_body,
    generate_chat_body,
    thinking_params,
)
from app.validation import load
from tests.samples import WEATHER_TOOL

USER = [{"role": "user", "content": "Weather in Tokyo?"}]


def target(model: str, dialect: str = "generic", style: str | None = None) -> Target:
    """A Target on a registered flavour; THINKING_CONTROL `style` when given."""
    chosen = flavour(dialect)
    return Target(model, chosen, ThinkStyle(style) if style else chosen.think_style)


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(16)).decode()


def chat(to: Target | None = None, *, stream: bool = True, **fields: Any) -> dict[str, Any]:
    request = load(chat_schema, {"model": "qwen3", "messages": USER, **fields})
    return chat_body(request, to or target("Qwen/Qwen3-8B"), stream=stream)


def generate(to: Target | None = None, *, stream: bool = True, **fields: Any) -> dict[str, Any]:
    request = load(generate_schema, {"model": "qwen3", **fields})
    turns = conversation(request.prompt, request.system, decode(request.context))
    return generate_chat_body(request, to or target("m"), turns, stream=stream)


def completions(*, stream: bool = False, flavour: str = "generic", **fields: Any) -> dict[str, Any]:
    request = load(generate_schema, {"model": "qwen3", "raw": True, **fields})
    return completions_body(request, target("m", flavour), stream=stream, default_max_tokens=4096)


def test_worked_example_turn_1_to_vllm() -> None:
    body = chat(target("Qwen/Qwen3-8B", "vllm"), tools=[WEATHER_TOOL], think=False)
    assert body == {
        "model": "Qwen/Qwen3-8B",
        "messages": USER,
        "tools": [WEATHER_TOOL],
        "stream": True,
        "stream_options": {"include_usage": True},
        "chat_template_kwargs": {"enable_thinking": False, "thinking": False},
    }


def test_python_sdk_defaults_send_a_minimal_body() -> None:
    # The SDK always sends "tools": [] and "stream": false; OpenAI and vLLM reject empty tools.
    assert chat(stream=False, tools=[], options={}) == {"model": "Qwen/Qwen3-8B", "messages": USER}


def test_options_become_sampling_fields() -> None:
    options = {"temperature": 0.2, "num_predict": 64, "seed": -1, "stop": ["\n"], "num_ctx": 8192}
    body = chat(target("m", "openai"), stream=False, options=options)
    assert body == {
        "model": "m",
        "messages": USER,
        "temperature": 0.2,
        "max_completion_tokens": 64,
        "stop": ["\n"],
    }


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_json_format_becomes_json_object() -> None:
    assert chat(format="json")["response_format"] == {"type": "json_object"}
    assert generate(prompt="hi", format="json")["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("title", "name"),
    [
        (None, "schema"),
        ("", "schema"),
        ("Answer", "Answer"),
        ("My Answer (v2)!", "My_Answer__v2__"),
    ],
)
def test_schema_format_becomes_a_named_json_schema(title: str | None, name: str) -> None:
    schema = SCHEMA if title is None else {**SCHEMA, "title": title}
    expected = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    assert chat(format=schema)["response_format"] == expected
    assert generate(prompt="hi", format=schema)["response_format"] == expected


def test_schema_names_are_cut_to_64_characters() -> None:
    name = chat(format={**SCHEMA, "title": "x" * 100})["response_format"]["json_schema"]["name"]
    assert name == "x" * 64


@pytest.mark.parametrize("fmt", ["", None])
def test_no_format_sends_no_response_format(fmt: Any) -> None:
    assert "response_format" not in chat(format=fmt)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"logprobs": True, "top_logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
        ({"logprobs": True}, {"logprobs": True}),
        ({"logprobs": False, "top_logprobs": 5}, {}),
        ({}, {}),
    ],
)
def test_logprobs_fields(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = chat(stream=False, **fields)
    assert {k: body[k] for k in ("logprobs", "top_logprobs") if k in body} == expected


def test_stream_options_only_when_streaming() -> None:
    assert chat(stream=True)["stream_options"] == {"include_usage": True}
    body = chat(stream=False)
    assert "stream" not in body
    assert "stream_options" not in body


ON = {"chat_template_kwargs": {"enable_thinking": True, "thinking": True}}
OFF = {"chat_template_kwargs": {"enable_thinking": False, "thinking": False}}


@pytest.mark.parametrize(
    ("flavour", "think", "expected"),
    [
        ("generic", True, {}),
        ("generic", False, {}),
        ("generic", "high", {}),
        ("vllm", True, ON),
        ("vllm", False, OFF),
        ("vllm", "low", {**ON, "reasoning_effort": "low"}),
        ("vllm", "max", {**ON, "reasoning_effort": "max"}),
        ("llama-cpp-python", True, ON),
        ("llama-cpp-python", False, {**OFF, "reasoning_effort": "none"}),
        ("llama-cpp-python", "medium", {**ON, "reasoning_effort": "medium"}),
        ("openrouter", True, {"reasoning": {"enabled": True}}),
        ("openrouter", False, {"reasoning": {"enabled": False}}),
        ("openrouter", "low", {"reasoning": {"effort": "low"}}),
        ("openrouter", "max", {"reasoning": {"effort": "xhigh"}}),
        ("openai", True, {}),
        ("openai", False, {"reasoning_effort": "none"}),
        ("openai", "high", {"reasoning_effort": "high"}),
        ("openai", "max", {"reasoning_effort": "high"}),
    ],
)
def test_think_per_flavour(flavour: str, think: Any, expected: dict[str, Any]) -> None:
    assert thinking_params(think, target("m", flavour)) == expected
    body = chat(target("m", flavour), stream=False, think=think)
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == expected


@pytest.mark.parametrize(
    ("flavour", "style", "think", "expected"),
    [
        ("vllm", "none", True, {}),
        ("vllm", "none", False, {}),
        ("vllm", "reasoning_effort", "low", {"reasoning_effort": "low"}),
        ("vllm", "reasoning_effort", True, {}),
        ("generic", "chat_template_kwargs", False, OFF),
        ("openai", "chat_template_kwargs", "high", {**ON, "reasoning_effort": "high"}),
    ],
)
def test_thinking_control_overrides_the_flavour(
    flavour: str, style: str, think: Any, expected: dict[str, Any]
) -> None:
    assert thinking_params(think, target("m", flavour, style)) == expected


def test_no_think_sends_no_reasoning_fields() -> None:
    body = chat(target("m", "vllm"), stream=False)
    assert body == {"model": "m", "messages": USER}


PREFILL = [*USER, {"role": "assistant", "content": "The weather in Tokyo is"}]


@pytest.mark.parametrize(
    ("flavour", "messages", "prefill"),
    [
        ("vllm", PREFILL, True),
        ("vllm", USER, False),
        (
            "vllm",
            [*USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}],
            False,
        ),
        ("generic", PREFILL, False),
        ("llama-cpp-python", PREFILL, False),
    ],
)
def test_vllm_is_told_to_continue_a_trailing_assistant_message(
    flavour: str, messages: list[dict[str, Any]], prefill: bool
) -> None:
    body = chat(target("m", flavour), messages=messages)
    if prefill:
        assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)
    else:
        assert "continue_final_message" not in body
        assert "add_generation_prompt" not in body


def test_generate_is_a_one_turn_chat_with_the_system_prompt() -> None:
    body = generate(
        target("m", "vllm"),
        prompt="Why is the sky blue?",
        system="Be brief.",
        options={"top_k": 20},
    )
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why is the sky blue?"},
        ],
        "top_k": 20,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_generate_without_system_sends_only_the_prompt() -> None:
    assert generate(stream=False, prompt="hi") == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }


@pytest.mark.parametrize(
    ("prompt", "text_part"), [("Describe", [{"type": "text", "text": "Describe"}]), ("", [])]
)
def test_generate_images_become_image_parts(prompt: str, text_part: list[Any]) -> None:
    body = generate(stream=False, prompt=prompt, images=[PNG, "data:image/png;base64," + PNG])
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert body["messages"] == [{"role": "user", "content": [*text_part, image, image]}]


def test_generate_invalid_image_names_its_position() -> None:
    with pytest.raises(BadRequest) as caught:
        generate(prompt="x", images=[PNG, "***"])
    assert caught.value.message == "invalid image at images[1]: is not valid base64"


def test_raw_completions_body_always_has_max_tokens() -> None:
    assert completions(prompt="[INST] hi [/INST]") == {
        "model": "m",
        "prompt": "[INST] hi [/INST]",
        "max_tokens": 4096,
    }


@pytest.mark.parametrize(
    ("flavour", "num_predict", "max_tokens"),
    [("generic", 32, 32), ("openai", 32, 32), ("vllm", -1, 4096), ("vllm", 0, 4096)],
)
def test_completions_max_tokens(flavour: str, num_predict: int, max_tokens: int) -> None:
    body = completions(flavour=flavour, prompt="p", options={"num_predict": num_predict})
    assert body["max_tokens"] == max_tokens
    assert "max_completion_tokens" not in body


def test_completions_body_with_suffix_logprobs_format_and_stream() -> None:
    body = completions(
        stream=True,
        flavour="llama-cpp-python",
        raw=False,
        prompt="def add(a, b):\n",
        suffix="\n    return c\n",
        options={"temperature": 0, "repeat_penalty": 1.1, "stop": ["\n\n"]},
        logprobs=True,
        top_logprobs=2,
        format="json",
    )
    assert body == {
        "model": "m",
        "prompt": "def add(a, b):\n",
        "suffix": "\n    return c\n",
        "temperature": 0,
        "repeat_penalty": 1.1,
        "stop": ["\n\n"],
        "max_tokens": 4096,
        "logprobs": 2,
        "response_format": {"type": "json_object"},
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_completions_logprobs_without_top_is_zero_and_empty_suffix_is_omitted() -> None:
    body = completions(prompt="p", suffix="", logprobs=True)
    assert body["logprobs"] == 0
    assert "suffix" not in body


def test_completions_reject_images() -> None:
    with pytest.raises(BadRequest, match="images are not supported with raw or suffix prompts"):
        completions(prompt="p", images=[PNG])


def test_llama_cpp_python_gets_the_forms_it_accepts() -> None:
    history = [
        *USER,
        {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "get_weather"}}]},
        {"role": "tool", "content": "22°C", "tool_name": "get_weather"},
    ]
    body = chat(
        target("m", "llama-cpp-python"),
        stream=False,
        messages=history,
        tools=[WEATHER_TOOL],
        logprobs=True,
        format=SCHEMA,
    )
    assert body["messages"][1]["content"] == ""  # never null
    assert body["tool_choice"] == "auto"
    assert (body["logprobs"], body["top_logprobs"]) == (True, 1)
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    generated = generate(target("m", "llama-cpp-python"), prompt="hi", format=SCHEMA)
    assert generated["response_format"] == {"type": "json_object", "schema": SCHEMA}


@pytest.mark.parametrize(
    ("flavour", "content"),
    [
        ("generic", ""),
        ("vllm", None),
        ("llama-server", None),
        ("openai", None),
        ("openrouter", None),
    ],
)
def test_other_flavours_get_the_standard_forms(flavour: str, content: str | None) -> None:
    history = [*USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]
    body = chat(target("m", flavour), messages=history, tools=[WEATHER_TOOL], logprobs=True)
    assert body["messages"][1]["content"] == content
    assert "tool_choice" not in body
    assert "top_logprobs" not in body
