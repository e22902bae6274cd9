"""`/api/embed` (normalised, batched) and legacy `/api/embeddings` -> `/v1/embeddings`."""

from __future__ import annotations

import base64
import math
import struct

import pytest
import responses

from app.config import Settings
from tests.checks import ollama_error

from .helpers import BACKEND, EMBEDDINGS_URL, sent, single


def answer(*vectors, usage: bool = True) -> dict:
    body = {
        "object": "list",
        "model": "nomic-embed-text",
        "data": [
            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 5, "total_tokens": 5}
    return body


def norm(vector):
    return math.sqrt(sum(x * x for x in vector))


def test_string_input_gives_one_normalised_vector(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([3.0, 4.0]))
    body = single(client.post("/api/embed", json={"model": "nomic-embed-text", "input": "hi"}))
    assert body["model"] == "nomic-embed-text"
    assert body["embeddings"] == [pytest.approx([0.6, 0.8])]
    assert body["prompt_eval_count"] == 5
    # Both durations Ollama sends: the Vercel AI SDK's provider requires load_duration.
    for name in ("total_duration", "load_duration"):
        assert type(body[name]) is int
        assert body[name] > 0
    assert sent(backend, EMBEDDINGS_URL) == {
        "model": "nomic-embed-text",
        "input": ["hi"],
        "encoding_format": "float",
    }


def test_list_input_keeps_order_by_index(client, backend):
    reply = answer([1.0, 0.0], [0.0, 2.0])
    reply["data"].reverse()  # backends may answer out of order; `index` says which is which
    backend.add(responses.POST, EMBEDDINGS_URL, json=reply)
    request = {"model": "NOMIC-EMBED-TEXT:latest", "input": ["a", "b"]}
    body = single(client.post("/api/embed", json=request))
    assert body["model"] == "NOMIC-EMBED-TEXT:latest"
    assert body["embeddings"] == [[1.0, 0.0], [0.0, 1.0]]
    assert sent(backend, EMBEDDINGS_URL)["input"] == ["a", "b"]


def test_every_vector_is_unit_length(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([0.1, -7.0, 2.5], [9.0, 9.0, 9.0]))
    body = single(
        client.post("/api/embed", json={"model": "nomic-embed-text", "input": ["a", "b"]})
    )
    assert [norm(v) for v in body["embeddings"]] == [pytest.approx(1.0)] * 2


def test_dimensions_truncates_then_renormalises(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([3.0, 4.0, 12.0]))
    request = {"model": "nomic-embed-text", "input": "x", "dimensions": 2}
    body = single(client.post("/api/embed", json=request))
    assert body["embeddings"] == [pytest.approx([0.6, 0.8])]


def test_base64_vectors_are_decoded(client, backend):
    packed = base64.b64encode(struct.pack("<2f", 0.0, 5.0)).decode()
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer(packed))
    body = single(client.post("/api/embed", json={"model": "nomic-embed-text", "input": "x"}))
    assert body["embeddings"] == [[0.0, 1.0]]


def test_per_token_vectors_are_mean_pooled(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([[1.0, 0.0], [0.0, 1.0]]))
    body = single(client.post("/api/embed", json={"model": "nomic-embed-text", "input": "x"}))
    assert body["embeddings"] == [pytest.approx([math.sqrt(0.5), math.sqrt(0.5)])]


def test_a_zero_vector_stays_zero(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([0.0, 0.0]))
    body = single(client.post("/api/embed", json={"model": "nomic-embed-text", "input": "x"}))
    assert body["embeddings"] == [[0.0, 0.0]]  # not NaN, which is not even JSON


@pytest.mark.parametrize(
    "data",
    [
        [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}],
        [{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [2.0]}],
        [{"index": 0, "embedding": ["a"]}, {"index": 1, "embedding": [2.0]}],
        [{"index": 0, "embedding": [[1.0], [1.0, 2.0]]}, {"index": 1, "embedding": [2.0]}],
        [{"index": 0, "embedding": "not base64!"}, {"index": 1, "embedding": [2.0]}],
        [{"index": 0, "embedding": "AAAAAAAA"}, {"index": 1, "embedding": [2.0]}],
    ],
    ids=[
        "duplicate-index",
        "index-out-of-range",
        "not-numbers",
        "ragged-tokens",
        "invalid-base64",
        "base64-not-float32s",
    ],
)
def test_inconsistent_backend_vectors_are_502(client, backend, data):
    backend.add(responses.POST, EMBEDDINGS_URL, json={"data": data})
    request = {"model": "nomic-embed-text", "input": ["a", "b"]}
    assert ollama_error(client.post("/api/embed", json=request), 502).startswith("backend returned")


