"""A validated Anthropic Messages request -> an OpenAI chat completions body.

What the conversion has to get right (docs/messages-api.md has the whole mapping):
- `tool_result` blocks become `role: tool` messages placed right after the assistant message
  that made the calls, before the rest of the user's turn; their images, which a tool message
  cannot carry, follow in a user message;
- tool-call ids survive the round trip: the `toolu_` prefix the client sees is taken off again
  here, so the backend gets back exactly the ids it made;
- tool arguments keep their key order (the backend's prefix cache depends on the bytes);
- Claude Code's first system block is a billing header whose text changes on every request:
  at the very start of the prompt it would defeat the backend's prefix cache, so it is dropped;
- thinking blocks and their signatures in the history are accepted and not sent (as Ollama's
  own chat does with `thinking`): strict servers reject unknown message fields.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import BadRequest
from ...flavours import Flavour
from ..chat_request import effort_think, function_tool, new_id, output_limit, place_system_text
from ..images import InvalidImage, to_data_uri
from ..limits import MAX_BLOCKS, MAX_TOOL_CALLS
from ..ollama.messages import sanitize_tools
from ..ollama.options import sampling_params
from ..ollama.request_types import Think
from ..ollama.to_backend import (
    Target,
    add_prefill_flags,
    response_format,
    stream_fields,
    thinking_params,
)
from .request_types import MessagesRequest

CLIENT_ID_PREFIX = "toolu_"
BILLING_HEADER = "x-anthropic-billing-header:"
# Block types a history may carry that have no chat completions equivalent: hosted tools' calls
# and results, thinking (see the module's docstring) and newer features. Accepted, not sent.
_IGNORED_BLOCKS = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "search_result",
        "container_upload",
        "tool_reference",
    }
)


def client_call_id(backend_id: str) -> str:
    """The id a client sees for a backend's tool call (`toolu_` and the backend's own id)."""
    return CLIENT_ID_PREFIX + backend_id if backend_id else new_id(CLIENT_ID_PREFIX)


def backend_call_id(client_id: str) -> str:
    """The inverse of client_call_id, applied to `tool_use.id` and `tool_use_id` alike."""
    return client_id.removeprefix(CLIENT_ID_PREFIX) or client_id


def conversation(
    request: MessagesRequest, flavour: Flavour
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat messages and tools of a request (also what count_tokens counts)."""
    messages: list[dict[str, Any]] = []
    system = _system_text(request.system)
    if system:
        messages.append({"role": "system", "content": system})
    names: dict[str, str] = {}  # backend call id -> tool name, of the latest assistant turn
    for index, message in enumerate(request.messages):
        if not isinstance(message, dict):
            raise _bad(index, "must be an object")
        role = message.get("role")
        blocks = _blocks(index, message.get("content"))
        if role == "user":
            messages.extend(_user_turn(index, blocks, names, flavour))
        elif role == "assistant":
            turn, names = _assistant_turn(index, blocks)
            messages.append(turn)
        elif role == "system":  # Claude Code's reminders after the user's turn
            text = "\n".join(_text_of(index, block) for block in blocks if block["type"] == "text")
            messages.append({"role": "system", "content": text})
        else:
            raise _bad(index, f"role must be 'user' or 'assistant', got {role!r}")
    return place_system_text(messages), _tools(request.tools)


def chat_body(
    request: MessagesRequest, target: Target, *, stream: bool, context_length: int | None = None
) -> dict[str, Any]:
    flavour = target.flavour
    messages, tools = conversation(request, flavour)
    body: dict[str, Any] = {"model": target.backend_model, "messages": messages}
    options: dict[str, Any] = output_limit(request.max_tokens, messages, tools, context_length)
    for key in ("temperature", "top_p", "top_k"):
        value = getattr(request, key)
        if value is not None:
            options[key] = value
    stops = [stop for stop in request.stop_sequences if stop]
    if stops:
        options["stop"] = stops
    body.update(sampling_params(options, flavour))
    if tools:  # never an empty list: OpenAI and vLLM reject it
        body["tools"] = tools
        body.update(_tool_choice(request.tool_choice))
    think = thinking_of(request)
    if think is not None:
        body.update(thinking_params(think, target))
    schema = _output_schema(request.output_config)
    if schema is not None:
        body["response_format"] = response_format(schema, flavour)
    add_prefill_flags(body, flavour)
    stream_fields(body, stream)
    return flavour.adapt_chat_body(body)


def thinking_of(request: MessagesRequest) -> Think:
    """`thinking` and `output_config.effort` as Ollama's `think`: disabled is off; an effort is
    a level; enabled (its budget has no equivalent) is on; adaptive is the model's default."""
    kind = (request.thinking or {}).get("type")
    if kind == "disabled":
        return False
    effort = (request.output_config or {}).get("effort")
    if effort:
        return effort_think(effort)
    return True if kind == "enabled" else None


def _output_schema(config: Any) -> Any:
    fmt = config.get("format") if isinstance(config, dict) else None
    return fmt.get("schema") if isinstance(fmt, dict) else None


def _bad(index: int, problem: str) -> BadRequest:
    return BadRequest(f"messages.{index}: {problem}")


