"""Which server is behind the URL, from its model list and headers (docs/backends/)."""

from __future__ import annotations

from typing import Any

import pytest

from app.translate.detect import detect

URL = "http://models.internal:8000/v1"
# Model lists as each server answers them (abridged from docs/backends/).
LLAMA_SERVER = {
    "object": "list",
    "models": [{"name": "smollm2", "model": "smollm2"}],
    "data": [
        {"id": "smollm2", "object": "model", "created": 1800000000, "owned_by": "llamacpp",
         "meta": {"n_ctx": 2048, "n_ctx_train": 8192, "n_params": 134515008}},
    ],
}  # fmt: skip
LLAMA_CPP_PYTHON = {
    "object": "list",
    "data": [{"id": "smollm2", "object": "model", "owned_by": "me", "permissions": []}],
}
VLLM = {
    "object": "list",
    "data": [{"id": "Qwen/Qwen3-8B", "object": "model", "owned_by": "vllm", "max_model_len": 32768,
              "root": "/models/qwen3", "parent": None, "permission": [{"object": "perm"}]}],
}  # fmt: skip
OPENAI = {
    "object": "list",
    "data": [
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
        {"id": "o3", "object": "model", "created": 1744225308, "owned_by": "openai"},
    ],
}
OPENROUTER = {
    "data": [
        {"id": "qwen/qwen3-8b", "name": "Qwen3 8B", "context_length": 40960,
         "pricing": {"prompt": "0.00000005", "completion": "0.0000002"},
         "architecture": {"input_modalities": ["text"]}, "supported_parameters": ["tools"]},
    ]
}  # fmt: skip
PLAIN = {"object": "list", "data": [{"id": "my-model", "object": "model", "owned_by": "someone"}]}


@pytest.mark.parametrize(
    ("listing", "headers", "url", "expected"),
    [
        (LLAMA_SERVER, {"server": "llama.cpp"}, URL, "llama-server"),
        (LLAMA_SERVER, {}, URL, "llama-server"),  # the body alone is enough
        (PLAIN, {"server": "llama.cpp"}, URL, "llama-server"),  # so are the headers alone
        (LLAMA_CPP_PYTHON, {"server": "uvicorn", "openai-processing-ms": "1"}, URL,
         "llama-cpp-python"),
        (VLLM, {"server": "uvicorn"}, URL, "vllm"),
        (OPENAI, {"openai-version": "2020-10-01"}, URL, "openai"),
        (OPENAI, {}, URL, "openai"),
        (PLAIN, {}, "https://api.openai.com/v1", "openai"),
        (OPENROUTER, {}, URL, "openrouter"),
        (PLAIN, {}, "https://openrouter.ai/api/v1", "openrouter"),
        (PLAIN, {"server": "uvicorn"}, URL, "generic"),
        ({"data": []}, {}, URL, "generic"),
        ("not a listing", {}, URL, "generic"),
    ],
)  # fmt: skip
def test_each_server_is_recognised_by_what_it_tells(
    listing: Any, headers: dict[str, str], url: str, expected: str
) -> None:
    name, evidence = detect(listing, headers, url)
    assert name == expected
    assert evidence  # said in the log beside the result


def test_openai_processing_ms_alone_is_not_openai() -> None:
    # llama-cpp-python sends that header too; only openai-version proves OpenAI.
    assert detect(PLAIN, {"openai-processing-ms": "3"}, URL)[0] == "generic"
