"""A validated OpenAI Responses request -> an OpenAI chat completions body.

`input` items become chat messages (docs/responses-api.md has the whole mapping):
- `developer` is the system role under another name; `instructions` is the first system text;
- `function_call` items join the assistant message before them (consecutive calls make one
  assistant message), `function_call_output` items become `role: tool` messages with the same
  `call_id`, unchanged, and their images follow in a user message (a tool message carries text
  only);
- `reasoning` items are accepted and not sent back (strict servers reject reasoning fields on
  messages); item types this proxy does not know (clients keep inventing them) are skipped;
  `item_reference` needs a stored response and is refused;
- flat Responses function tools become nested chat tools; a `namespace` tool's functions become
  `<namespace>__<name>` (a dot is not allowed in a function name) and are split back in the
  answer; built-in tools (web search, file search...) run on OpenAI's servers only and are left
  out, so Codex, which always offers web search, still works.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ...errors import BadRequest
from ...flavours import Flavour
from ..chat_request import effort_think, function_tool, output_limit, place_system_text
from ..images import InvalidImage, to_data_uri
from ..limits import MAX_BLOCKS, MAX_TOOL_CALLS, MAX_TOOLS
from ..ollama.messages import OpenCalls, sanitize_tools
from ..ollama.options import sampling_params
from ..ollama.to_backend import Target, response_format, stream_fields, thinking_params
from .request_types import ResponsesRequest

log = logging.getLogger(__name__)

NAMESPACE_SEPARATOR = "__"
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})
_noted: set[str] = set()
# The kinds are the client's words: a few dozen is every kind real clients send; beyond that,
# an attacker's made-up kinds would fill the set and the log for ever (40,000 in one request
# kept 19 MB and wrote 36 MB of log lines).
_MAX_NOTED = 64
_MAX_KIND_CHARS = 64


def conversation(
    request: ResponsesRequest, flavour: Flavour
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat messages and the chat tools of a request."""
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    items = request.input
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    open_calls = OpenCalls([])
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(index, "must be an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(index, item, flavour))
        elif kind == "function_call":
            call = _function_call(index, item)
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant":
                last = {"role": "assistant", "content": None}
                messages.append(last)
            if "tool_calls" not in last:  # the first call of this assistant message
                last["tool_calls"] = []
                open_calls = OpenCalls([])
            if len(last["tool_calls"]) >= MAX_TOOL_CALLS:
                raise _bad(index, f"at most {MAX_TOOL_CALLS} function calls in a row are allowed")
            # Added to the open calls, not rebuilt from the message's calls: a rebuild per call
            # is quadratic in a run of calls (8,000 in a row took 7 s of CPU).
            last["tool_calls"].append(call)
            open_calls.add(call)
        elif kind == "function_call_output":
            messages.extend(_function_output(index, item, open_calls, flavour))
        elif kind == "item_reference":
            raise _bad(index, "item_reference needs a stored response: this server stores none")
        else:  # reasoning, and item types newer than this proxy
            _note_skipped(kind, "items")
    return place_system_text(messages), tools_of(request)[0]


def chat_body(
    request: ResponsesRequest, target: Target, *, stream: bool, context_length: int | None = None
) -> dict[str, Any]:
    flavour = target.flavour
    messages, tools = conversation(request, flavour)
    body: dict[str, Any] = {"model": target.backend_model, "messages": messages}
    options: dict[str, Any] = output_limit(
        request.max_output_tokens, messages, tools, context_length
    )
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.top_p is not None:
        options["top_p"] = request.top_p
    body.update(sampling_params(options, flavour))
    choice, tools = _tool_choice(request.tool_choice, tools)
    if tools:  # never an empty list: OpenAI and vLLM reject it
        body["tools"] = tools
        body.update(choice)
        if request.parallel_tool_calls is False:
            body["parallel_tool_calls"] = False
    effort = (request.reasoning or {}).get("effort")
    if effort:
        body.update(thinking_params(effort_think(effort), target))
    fmt = (request.text or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        body["response_format"] = response_format("json", flavour)
    elif fmt.get("type") == "json_schema":
        body["response_format"] = response_format(
            fmt["schema"], flavour, fmt.get("name"), fmt.get("strict")
        )
    stream_fields(body, stream)
    return flavour.adapt_chat_body(body)


def tools_of(request: ResponsesRequest) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """The chat tools, and for each flattened namespace function its (namespace, name)."""
    functions: list[dict[str, Any]] = []
    namespaces: dict[str, tuple[str, str]] = {}
    for position, tool in enumerate(request.tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            functions.append(function_tool(f"tools.{position}", tool, "parameters"))
        elif kind == "namespace":
            namespace = tool.get("name")
            members = tool.get("tools")
            if not isinstance(namespace, str) or not isinstance(members, list):
                raise BadRequest(f"tools.{position}: a namespace needs a name and tools")
            # The schema bounds `tools`; namespaces must not multiply the functions past it.
            if len(functions) + len(members) > MAX_TOOLS:
                raise BadRequest(f"tools.{position}: at most {MAX_TOOLS} functions are allowed")
            for inner, member in enumerate(members):
                where = f"tools.{position}.tools.{inner}"
                if not isinstance(member, dict):
                    raise BadRequest(f"{where}: must be an object")
                function = function_tool(where, member, "parameters")
                flat = f"{namespace}{NAMESPACE_SEPARATOR}{function['function']['name']}"
                namespaces[flat] = (namespace, function["function"]["name"])
                function["function"]["name"] = flat
                functions.append(function)
        elif not isinstance(kind, str):
            raise BadRequest(f"tools.{position}: must be an object with a type")
        else:
            _note_skipped(kind, "tools")
    return sanitize_tools(functions), namespaces


def _bad(index: int, problem: str) -> BadRequest:
    return BadRequest(f"input.{index}: {problem}")


def _note_skipped(kind: Any, what: str) -> None:
    # Said once per process and kind: operators learn what their clients send that goes unused.
    name = kind[:_MAX_KIND_CHARS] if isinstance(kind, str) else "untyped"
    key = f"{name} {what}"
    if key not in _noted and len(_noted) < _MAX_NOTED:
        _noted.add(key)
        log.info("%s %s of Responses requests are not sent to the backend", name, what)


def _parts(index: int, content: Any) -> list[Any]:
    if not isinstance(content, list):
        raise _bad(index, "content must be a string or a list of parts")
    if len(content) > MAX_BLOCKS:
        raise _bad(index, f"at most {MAX_BLOCKS} content parts are allowed")
    return content


def _part(index: int, part: Any, flavour: Flavour) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(kind, str):  # a list or an object would not even hash
        raise _bad(index, "a content part must be an object with a type")
    if kind in _TEXT_PARTS or kind == "refusal":
        text = part.get("refusal" if kind == "refusal" else "text")
        if not isinstance(text, str):
            raise _bad(index, f"a {kind} part needs its text")
        return {"type": "text", "text": text}
    if kind == "input_image":
        return _image(index, part.get("image_url"), flavour)
    if kind == "input_file":
        raise _bad(index, "file inputs are not supported")
    raise _bad(index, f"content part type {kind!r} is not supported")


def _image(index: int, url: Any, flavour: Flavour) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise _bad(index, "input_image needs an image_url (a file_id needs a file store)")
    if url.startswith("data:"):
        try:
            url = to_data_uri(url, webp=flavour.webp)
        except InvalidImage as exc:
            raise _bad(index, f"input_image {exc}") from None
    return {"type": "image_url", "image_url": {"url": url}}


def _content(parts: list[dict[str, Any]]) -> Any:
    """Text-only content as one string: chat templates handle strings best."""
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _message(index: int, item: Mapping[str, Any], flavour: Flavour) -> dict[str, Any]:
    given = item.get("role")
    role = _ROLES.get(given) if isinstance(given, str) else None
    if role is None:
        raise _bad(
            index, f"role must be user, assistant, system or developer, got {item.get('role')!r}"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = [_part(index, part, flavour) for part in _parts(index, content)]
    if role != "user" and any(part["type"] != "text" for part in parts):
        raise _bad(index, f"images are allowed in user messages only, not {item.get('role')}")
    return {"role": role, "content": _content(parts)}


def _function_call(index: int, item: Mapping[str, Any]) -> dict[str, Any]:
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not isinstance(call_id, str) or not call_id:
        raise _bad(index, "function_call.call_id is required")
    if not isinstance(name, str) or not name:
        raise _bad(index, "function_call.name is required")
    if not isinstance(arguments, str):
        raise _bad(index, "function_call.arguments must be a JSON string")
    namespace = item.get("namespace")
    if isinstance(namespace, str) and namespace:
        name = f"{namespace}{NAMESPACE_SEPARATOR}{name}"
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _function_output(
    index: int, item: Mapping[str, Any], open_calls: OpenCalls, flavour: Flavour
) -> list[dict[str, Any]]:
    given = item.get("call_id")
    # Some clients leave call_id out: the result answers the next call still open.
    call_id = open_calls.answer(given if isinstance(given, str) else None, None)
    if call_id is None:
        raise _bad(index, "function_call_output.call_id is required")
    output = item.get("output")
    images: list[dict[str, Any]] = []
    if isinstance(output, str):
        text = output
    else:
        parts = [_part(index, part, flavour) for part in _parts(index, output)]
        text = "".join(part["text"] for part in parts if part["type"] == "text")
        images = [part for part in parts if part["type"] != "text"]
    turn: list[dict[str, Any]] = [{"role": "tool", "tool_call_id": call_id, "content": text}]
    if images:
        turn.append({"role": "user", "content": images})
    return turn


def _tool_choice(
    choice: Any, tools: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chat `tool_choice`, and the tools it leaves offered."""
    if isinstance(choice, str):
        return {"tool_choice": choice}, tools
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        return {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}, tools
    if kind == "allowed_tools":  # a subset, chosen from as `mode` says
        # The schema checked `tools` (a list of objects) and `mode`.
        allowed = {tool.get("name") for tool in choice["tools"]}
        kept = [tool for tool in tools if tool["function"]["name"] in allowed]
        return {"tool_choice": choice.get("mode") or "auto"}, kept
    return {}, tools
