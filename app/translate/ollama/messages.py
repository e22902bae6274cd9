"""Ollama chat messages and tools -> OpenAI messages and tools, validated in the same pass.

The differences that break real clients (docs/protocol.md, "Tool calls" and "Images"):
- tool-call arguments are JSON objects in Ollama and JSON strings in OpenAI;
- Ollama clients (the Python SDK above all) drop tool-call ids, but an OpenAI backend needs every
  `role: tool` message to name the call it answers: ids are assigned deterministically here and
  tool results matched to them by `tool_name` and order;
- images are raw base64 beside the text in Ollama, `image_url` content parts in OpenAI.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Sequence
from typing import Any

from ...errors import BadRequest
from ...flavours import Flavour
from ..images import InvalidImage, to_data_uri
from ..limits import MAX_IMAGES, MAX_TOOL_CALLS

_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def tool_call_id(message_index: int, call_index: int, name: str) -> str:
    """Same history, same ids: the backend's prefix cache stays warm across turns. Exactly nine
    alphanumerics, the only form Mistral's tokenizer accepts (and everyone else does too)."""
    digest = hashlib.blake2b(f"{message_index}:{call_index}:{name}".encode(), digest_size=8)
    number = int.from_bytes(digest.digest(), "big")
    chars = []
    for _ in range(9):
        number, rest = divmod(number, 62)
        chars.append(_ID_ALPHABET[rest])
    return "".join(chars)


def _bad(index: int, problem: str) -> BadRequest:
    return BadRequest(f"invalid message at messages[{index}]: {problem}")


class OpenCalls:
    """The calls of the latest assistant message that no tool result has answered yet.

    Each lookup is O(1): a conversation with thousands of calls and results costs linear
    time, not quadratic (one result scanning every open call would stall the worker).
    """

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self._names: dict[str, str] = {}  # id -> name, in call order: the open calls
        self._by_name: dict[str, deque[str]] = {}  # name -> ids in call order (may be stale)
        for call in calls:
            self.add(call)

    def add(self, call: dict[str, Any]) -> None:
        """One more call of the same assistant message (a repeated id counts once)."""
        call_id, name = call["id"], call["function"]["name"]
        if call_id not in self._names:
            self._names[call_id] = name
            self._by_name.setdefault(name, deque()).append(call_id)

    def answer(self, given: str | None, name: Any) -> str | None:
        """The id a result answers (consumed), or None when no open call fits."""
        if given:
            self._names.pop(given, None)
            return given
        ids = self._by_name.get(name) if isinstance(name, str) else None
        while ids:
            call_id = ids.popleft()
            if self._names.pop(call_id, None) is not None:
                return call_id
        if self._names:
            call_id = next(iter(self._names))
            del self._names[call_id]
            return call_id
        return None


def to_openai_messages(messages: Sequence[Any], flavour: Flavour) -> list[dict[str, Any]]:
    converted: list[dict[str, Any]] = []
    open_calls = OpenCalls([])
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(index, "must be an object")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise _bad(index, "role is required and must be a string")
        role = role.lower()
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise _bad(index, "content must be a string")
        out: dict[str, Any] = {"role": role, "content": content or ""}
        images = message.get("images")
        if images:
            out["content"] = _with_images(index, content or "", images, flavour.webp)
        if role == "assistant":
            calls = _tool_calls(index, message.get("tool_calls"))
            if calls:
                out["tool_calls"] = calls
                if not content and not images:
                    out["content"] = None  # OpenAI's form for a message that only calls tools
            open_calls = OpenCalls(calls)
        elif role == "tool":
            name = message.get("tool_name")
            given = message.get("tool_call_id")
            call_id = open_calls.answer(given if isinstance(given, str) else None, name)
            # A result with no call before it: the backend will say what it thinks of that.
            out["tool_call_id"] = call_id or tool_call_id(
                index, 0, name if isinstance(name, str) else "tool"
            )
            if isinstance(name, str) and name and flavour.tool_result_name:
                out["name"] = name
        converted.append(out)
    return converted


def _with_images(index: int, text: str, images: Any, webp: bool) -> list[dict[str, Any]]:
    if not isinstance(images, list):
        raise _bad(index, "images must be a list of base64 strings")
    if len(images) > MAX_IMAGES:
        raise _bad(index, f"at most {MAX_IMAGES} images are allowed")
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for position, image in enumerate(images):
        try:
            url = to_data_uri(image, webp=webp)
            parts.append({"type": "image_url", "image_url": {"url": url}})
        except InvalidImage as exc:
            raise _bad(index, f"images[{position}] {exc}") from None
    return parts


def _tool_calls(index: int, calls: Any) -> list[dict[str, Any]]:
    if not calls:
        return []
    if not isinstance(calls, list):
        raise _bad(index, "tool_calls must be a list")
    if len(calls) > MAX_TOOL_CALLS:
        raise _bad(index, f"at most {MAX_TOOL_CALLS} tool calls are allowed")
    converted = []
    for position, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _bad(index, f"tool_calls[{position}].function must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(index, f"tool_calls[{position}].function.name is required")
        arguments = function.get("arguments")
        if arguments is None:
            arguments = "{}"
        elif isinstance(arguments, dict):
            arguments = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
        elif not isinstance(arguments, str):  # a string: a lenient client already encoded it
            raise _bad(index, f"tool_calls[{position}].function.arguments must be an object")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = tool_call_id(index, position, name)
        converted.append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )
    return converted


def sanitize_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI tool definitions from Ollama's (the same shape, minus Go and SDK quirks)."""
    sanitized = []
    for position, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            raise BadRequest(f"invalid tool at tools[{position}]: function must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"invalid tool at tools[{position}]: function.name is required")
        out: dict[str, Any] = {"name": name}
        if isinstance(function.get("description"), str):
            out["description"] = function["description"]
        out["parameters"] = _parameters(function.get("parameters"))
        if isinstance(function.get("strict"), bool):
            out["strict"] = function["strict"]
        sanitized.append({"type": "function", "function": out})
    return sanitized


def _parameters(parameters: Any) -> dict[str, Any]:
    # Go marshals absent `properties` as null; strict backends want an object schema.
    if not isinstance(parameters, dict):
        return {"type": "object", "properties": {}}
    schema: dict[str, Any] = {"type": "object", **parameters}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        schema["properties"] = {}
    else:
        schema["properties"] = {key: _property(value) for key, value in properties.items()}
    return schema


def _property(schema: Any) -> Any:
    # The Python SDK turns `int | str` annotations into the non-schema "integer, string".
    if isinstance(schema, dict) and isinstance(schema.get("type"), str) and "," in schema["type"]:
        return {**schema, "type": [part.strip() for part in schema["type"].split(",")]}
    return schema
