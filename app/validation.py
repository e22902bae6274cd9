"""Validation at the boundary, shared by every API: marshmallow fields with the strictness the
proxy needs, and the schema base that loads a body into a frozen dataclass.

Top-level fields are validated by schemas; lists of messages, items and blocks are checked in
the single pass that converts them (a Nested schema per message would cost more than the rest
of the request). Lists are bounded here, before anything iterates them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar, cast

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from . import offload
from .errors import BadRequest
from .translate.chat_request import EFFORTS

T = TypeVar("T")


class StrictBoolean(fields.Field[bool]):
    """true or false only: Go's decoder, and so Ollama, rejects "yes", 1 and "true"."""

    default_error_messages = {"invalid": "must be true or false"}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    default_error_messages = {"invalid": "must be a whole number"}  # noqa: RUF012

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictNumber(fields.Field[float]):
    """A JSON number (not a boolean, not a numeric string) within [low, high]."""

    def __init__(self, low: float, high: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("must be a number")
        if not self.low <= value <= self.high:
            raise ValidationError(f"must be between {self.low:g} and {self.high:g}")
        return value


class BoundedList(fields.Field[list[Any]]):
    """A JSON array of at most `max_items` items, each of `item` type when one is given.

    Checked in one pass at C speed where possible: marshmallow's List runs a field per item,
    which on a list of millions (all a 64 MB body can hold) would stall the worker for seconds.
    """

    def __init__(self, max_items: int, item: type | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_items = max_items
        self.item = item

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError("Not a valid list.")
        if len(value) > self.max_items:
            raise ValidationError(f"at most {self.max_items} items are allowed, got {len(value)}")
        item = self.item
        # `type(x) is int` also refuses booleans, which Go's decoder refuses as numbers.
        if item is not None and not all(type(entry) is item for entry in value):
            position = next(n for n, entry in enumerate(value) if type(entry) is not item)
            problem = "Not a valid string." if item is str else "must be a whole number"
            raise ValidationError({position: [problem]})
        return value


class JsonObject(fields.Field[dict[str, Any]]):
    """Any JSON object, kept as sent (its own translator checks what it uses of it)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("must be an object")
        return value


class EffortObject(JsonObject):
    """An object whose `effort`, when present, is an effort both APIs name (Anthropic's
    `output_config`, OpenAI's `reasoning`)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        found = super()._deserialize(value, attr, data, **kwargs)
        effort = found.get("effort")
        if effort is not None and effort not in EFFORTS:
            raise ValidationError(f"effort must be one of {', '.join(EFFORTS)}")
        return found


class FrozenSchema(Schema, Generic[T]):
    """A schema whose load is a frozen dataclass (`loads_into`) with every field set."""

    loads_into: ClassVar[type[Any]]

    class Meta:
        unknown = EXCLUDE  # every API served here ignores fields it does not know

    @post_load
    def _typed(self, data: dict[str, Any], **kwargs: Any) -> Any:
        # Nulls count as absent, as in Go's decoder: the field's default applies.
        for name, value in data.items():
            if value is None:
                default = self.fields[name].load_default
                data[name] = default() if callable(default) else default
        return self.loads_into(**data)


def load(schema: FrozenSchema[T], body: dict[str, Any]) -> T:
    """The validated request, every field set (defaults for absent and null ones); validated
    off the event loop when the body was large (its lists are checked item by item)."""
    return cast(T, offload.for_request(_load, schema, body))


def _load(schema: FrozenSchema[T], body: dict[str, Any]) -> T:
    try:
        return cast(T, schema.load(body))  # _typed made it the schema's loads_into
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None


def describe(error: ValidationError) -> str:
    """'messages.0.role: must be a string; stream: must be true or false' from marshmallow."""
    parts: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list) and node and all(isinstance(item, str) for item in node):
            text = "; ".join(node)
            # Messages that already name their field (Ollama's own wording) stand alone.
            parts.append(text if path in ("", "_schema") or path in text else f"{path}: {text}")
        elif isinstance(node, list):
            for child in node:
                walk(child, path)
        else:
            parts.append(f"{path}: {node}")

    walk(error.messages, "")
    return "; ".join(parts)