@pytest.mark.parametrize("empty", ["", [], None])
def test_empty_input_answers_locally(client, backend, empty):
    request = {"model": "nomic-embed-text", "input": empty}
    assert single(client.post("/api/embed", json=request)) == {
        "model": "nomic-embed-text",
        "embeddings": [],
    }
    assert all(call.request.url != EMBEDDINGS_URL for call in backend.calls)


@pytest.mark.parametrize("bad", [[1, 2, 3], ["a", 2], [["a"]], 42, {"text": "a"}])
def test_non_string_input_is_400(client, backend, bad):
    response = client.post("/api/embed", json={"model": "nomic-embed-text", "input": bad})
    assert ollama_error(response, 400).startswith("invalid input type")


def test_unknown_model_is_404(client, backend):
    response = client.post("/api/embed", json={"model": "ghost", "input": "x"})
    assert ollama_error(response, 404) == "model 'ghost' not found"


OVERFLOW = {
    "error": {
        "message": "This model's maximum context length is 512 tokens. However, "
        "you requested 900 tokens in the input.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
}


def test_truncate_false_overflow_is_ollamas_400(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=OVERFLOW, status=400)
    request = {"model": "nomic-embed-text", "input": "long " * 900, "truncate": False}
    message = ollama_error(client.post("/api/embed", json=request), 400)
    assert message == "the input length exceeds the context length"


def test_other_backend_400s_keep_their_message(client, backend):
    error = {"error": {"message": "input contains forbidden bytes", "type": "BadRequestError"}}
    backend.add(responses.POST, EMBEDDINGS_URL, json=error, status=400)
    request = {"model": "nomic-embed-text", "input": "x", "truncate": False}
    assert ollama_error(client.post("/api/embed", json=request), 400) == (
        "input contains forbidden bytes"
    )


@pytest.mark.parametrize(
    ("settings", "truncate", "extra"),
    [
        (
            Settings(backend_url=BACKEND, backend_flavour="vllm"),
            True,
            {"truncate_prompt_tokens": -1},
        ),
        (Settings(backend_url=BACKEND, backend_flavour="vllm"), False, {}),
        (Settings(backend_url=BACKEND, backend_flavour="generic"), True, {}),
    ],
)
def test_vllm_is_asked_to_truncate_unless_told_not_to(client, backend, truncate, extra):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([1.0]))
    request = {"model": "nomic-embed-text", "input": "x", "truncate": truncate}
    single(client.post("/api/embed", json=request))
    assert sent(backend, EMBEDDINGS_URL) == {
        "model": "nomic-embed-text",
        "input": ["x"],
        "encoding_format": "float",
        **extra,
    }


def test_wrong_number_of_vectors_is_a_502(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([1.0]))
    request = {"model": "nomic-embed-text", "input": ["a", "b"]}
    assert "1 embeddings for 2 inputs" in ollama_error(client.post("/api/embed", json=request), 502)


def test_legacy_embeddings_returns_one_raw_vector(client, backend):
    backend.add(responses.POST, EMBEDDINGS_URL, json=answer([3.0, 4.0]))
    request = {"model": "nomic-embed-text", "prompt": "hello"}
    assert single(client.post("/api/embeddings", json=request)) == {"embedding": [3.0, 4.0]}
    assert sent(backend, EMBEDDINGS_URL) == {
        "model": "nomic-embed-text",
        "input": ["hello"],
        "encoding_format": "float",
    }


@pytest.mark.parametrize("request_body", [{"prompt": ""}, {}])
def test_legacy_empty_prompt_is_an_empty_vector(client, backend, request_body):
    response = client.post("/api/embeddings", json={"model": "nomic-embed-text", **request_body})
    assert single(response) == {"embedding": []}
    assert all(call.request.url != EMBEDDINGS_URL for call in backend.calls)


def test_legacy_unknown_model_is_404(client, backend):
    response = client.post("/api/embeddings", json={"model": "ghost", "prompt": "x"})
    assert ollama_error(response, 404) == 'model "ghost" not found, try pulling it first'