def _system_text(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    texts = []
    for position, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise BadRequest(f"system.{position}: only text blocks are allowed")
        text = block.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"system.{position}.text: must be a string")
        if not text.startswith(BILLING_HEADER):
            texts.append(text)
    return "\n\n".join(texts)


def _blocks(index: int, content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(index, "content must be a string or a list of content blocks")
    if len(content) > MAX_BLOCKS:
        raise _bad(index, f"at most {MAX_BLOCKS} content blocks are allowed")
    for position, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _bad(index, f"content.{position} must be an object with a type")
    return content


def _text_of(index: int, block: dict[str, Any]) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(index, "a text block's text must be a string")
    return text


def _image_part(index: int, block: dict[str, Any], flavour: Flavour) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        try:
            url = to_data_uri(source.get("data"), webp=flavour.webp)  # type: ignore[union-attr]
        except InvalidImage as exc:
            raise _bad(index, f"image {exc}") from None
    elif kind == "url" and isinstance(source.get("url"), str):  # type: ignore[union-attr]
        url = source["url"]  # type: ignore[index]
    else:
        raise _bad(index, f"image source type {kind!r} is not supported (base64 or url)")
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(index: int, block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    raise _bad(index, "only plain-text documents are supported (no PDF or file sources)")


def _user_turn(
    index: int, blocks: list[dict[str, Any]], names: dict[str, str], flavour: Flavour
) -> list[dict[str, Any]]:
    """Tool results first (they must follow the calls), then the user's own message."""
    results: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(index, block)})
        elif kind == "image":
            parts.append(_image_part(index, block, flavour))
        elif kind == "document":
            parts.append(_document_part(index, block))
        elif kind == "tool_result":
            results.append(_tool_result(index, block, names, images, flavour))
        elif kind not in _IGNORED_BLOCKS:
            raise _bad(index, f"content block type {kind!r} is not supported")
    turn = results
    user_parts = images + parts
    if user_parts:
        turn.append({"role": "user", "content": _collapsed(user_parts)})
    return turn


def _collapsed(parts: list[dict[str, Any]]) -> Any:
    """Text-only content as one string: chat templates handle strings best."""
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _tool_result(
    index: int,
    block: dict[str, Any],
    names: dict[str, str],
    images: list[dict[str, Any]],
    flavour: Flavour,
) -> dict[str, Any]:
    client_id = block.get("tool_use_id")
    if not isinstance(client_id, str) or not client_id:
        raise _bad(index, "tool_result.tool_use_id is required")
    content = block.get("content")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for inner in _blocks(index, content):
            if inner["type"] == "text":
                texts.append(_text_of(index, inner))
            elif inner["type"] == "image":  # a tool message carries text only
                images.append(_image_part(index, inner, flavour))
    elif content is not None:
        raise _bad(index, "tool_result.content must be a string or a list of blocks")
    call_id = backend_call_id(client_id)
    result: dict[str, Any] = {"role": "tool", "tool_call_id": call_id, "content": "\n".join(texts)}
    if flavour.tool_result_name and call_id in names:
        result["name"] = names[call_id]
    return result


def _assistant_turn(
    index: int, blocks: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block["type"]
        if kind == "text":
            texts.append(_text_of(index, block))
        elif kind == "tool_use":
            calls.append(_tool_call(index, block))
        elif kind not in _IGNORED_BLOCKS:
            raise _bad(index, f"content block type {kind!r} is not supported")
    if len(calls) > MAX_TOOL_CALLS:
        raise _bad(index, f"at most {MAX_TOOL_CALLS} tool calls are allowed")
    turn: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if calls:
        turn["tool_calls"] = calls
        if not texts:
            turn["content"] = None  # OpenAI's form for a message that only calls tools
    return turn, {call["id"]: call["function"]["name"] for call in calls}


def _tool_call(index: int, block: dict[str, Any]) -> dict[str, Any]:
    client_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(client_id, str) or not client_id:
        raise _bad(index, "tool_use.id is required")
    if not isinstance(name, str) or not name:
        raise _bad(index, "tool_use.name is required")
    if not isinstance(arguments, dict):
        raise _bad(index, "tool_use.input must be an object")
    # The client's key order, kept: the backend's prefix cache compares bytes.
    encoded = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return {
        "id": backend_call_id(client_id),
        "type": "function",
        "function": {"name": name, "arguments": encoded},
    }


def _tools(tools: Any) -> list[dict[str, Any]]:
    functions = []
    for position, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools.{position}: must be an object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise BadRequest(
                f"tools.{position}: tool type {kind!r} is not supported: server tools (web "
                "search, code execution...) do not run here; declare a custom tool with a name "
                "and an input_schema instead"
            )
        # cache_control, defer_loading, input_examples...: Anthropic's own, never forwarded.
        functions.append(function_tool(f"tools.{position}", tool, "input_schema"))
    return sanitize_tools(functions)


def _tool_choice(choice: Any) -> dict[str, Any]:
    if not choice:
        return {}
    kind = choice["type"]
    fields: dict[str, Any] = {}
    if kind == "tool":
        fields["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        fields["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") is True:
        fields["parallel_tool_calls"] = False
    return fields
