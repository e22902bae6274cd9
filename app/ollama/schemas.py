"""Request validation at the boundary: marshmallow schemas that load Ollama request bodies into
the frozen dataclasses of translate/ollama/request_types.py.

Top-level fields are validated here (with the shared fields of app/validation.py). Messages
are checked field by field in the single pass that converts them (translate/ollama/messages.py):
a Nested schema costs ~8 µs per message, which on a long conversation would cost more than
everything else the proxy does.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from marshmallow import ValidationError, fields, pre_load, validate

from ..translate.limits import MAX_CONTEXT, MAX_IMAGES, MAX_MESSAGES, MAX_TOOLS
from ..translate.ollama import request_types as types
from ..translate.ollama.options import parse_options
from ..validation import BoundedList, FrozenSchema, StrictBoolean, StrictInteger

T = TypeVar("T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
THINK_LEVELS = ("low", "medium", "high", "max")


class KeepAlive(fields.Field[float]):
    """Seconds (a number; negative means forever) or a Go duration string ("5m", "1h30m")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        return parse_keep_alive(value)


class Think(fields.Field[Any]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in THINK_LEVELS:
                return lowered
            if lowered in ("true", "false"):
                return lowered == "true"
        raise ValidationError(
            f"invalid think value: {value!r} (expected true, false, or one of "
            f"{', '.join(THINK_LEVELS)})"
        )


class Format(fields.Field[Any]):
    """`"json"`, a JSON-schema object, or ``""``/null for free text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value == "" or value is None:
            return None
        if value == "json" or isinstance(value, dict):
            return value
        raise ValidationError(
            f'invalid format: {value!r}; expected "json" or a valid JSON Schema object'
        )


class Options(fields.Field[dict[str, Any]]):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        return parse_options(value)


def parse_keep_alive(value: Any) -> float:
    if isinstance(value, bool):
        raise ValidationError('must be a number of seconds or a duration such as "5m"')
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValidationError('must be a number of seconds or a duration such as "5m"')
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValidationError(
            f'invalid duration {value!r}: use a number of seconds or a duration such as "5m"'
        )
    return sign * total


class _Base(FrozenSchema[T]):
    @pre_load
    def _legacy_name(self, data: Any, **kwargs: Any) -> Any:
        # Older clients (and ollama-js for pull/delete) send `name`; `model` wins when both are.
        if isinstance(data, dict) and not data.get("model") and data.get("name"):
            data = {**data, "model": data["name"]}
        return data


_required: dict[str, Any] = {"required": "model is required", "null": "model is required"}
_NOT_EMPTY = validate.Length(min=1, error="model is required")


class _Generation(_Base[T]):
    model = fields.String(required=True, validate=_NOT_EMPTY, error_messages=_required)
    format = Format(load_default=None, allow_none=True)
    options = Options(load_default=dict, allow_none=True)
    stream = StrictBoolean(load_default=True, allow_none=True)
    keep_alive = KeepAlive(load_default=None, allow_none=True)
    think = Think(load_default=None, allow_none=True)
    logprobs = StrictBoolean(load_default=False, allow_none=True)
    top_logprobs = StrictInteger(
        load_default=0,
        allow_none=True,
        validate=validate.Range(0, 20, error="top_logprobs must be between 0 and 20"),
    )


class ChatRequest(_Generation[types.ChatRequest]):
    loads_into = types.ChatRequest
    messages = BoundedList(MAX_MESSAGES, load_default=list, allow_none=True)
    tools = BoundedList(MAX_TOOLS, load_default=list, allow_none=True)


class GenerateRequest(_Generation[types.GenerateRequest]):
    loads_into = types.GenerateRequest
    # Generate takes an empty or missing name, to answer it with Ollama's 404.
    model = fields.String(load_default="", allow_none=True)
    prompt = fields.String(load_default="", allow_none=True)
    suffix = fields.String(load_default="", allow_none=True)
    system = fields.String(load_default=None, allow_none=True)
    template = fields.String(load_default=None, allow_none=True)
    images = BoundedList(MAX_IMAGES, str, load_default=list, allow_none=True)
    context = BoundedList(MAX_CONTEXT, int, load_default=list, allow_none=True)
    raw = StrictBoolean(load_default=False, allow_none=True)


class EmbedRequest(_Base[types.EmbedRequest]):
    loads_into = types.EmbedRequest
    model = fields.String(required=True, validate=_NOT_EMPTY, error_messages=_required)
    input = fields.Raw(load_default=list, allow_none=True)
    truncate = StrictBoolean(load_default=True, allow_none=True)
    dimensions = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(1))
    options = Options(load_default=dict, allow_none=True)
    keep_alive = KeepAlive(load_default=None, allow_none=True)


class EmbeddingsRequest(_Base[types.EmbeddingsRequest]):
    loads_into = types.EmbeddingsRequest
    model = fields.String(required=True, validate=_NOT_EMPTY, error_messages=_required)
    prompt = fields.String(load_default="", allow_none=True)
    options = Options(load_default=dict, allow_none=True)
    keep_alive = KeepAlive(load_default=None, allow_none=True)


class ModelRequest(_Base[types.ModelRequest]):
    """show, pull, push, delete: a model name and flags this proxy has no use for."""

    loads_into = types.ModelRequest
    model = fields.String(required=True, validate=_NOT_EMPTY, error_messages=_required)
    stream = StrictBoolean(load_default=True, allow_none=True)
    verbose = StrictBoolean(load_default=False, allow_none=True)


class CopyRequest(_Base[types.CopyRequest]):
    loads_into = types.CopyRequest
    source = fields.String(required=True, validate=validate.Length(min=1))
    destination = fields.String(required=True, validate=validate.Length(min=1))


chat_schema = ChatRequest()
generate_schema = GenerateRequest()
embed_schema = EmbedRequest()
embeddings_schema = EmbeddingsRequest()
model_schema = ModelRequest()
copy_schema = CopyRequest()
