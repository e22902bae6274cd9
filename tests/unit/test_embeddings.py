"""/api/embed and /api/embeddings <-> /v1/embeddings: inputs, bodies, vectors, normalisation."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import pytest

from app.errors import BackendError, BadRequest
from app.flavours import flavour
from app.translate.ollama.embeddings import (
    embed_inputs,
    embeddings_body,
    is_overflow,
    normalised,
    prompt_tokens,
    vectors,
)


def answer(*embeddings: Any, indexes: list[int] | None = None) -> dict[str, Any]:
    positions = indexes if indexes is not None else list(range(len(embeddings)))
    data = [
        {"object": "embedding", "index": index, "embedding": embedding}
        for index, embedding in zip(positions, embeddings, strict=True)
    ]
    return {"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 8}}


def b64_floats(*values: float) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


@pytest.mark.parametrize(
    ("value", "inputs"),
    [
        ("why is the sky blue?", ["why is the sky blue?"]),
        ("", []),
        ([], []),
        (["a", "b"], ["a", "b"]),
        (["a", ""], ["a", ""]),
    ],
)
def test_inputs(value: Any, inputs: list[str]) -> None:
    assert embed_inputs(value) == inputs


@pytest.mark.parametrize("value", [[1, 2, 3], [[1, 2]], ["a", 1], 5, None, {"text": "a"}])
def test_token_arrays_and_other_types_are_invalid_input(value: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        embed_inputs(value)
    assert caught.value.status == 400
    assert caught.value.message.startswith("invalid input type")


@pytest.mark.parametrize(
    ("name", "truncate", "extra"),
    [
        ("vllm", True, {"truncate_prompt_tokens": -1}),
        ("vllm", False, {}),
        ("generic", True, {}),
        ("openai", True, {}),
        ("llama-cpp-python", True, {}),
        ("openrouter", True, {}),
    ],
)
def test_body(name: str, truncate: bool, extra: dict[str, Any]) -> None:
    assert embeddings_body("bge-m3", ["a", "b"], flavour=flavour(name), truncate=truncate) == {
        "model": "bge-m3",
        "input": ["a", "b"],
        "encoding_format": "float",
        **extra,
    }


def test_vectors_are_returned_in_input_order() -> None:
    shuffled = answer([3.0], [1.0], [2.0], indexes=[2, 0, 1])
    assert vectors(shuffled, 3) == [[1.0], [2.0], [3.0]]


def test_vectors_without_index_keep_their_position() -> None:
    assert vectors({"data": [{"embedding": [1]}, {"embedding": [2, 3]}]}, 2) == [[1.0], [2.0, 3.0]]


def test_integers_become_floats() -> None:
    [vector] = vectors(answer([1, 0, -2]), 1)
    assert vector == [1.0, 0.0, -2.0]
    assert all(type(x) is float for x in vector)


def test_base64_vectors_are_decoded_as_little_endian_float32() -> None:
    assert vectors(answer(b64_floats(0.5, -1.25, 3.0)), 1) == [[0.5, -1.25, 3.0]]


@pytest.mark.parametrize("embedding", ["abc", "AAAAAAAA", "%%%%"])
def test_corrupt_base64_vectors_are_backend_errors(embedding: str) -> None:
    # Not valid base64, or not a whole number of float32s: the backend's fault, not ours (502).
    with pytest.raises(BackendError) as caught:
        vectors(answer(embedding), 1)
    assert caught.value.status == 502


def test_per_token_vectors_are_mean_pooled() -> None:
    # llama-cpp-python without pooling: each data[i].embedding is one vector per token.
    tokens_a = [[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]]
    tokens_b = [[2.0, -2.0]]
    assert vectors(answer(tokens_a, tokens_b), 2) == [[3.0, 2.0], [2.0, -2.0]]


@pytest.mark.parametrize(
    ("embeddings", "count", "message"),
    [
        (answer([1.0]), 2, "backend returned 1 embeddings for 2 inputs"),
        (answer([1.0], [2.0]), 1, "backend returned 2 embeddings for 1 inputs"),
        ({"data": "nope"}, 1, "backend returned 0 embeddings for 1 inputs"),
        ({"object": "list"}, 1, "backend returned 0 embeddings for 1 inputs"),
        ([[1.0]], 1, "backend returned 0 embeddings for 1 inputs"),
        (answer([1.0], [2.0], indexes=[0, 0]), 2, "inconsistent indexes"),
        (answer([1.0], [2.0], indexes=[0, 2]), 2, "inconsistent indexes"),
        (answer([1.0], indexes=[-1]), 1, "inconsistent indexes"),
        ({"data": ["x"]}, 1, "inconsistent indexes"),
        (answer(["a", "b"]), 1, "not a list of numbers"),
        (answer(None), 1, "not a list of numbers"),
        (answer([[1.0, 2.0], [3.0]]), 1, "per-token embeddings of unequal lengths"),
        (answer([[1.0, 2.0], 3.0]), 1, "per-token embeddings of unequal lengths"),
    ],
)
def test_malformed_answers_are_backend_errors(embeddings: Any, count: int, message: str) -> None:
    with pytest.raises(BackendError) as caught:
        vectors(embeddings, count)
    assert caught.value.status == 502
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("vector", "dimensions", "expected"),
    [
        ([3.0, 4.0], None, [0.6, 0.8]),
        ([0.6, 0.8], None, [0.6, 0.8]),
        ([3.0, 4.0, 12.0], 2, [0.6, 0.8]),
        ([2.0, 9.0, 9.0], 1, [1.0]),
        ([3.0, 4.0], 10, [0.6, 0.8]),
        ([0.0, 0.0], None, [0.0, 0.0]),
        ([], None, []),
    ],
)
def test_normalisation_and_dimensions(
    vector: list[float], dimensions: int | None, expected: list[float]
) -> None:
    assert normalised(vector, dimensions) == pytest.approx(expected)


def test_normalised_vectors_have_unit_length() -> None:
    vector = normalised([0.1 * n - 3 for n in range(384)], 256)
    assert len(vector) == 256
    assert math.fsum(x * x for x in vector) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("message", "overflow"),
    [
        (
            "This model's maximum context length is 512 tokens. However, you requested 600 "
            "tokens in the input for embedding generation.",
            True,
        ),
        ("input is too large to process. increase the physical batch size", True),
        ("the request exceeds the available context size, try increasing it", True),
        ("Input text is too long for the context length of this model", True),
        ("Invalid API key", False),
        ("The model `bge` does not exist.", False),
    ],
)
def test_overflow_detection(message: str, overflow: bool) -> None:
    assert is_overflow(message) is overflow


@pytest.mark.parametrize(
    ("body", "tokens"),
    [
        (answer([1.0]), 8),
        ({"data": [], "usage": {"prompt_tokens": 0}}, 0),
        ({"data": []}, 0),
        ({"usage": None}, 0),
        ({"usage": {"prompt_tokens": "8"}}, 0),
    ],
)
def test_prompt_tokens(body: dict[str, Any], tokens: int) -> None:
    assert prompt_tokens(body) == tokens
