"""Validated Ollama requests -> OpenAI request bodies.

`/api/chat` and plain `/api/generate` go to `/v1/chat/completions`: Ollama renders a generate
prompt through the model's chat template exactly like a one-turn chat, and only the backend
knows that template. `raw` prompts and `suffix` (fill-in-the-middle) need the untemplated
`/v1/completions` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import BadRequest
from ...flavours import Flavour, SchemaForm, ThinkStyle
from ..images import InvalidImage, to_data_uri
from .messages import sanitize_tools, to_openai_messages
from .options import sampling_params
from .request_types import ChatRequest, Format, GenerateRequest, Generation, Think

CHAT_PATH = "/chat/completions"
COMPLETIONS_PATH = "/completions"

_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Target:
    """Where a request goes and how the backend speaks: resolved once per request."""

    backend_model: str
    flavour: Flavour
    # THINKING_CONTROL when set, else the flavour's own way.
    think_style: ThinkStyle


def chat_body(request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
    messages = to_openai_messages(request.messages, target.flavour)
    body = _generation_body(request, target, messages, stream=stream)
    tools = sanitize_tools(request.tools) if request.tools else []
    if tools:  # OpenAI and vLLM reject an empty list, and the Python SDK always sends one
        body["tools"] = tools
    add_prefill_flags(body, target.flavour)
    return target.flavour.adapt_chat_body(body)


def add_prefill_flags(body: dict[str, Any], flavour: Flavour) -> None:
    """A trailing assistant message is continued (prefill), in Ollama and in Anthropic's API
    alike; vLLM needs to be told."""
    messages = body["messages"]
    last = messages[-1] if messages else None
    if flavour.prefill_flags and last and last["role"] == "assistant" and "tool_calls" not in last:
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False


def generate_chat_body(
    request: GenerateRequest, target: Target, turns: list[dict[str, str]], *, stream: bool
) -> dict[str, Any]:
    """A templated generate as the chat Ollama itself would render: `turns` (context.py's
    conversation) with the request's images on the last, the prompt."""
    messages: list[dict[str, Any]] = [dict(turn) for turn in turns]
    content: Any = request.prompt
    if request.images:
        content = [{"type": "text", "text": content}] if content else []
        for position, image in enumerate(request.images):
            try:
                url = to_data_uri(image, webp=target.flavour.webp)
            except InvalidImage as exc:
                raise BadRequest(f"invalid image at images[{position}]: {exc}") from None
            content.append({"type": "image_url", "image_url": {"url": url}})
    messages[-1]["content"] = content
    body = _generation_body(request, target, messages, stream=stream)
    return target.flavour.adapt_chat_body(body)


def completions_body(
    request: GenerateRequest, target: Target, *, stream: bool, default_max_tokens: int
) -> dict[str, Any]:
    """Raw and fill-in-the-middle generates, for `/v1/completions`."""
    if request.images:
        raise BadRequest("images are not supported with raw or suffix prompts on this backend")
    body: dict[str, Any] = {"model": target.backend_model, "prompt": request.prompt}
    if request.suffix:
        body["suffix"] = request.suffix
    body.update(sampling_params(request.options, target.flavour, completions=True))
    # Legacy completions stop after 16 tokens unless told otherwise (OpenAI and vLLM).
    body.setdefault("max_tokens", default_max_tokens)
    if request.logprobs:
        body["logprobs"] = request.top_logprobs
    if request.format is not None:
        body["response_format"] = response_format(request.format, target.flavour)
    stream_fields(body, stream)
    return body


def _generation_body(
    request: Generation, target: Target, messages: list[dict[str, Any]], *, stream: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": target.backend_model, "messages": messages}
    body.update(sampling_params(request.options, target.flavour))
    if request.format is not None:
        body["response_format"] = response_format(request.format, target.flavour)
    if request.think is not None:
        body.update(thinking_params(request.think, target))
    if request.logprobs:
        body["logprobs"] = True
        if request.top_logprobs:
            body["top_logprobs"] = request.top_logprobs
    stream_fields(body, stream)
    return body


def stream_fields(body: dict[str, Any], stream: bool) -> None:
    if stream:
        # Token counts for the final Ollama chunk; only valid with stream: true (vLLM 400s).
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}


def response_format(
    fmt: Format, flavour: Flavour, name: str | None = None, strict: bool | None = None
) -> dict[str, Any]:
    """`"json"` or a schema, in the backend's form; `name` and `strict` as a client gave them
    (Responses' `text.format`), else the schema's title names it."""
    if not isinstance(fmt, Mapping):
        return {"type": "json_object"}
    schema = dict(fmt)
    if flavour.schema_form is SchemaForm.SCHEMA_FIELD:
        return {"type": "json_object", "schema": schema}
    # OpenAI and vLLM require a name; a schema's title is the natural one when it has one.
    title = name or schema.get("title")
    label = _SCHEMA_NAME.sub("_", title)[:64] if isinstance(title, str) and title else "schema"
    json_schema: dict[str, Any] = {"name": label, "schema": schema}
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}


def thinking_params(think: Think, target: Target) -> dict[str, Any]:
    """`think` in the dialect of the backend (docs/protocol.md, "Thinking")."""
    style = target.think_style
    level = think if isinstance(think, str) else None
    if style is ThinkStyle.CHAT_TEMPLATE_KWARGS:
        enabled = think is not False
        # Qwen3/GLM templates read enable_thinking, DeepSeek/Granite read thinking; templates
        # ignore the keys they do not declare, so both are safe.
        params: dict[str, Any] = {
            "chat_template_kwargs": {"enable_thinking": enabled, "thinking": enabled}
        }
        if level:
            params["reasoning_effort"] = level
        elif think is False and target.flavour.think_off_by_effort:
            params["reasoning_effort"] = "none"
        return params
    if style is ThinkStyle.REASONING_EFFORT:
        if think is False:
            return {"reasoning_effort": "none"}
        return {"reasoning_effort": "high" if level == "max" else level} if level else {}
    if style is ThinkStyle.OPENROUTER:
        if think is False:
            return {"reasoning": {"enabled": False}}
        return (
            {"reasoning": {"effort": "xhigh" if level == "max" else level}}
            if level
            else {"reasoning": {"enabled": True}}
        )
    return {}
