"""OpenAI Responses requests validated at the boundary into translate/responses/
request_types.py. Top-level fields are checked here; input items and tools in the pass that
converts them. What needs a server-side store is refused by name: this server keeps nothing,
so it cannot continue a stored response (nor can any other replica)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, pre_load, validate

from ..translate.limits import MAX_INPUT_ITEMS, MAX_TOOLS
from ..translate.responses.request_types import ResponsesRequest
from ..validation import (
    BoundedList,
    EffortObject,
    FrozenSchema,
    JsonObject,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
)

_TOOL_CHOICES = ("auto", "none", "required")
_FORMATS = ("text", "json_object", "json_schema")
_STATELESS = "this server is stateless: send the whole conversation in input"
# Fields that name stored state: any value is refused.
_NEED_STATE = {
    "previous_response_id": f"is not supported: {_STATELESS}",
    "conversation": f"is not supported: {_STATELESS}",
    "prompt": "is not supported: this server has no stored prompt templates",
}
# Switches whose `true` would need stored state.
_ONLY_FALSE = {
    "store": "true is not supported: this server stores no responses (send store: false)",
    "background": "true is not supported: responses are answered while the client waits",
}


class Input(fields.Field[Any]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError("must be a string or a list of items")
        if len(value) > MAX_INPUT_ITEMS:
            raise ValidationError(f"at most {MAX_INPUT_ITEMS} items are allowed")
        return value


class ToolChoice(fields.Field[Any]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value in _TOOL_CHOICES:
            return value
        if isinstance(value, dict) and value.get("type") == "function":
            if not isinstance(value.get("name"), str):
                raise ValidationError("a function tool choice needs the function's name")
            return value
        if isinstance(value, dict) and value.get("type") == "allowed_tools":
            return _allowed_tools(value)
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            return value
        raise ValidationError(f"must be one of {', '.join(_TOOL_CHOICES)} or an object")


def _allowed_tools(choice: dict[str, Any]) -> dict[str, Any]:
    """{"type": "allowed_tools", "mode": "auto" | "required", "tools": [{"type", "name"?}]}"""
    tools = choice.get("tools")
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise ValidationError(f"allowed_tools needs a list of at most {MAX_TOOLS} tools")
    # A function names itself; a built-in tool ({"type": "web_search"}) has no name.
    if not all(isinstance(tool, dict) and isinstance(tool.get("name", ""), str) for tool in tools):
        raise ValidationError("allowed_tools' tools must be objects, their names strings")
    if choice.get("mode") not in (None, "auto", "required"):
        raise ValidationError("allowed_tools' mode must be auto or required")
    return choice


class Metadata(JsonObject):
    """OpenAI's bounds: at most 16 pairs, keys of at most 64 characters, string values of at
    most 512 (the response echoes it in every event: it must stay small)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        metadata = super()._deserialize(value, attr, data, **kwargs)
        if len(metadata) > 16:
            raise ValidationError("at most 16 key-value pairs are allowed")
        for key, item in metadata.items():
            if len(key) > 64 or not isinstance(item, str) or len(item) > 512:
                raise ValidationError(
                    "keys must be at most 64 characters, values strings of at most 512"
                )
        return metadata


class Text(JsonObject):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        text = super()._deserialize(value, attr, data, **kwargs)
        fmt = text.get("format")
        if fmt is None:
            return text
        if not isinstance(fmt, dict) or fmt.get("type") not in _FORMATS:
            raise ValidationError(f"format.type must be one of {', '.join(_FORMATS)}")
        if fmt["type"] == "json_schema" and not isinstance(fmt.get("schema"), dict):
            raise ValidationError("a json_schema format needs its schema object")
        return text


class Responses(FrozenSchema[ResponsesRequest]):
    loads_into = ResponsesRequest
    model = fields.String(required=True, validate=validate.Length(min=1))
    input = Input(required=True)
    instructions = fields.String(load_default=None, allow_none=True)
    tools = BoundedList(MAX_TOOLS, load_default=list, allow_none=True)
    tool_choice = ToolChoice(load_default=None, allow_none=True)
    max_output_tokens = StrictInteger(
        load_default=None, allow_none=True, validate=validate.Range(min=1)
    )
    temperature = StrictNumber(0.0, 2.0, load_default=None, allow_none=True)
    top_p = StrictNumber(0.0, 1.0, load_default=None, allow_none=True)
    reasoning = EffortObject(load_default=None, allow_none=True)
    text = Text(load_default=None, allow_none=True)
    parallel_tool_calls = StrictBoolean(load_default=None, allow_none=True)
    metadata = Metadata(load_default=None, allow_none=True)
    stream = StrictBoolean(load_default=False, allow_none=True)

    @pre_load
    def _stateless(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            for name, problem in _NEED_STATE.items():
                if data.get(name) not in (None, ""):
                    raise ValidationError({name: [problem]})
            for name, problem in _ONLY_FALSE.items():
                if data.get(name) is True:
                    raise ValidationError({name: [problem]})
        return data


responses_schema = Responses()
