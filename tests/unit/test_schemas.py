"""Request validation: defaults, Ollama's strict types, keep_alive, think, format, messages."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from app.errors import BadRequest
from app.ollama.schemas import (
    chat_schema,
    copy_schema,
    embed_schema,
    embeddings_schema,
    generate_schema,
    model_schema,
    parse_keep_alive,
)
from app.validation import describe, load


def error_of(schema: Schema, body: dict[str, Any]) -> str:
    """The 400 message a client gets for an invalid body."""
    with pytest.raises(BadRequest) as caught:
        load(schema, body)
    assert caught.value.status == 400
    return caught.value.message


def test_chat_defaults() -> None:
    assert asdict(load(chat_schema, {"model": "llama3.2"})) == {
        "model": "llama3.2",
        "messages": [],
        "tools": [],
        "format": None,
        "options": {},
        "stream": True,
        "keep_alive": None,
        "think": None,
        "logprobs": False,
        "top_logprobs": 0,
    }


def test_generate_defaults() -> None:
    request = load(generate_schema, {"model": "m"})
    assert asdict(request) == {
        "model": "m",
        "prompt": "",
        "suffix": "",
        "system": None,
        "template": None,
        "images": [],
        "context": [],
        "raw": False,
        "format": None,
        "options": {},
        "stream": True,
        "keep_alive": None,
        "think": None,
        "logprobs": False,
        "top_logprobs": 0,
    }


def test_nulls_count_as_absent() -> None:
    body = {
        "model": "m",
        "messages": None,
        "tools": None,
        "format": None,
        "options": None,
        "stream": None,
        "keep_alive": None,
        "think": None,
        "logprobs": None,
        "top_logprobs": None,
    }
    assert load(chat_schema, body) == load(chat_schema, {"model": "m"})
    generate = {"model": "m", "prompt": None, "images": None, "context": None, "raw": None}
    assert load(generate_schema, generate) == load(generate_schema, {"model": "m"})


def test_unknown_fields_are_ignored_and_set_fields_kept() -> None:
    request = load(
        chat_schema,
        {
            "model": "m",
            "stream": False,
            "truncate": True,
            "shift": False,
            "_debug_render_only": False,
            "options": {"temperature": 0.1, "unknown": 1},
            "logprobs": True,
            "top_logprobs": 20,
        },
    )
    assert request.stream is False
    assert request.options == {"temperature": 0.1}
    assert (request.logprobs, request.top_logprobs) == (True, 20)
    assert not hasattr(request, "truncate")


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "false", [], {}])
@pytest.mark.parametrize("field", ["stream", "logprobs"])
def test_booleans_are_strict(field: str, value: Any) -> None:
    assert error_of(chat_schema, {"model": "m", field: value}) == f"{field}: must be true or false"


@pytest.mark.parametrize("value", ["yes", 1])
def test_generate_raw_and_embed_truncate_are_strict_booleans(value: Any) -> None:
    assert error_of(generate_schema, {"model": "m", "raw": value}) == "raw: must be true or false"
    assert error_of(embed_schema, {"model": "m", "truncate": value}) == (
        "truncate: must be true or false"
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("300ms", 0.3),
        ("-1m", -60.0),
        ("+2s", 2.0),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("2h45m30s", 9930.0),
        ("1500us", 0.0015),
        ("1500µs", 0.0015),
        ("100ns", 1e-7),
        (" 10s ", 10.0),
        ("0", 0.0),
        ("-0", 0.0),
        (300, 300.0),
        (-1, -1.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_keep_alive_accepts_seconds_and_go_durations(value: Any, seconds: float) -> None:
    assert parse_keep_alive(value) == pytest.approx(seconds)
    assert load(chat_schema, {"model": "m", "keep_alive": value}).keep_alive == pytest.approx(
        seconds
    )


@pytest.mark.parametrize("value", ["5", "", "-", "5 m", "1d", "5m10", "m", "1h-30m", "00", "abc"])
def test_keep_alive_rejects_what_go_cannot_parse(value: str) -> None:
    message = error_of(chat_schema, {"model": "m", "keep_alive": value})
    hint = 'use a number of seconds or a duration such as "5m"'
    assert message == f"keep_alive: invalid duration {value!r}: {hint}"


@pytest.mark.parametrize("value", [True, [5], {"m": 5}])
def test_keep_alive_rejects_other_types(value: Any) -> None:
    assert error_of(generate_schema, {"model": "m", "keep_alive": value}) == (
        'keep_alive: must be a number of seconds or a duration such as "5m"'
    )


@pytest.mark.parametrize(
    "value",
    [True, False, "low", "medium", "high", "max"],
)
def test_think_accepts_booleans_and_levels(value: Any) -> None:
    assert load(chat_schema, {"model": "m", "think": value}).think == value
    assert load(generate_schema, {"model": "m", "think": value}).think == value


@pytest.mark.parametrize("value", ["extreme", "", 1, 0, ["high"]])
def test_think_rejects_other_values_with_ollamas_wording(value: Any) -> None:
    message = error_of(chat_schema, {"model": "m", "think": value})
    assert message.startswith(f"invalid think value: {value!r}")
    assert "low, medium, high, max" in message


SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("json", "json"), (SCHEMA, SCHEMA), ({}, {}), ("", None), (None, None)],
)
def test_format_values(value: Any, expected: Any) -> None:
    assert load(generate_schema, {"model": "m", "format": value}).format == expected


@pytest.mark.parametrize("value", ["xml", "JSON", 5, ["json"], True])
def test_invalid_format_is_rejected_with_ollamas_message(value: Any) -> None:
    assert error_of(chat_schema, {"model": "m", "format": value}) == (
        f'invalid format: {value!r}; expected "json" or a valid JSON Schema object'
    )


@pytest.mark.parametrize("value", [-1, 21, 100])
def test_top_logprobs_range_message(value: int) -> None:
    message = error_of(chat_schema, {"model": "m", "logprobs": True, "top_logprobs": value})
    assert message == "top_logprobs must be between 0 and 20"


@pytest.mark.parametrize("value", [1.5, "3", True])
def test_top_logprobs_must_be_a_whole_number(value: Any) -> None:
    assert error_of(chat_schema, {"model": "m", "top_logprobs": value}) == (
        "top_logprobs: must be a whole number"
    )


@pytest.mark.parametrize("schema", [chat_schema, model_schema, embed_schema])
@pytest.mark.parametrize("body", [{}, {"model": None}, {"stream": False}])
def test_missing_model_is_required(schema: Schema, body: dict[str, Any]) -> None:
    assert error_of(schema, body) == "model is required"


@pytest.mark.parametrize("body", [{}, {"model": None}, {"model": ""}])
def test_generate_loads_a_missing_model_as_empty(body: dict[str, Any]) -> None:
    assert load(generate_schema, body).model == ""


@pytest.mark.parametrize("schema", [chat_schema, model_schema])
def test_empty_model_is_required(schema: Schema) -> None:
    # Ollama's chat and show answer an empty model with `model is required`.
    assert error_of(schema, {"model": ""}) == "model is required"


def test_non_string_model_names_the_field() -> None:
    assert error_of(chat_schema, {"model": 5}) == "model: Not a valid string."


@pytest.mark.parametrize(
    ("body", "model"),
    [
        ({"name": "llama3.2"}, "llama3.2"),
        ({"name": "old", "model": "new"}, "new"),
        ({"name": "old", "model": ""}, "old"),
    ],
)
def test_legacy_name_field(body: dict[str, Any], model: str) -> None:
    assert load(model_schema, body).model == model


def test_model_request_defaults() -> None:
    assert asdict(load(model_schema, {"model": "m"})) == {
        "model": "m",
        "stream": True,
        "verbose": False,
    }


def test_embed_request_fields() -> None:
    assert asdict(load(embed_schema, {"model": "m"})) == {
        "model": "m",
        "input": [],
        "truncate": True,
        "dimensions": None,
        "options": {},
        "keep_alive": None,
    }
    loaded = load(embed_schema, {"model": "m", "input": ["a"], "truncate": False, "dimensions": 8})
    assert (loaded.input, loaded.truncate, loaded.dimensions) == (["a"], False, 8)


@pytest.mark.parametrize("value", [0, -3])
def test_embed_dimensions_must_be_positive(value: int) -> None:
    assert error_of(embed_schema, {"model": "m", "dimensions": value}).startswith("dimensions: ")


def test_legacy_embeddings_request() -> None:
    assert asdict(load(embeddings_schema, {"model": "m", "prompt": None})) == {
        "model": "m",
        "prompt": "",
        "options": {},
        "keep_alive": None,
    }


def test_copy_request_requires_both_names() -> None:
    assert asdict(load(copy_schema, {"source": "a", "destination": "b"})) == {
        "source": "a",
        "destination": "b",
    }
    message = error_of(copy_schema, {"source": "a"})
    assert message.startswith("destination: ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m", "images": "abc"}, "images: Not a valid list."),
        ({"model": "m", "images": [1]}, "images.0: Not a valid string."),
        ({"model": "m", "context": [1, "x"]}, "context.1: must be a whole number"),
        ({"model": "m", "prompt": 5}, "prompt: Not a valid string."),
    ],
)
def test_generate_field_errors_name_the_field(body: dict[str, Any], message: str) -> None:
    assert error_of(generate_schema, body) == message


def test_options_errors_name_the_option() -> None:
    message = error_of(chat_schema, {"model": "m", "options": {"temperature": "hot"}})
    assert message == 'options: option "temperature" must be of type number'


def test_several_errors_are_all_reported() -> None:
    message = error_of(chat_schema, {"model": "m", "stream": "yes", "messages": "hi"})
    assert sorted(message.split("; ")) == [
        "messages: Not a valid list.",
        "stream: must be true or false",
    ]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ({"messages": {"0": {"role": ["must be a string"]}}}, "messages.0.role: must be a string"),
        ({"_schema": ["Invalid input type."]}, "Invalid input type."),
        (["a", "b"], "a; b"),
        ({"stream": "broken"}, "stream: broken"),
        ({"a": ["x", "y"], "b": [["z"]]}, "a: x; y; b: z"),
    ],
)
def test_describe_flattens_marshmallow_messages(messages: Any, expected: str) -> None:
    assert describe(ValidationError(messages)) == expected
