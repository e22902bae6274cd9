"""Anthropic Messages requests validated at the boundary into translate/anthropic/
request_types.py. Top-level fields are checked here; messages, system blocks and tools in the
pass that converts them."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from ..translate.anthropic.request_types import MessagesRequest
from ..translate.limits import MAX_MESSAGES, MAX_STOP_SEQUENCES, MAX_TOOLS
from ..validation import (
    BoundedList,
    EffortObject,
    FrozenSchema,
    JsonObject,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
)

_TOOL_CHOICES = ("auto", "any", "tool", "none")
_THINKING = ("enabled", "disabled", "adaptive")


class System(fields.Field[Any]):
    """A string, or a list of text blocks (checked when they are converted)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) <= MAX_MESSAGES:
            return value
        raise ValidationError("must be a string or a list of text blocks")


class ToolChoice(JsonObject):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        choice = super()._deserialize(value, attr, data, **kwargs)
        if choice.get("type") not in _TOOL_CHOICES:
            raise ValidationError(f"type must be one of {', '.join(_TOOL_CHOICES)}")
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise ValidationError("a tool choice of type tool needs the tool's name")
        return choice


class Thinking(JsonObject):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        thinking = super()._deserialize(value, attr, data, **kwargs)
        if thinking.get("type") not in _THINKING:
            raise ValidationError(f"type must be one of {', '.join(_THINKING)}")
        budget = thinking.get("budget_tokens")
        if budget is not None and (type(budget) is not int or budget < 1):
            raise ValidationError("budget_tokens must be a positive whole number")
        return thinking


class OutputConfig(EffortObject):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        config = super()._deserialize(value, attr, data, **kwargs)
        fmt = config.get("format")
        if fmt is not None and not (
            isinstance(fmt, dict)
            and fmt.get("type") == "json_schema"
            and isinstance(fmt.get("schema"), dict)
        ):
            raise ValidationError('format must be {"type": "json_schema", "schema": {...}}')
        return config


class Messages(FrozenSchema[MessagesRequest]):
    loads_into = MessagesRequest
    model = fields.String(required=True, validate=validate.Length(min=1))
    max_tokens = StrictInteger(required=True, validate=validate.Range(min=1))
    messages = BoundedList(
        MAX_MESSAGES,
        required=True,
        validate=validate.Length(min=1, error="at least one message is required"),
    )
    system = System(load_default=None, allow_none=True)
    stop_sequences = BoundedList(MAX_STOP_SEQUENCES, str, load_default=list, allow_none=True)
    temperature = StrictNumber(0.0, 1.0, load_default=None, allow_none=True)
    top_p = StrictNumber(0.0, 1.0, load_default=None, allow_none=True)
    top_k = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=0))
    tools = BoundedList(MAX_TOOLS, load_default=list, allow_none=True)
    tool_choice = ToolChoice(load_default=None, allow_none=True)
    thinking = Thinking(load_default=None, allow_none=True)
    output_config = OutputConfig(load_default=None, allow_none=True)
    stream = StrictBoolean(load_default=False, allow_none=True)


class CountTokens(Messages):
    """count_tokens takes a Messages request without the generation settings."""

    max_tokens = StrictInteger(load_default=None, allow_none=True)


messages_schema = Messages()
count_tokens_schema = CountTokens()
