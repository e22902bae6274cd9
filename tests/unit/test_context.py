"""Generate's `context`: the conversation packed into integers, and read back."""

from __future__ import annotations

import base64
import os
import zlib

import pytest

from app.errors import BadRequest
from app.translate.ollama.context import (
    MARKER,
    MAX_CONVERSATION_BYTES,
    conversation,
    decode,
    encode,
)

TURNS = [
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": "Hi — 日本語 🎉"},
    {"role": "assistant", "content": "Hello."},
]


def test_a_conversation_survives_the_round_trip() -> None:
    assert decode(encode(TURNS)) == TURNS


def test_the_context_is_a_list_of_ints_that_starts_with_a_negative_marker() -> None:
    context = encode(TURNS)
    assert all(isinstance(value, int) for value in context)
    assert context[0] == MARKER < 0
    assert all(0 <= value < 1 << 24 for value in context[3:])


def test_a_long_conversation_packs_smaller_than_its_text() -> None:
    turns = [{"role": "user", "content": "the same sentence again. " * 200}]
    assert len(encode(turns)) < len(turns[0]["content"]) / 10


@pytest.mark.parametrize("context", [[], [1, 2, 3], [128000, 9906, 11, 1917]])
def test_real_ollama_token_ids_are_ignored(context: list[int]) -> None:
    assert decode(context) == []


@pytest.mark.parametrize(
    "context",
    [
        [MARKER, 99, 3, 1],  # unknown version
        [MARKER, 1, 30, 1],  # longer than its body
        [MARKER, 1, 3, 1 << 24],  # a value that is not three bytes
        [MARKER, 1, 3, -5],
        [MARKER, 1, 3, 123456],  # not zlib data
    ],
)
def test_a_damaged_context_is_a_400(context: list[int]) -> None:
    with pytest.raises(BadRequest, match="invalid context"):
        decode(context)


def test_a_context_that_is_not_a_conversation_is_a_400() -> None:
    data = zlib.compress(b'{"role": "user"}')
    padded = data + b"\0" * (-len(data) % 3)
    body = [int.from_bytes(padded[i : i + 3], "big") for i in range(0, len(padded), 3)]
    with pytest.raises(BadRequest, match="damaged"):
        decode([MARKER, 1, len(data), *body])


def test_a_decompression_bomb_is_refused() -> None:
    data = zlib.compress(b"[" + b" " * (20 * 1024 * 1024) + b"]", 9)
    padded = data + b"\0" * (-len(data) % 3)
    body = [int.from_bytes(padded[i : i + 3], "big") for i in range(0, len(padded), 3)]
    with pytest.raises(BadRequest, match="too large"):
        decode([MARKER, 1, len(data), *body])


def test_conversation_appends_the_prompt_to_the_history() -> None:
    assert conversation("Again?", None, TURNS) == [*TURNS, {"role": "user", "content": "Again?"}]


def test_a_system_prompt_sent_again_replaces_the_carried_one() -> None:
    turns = conversation("Again?", "Be verbose.", TURNS)
    assert turns[0] == {"role": "system", "content": "Be verbose."}
    assert [turn["role"] for turn in turns] == ["system", "user", "assistant", "user"]


def test_without_history_or_system_there_is_only_the_prompt() -> None:
    assert conversation("Hi", None, []) == [{"role": "user", "content": "Hi"}]


def test_a_conversation_too_large_to_be_read_back_is_not_carried() -> None:
    # 20 MB of prompt: packing it would cost the worker a JSON encoding and a compression of
    # 20 MB at the end of the answer, for a context that decode refuses anyway.
    turns = [{"role": "user", "content": "x" * (MAX_CONVERSATION_BYTES + 1)}]
    assert encode(turns) == []
    fits = [{"role": "user", "content": "x" * 1000}]
    assert decode(encode(fits)) == fits


def test_a_context_too_long_to_be_sent_back_is_not_given() -> None:
    # 10 MB that barely compresses: packed, more integers than a request's context may hold.
    noise = base64.b64encode(os.urandom(7_500_000)).decode()
    assert encode([{"role": "user", "content": noise}]) == []
