"""Ollama's tags/show/ps metadata synthesised from a backend's /v1/models entry."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from app.translate.models import Deployment, Model
from app.translate.ollama.model_info import (
    FOREVER,
    capabilities,
    context_length,
    family,
    parameter_size,
    ps_entry,
    show,
    tag_entry,
)

VLLM = {"id": "Qwen/Qwen3-8B", "object": "model", "owned_by": "vllm", "max_model_len": 32768}
LLAMACPP = {
    "id": "gemma-3-4b-it-Q4_K_M.gguf",
    "owned_by": "llamacpp",
    "meta": {
        "n_ctx_train": 131072,
        "n_params": 3880263168,
        "size": 2489757856,
        "n_embd": 2560,
        "ftype": "Q4_K_M",
    },
}
OPENROUTER = {
    "id": "openai/gpt-4o-mini",
    "context_length": 128000,
    "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
    "supported_parameters": ["tools", "tool_choice", "max_tokens", "temperature"],
    "top_provider": {"context_length": 64000, "max_completion_tokens": 16384},
}


def model(info: dict[str, Any], name: str | None = None) -> Model:
    return Model(name or f"{info['id']}:latest", (Deployment("default", info["id"], info),))


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (VLLM, 32768),
        (LLAMACPP, 131072),
        (OPENROUTER, 128000),
        ({"id": "x", "top_provider": {"context_length": 64000}}, 64000),
        ({"id": "x", "meta": {"n_ctx": 8192, "n_ctx_train": 131072}}, 8192),
        ({"id": "x", "max_model_len": 4096, "context_length": 9999}, 4096),
        ({"id": "x"}, 2048),
        ({"id": "x", "max_model_len": 0, "context_length": -1}, 2048),
        ({"id": "x", "max_model_len": True}, 2048),
        ({"id": "x", "max_model_len": "32768"}, 2048),
        ({"id": "x", "top_provider": None, "meta": [1]}, 2048),
    ],
)
def test_context_length_sources(info: dict[str, Any], expected: int) -> None:
    assert context_length(model(info), 2048) == expected


@pytest.mark.parametrize(
    ("info", "caps"),
    [
        ({"id": "meta-llama/Llama-3.1-8B-Instruct"}, ["completion", "tools"]),
        (VLLM, ["completion", "tools", "thinking"]),
        ({"id": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"}, ["completion", "tools", "thinking"]),
        ({"id": "o3-mini"}, ["completion", "tools", "thinking"]),
        ({"id": "openai/gpt-oss-20b"}, ["completion", "tools", "thinking"]),
        ({"id": "Qwen/Qwen2.5-VL-7B-Instruct"}, ["completion", "tools", "vision"]),
        ({"id": "llava-hf/llava-1.5-7b-hf"}, ["completion", "tools", "vision"]),
        (LLAMACPP, ["completion", "tools", "vision"]),
        (OPENROUTER, ["completion", "tools", "vision"]),
        ({**OPENROUTER, "architecture": {"input_modalities": ["text"]}}, ["completion", "tools"]),
        ({"id": "x/base", "supported_parameters": ["temperature"]}, ["completion"]),
        (
            {"id": "x/r", "supported_parameters": ["tools", "reasoning"]},
            ["completion", "tools", "thinking"],
        ),
        ({"id": "text-embedding-3-small"}, ["embedding"]),
        ({"id": "BAAI/bge-m3"}, ["embedding"]),
        ({"id": "intfloat/e5-mistral-7b-instruct"}, ["embedding"]),
        ({"id": "sentence-transformers/all-MiniLM-L6-v2"}, ["embedding"]),
        ({"id": "nomic-embed-text-v1.5"}, ["embedding"]),
        ({"id": "x", "architecture": {"output_modalities": ["embedding"]}}, ["embedding"]),
    ],
)
def test_capabilities(info: dict[str, Any], caps: list[str]) -> None:
    assert capabilities(model(info)) == caps


@pytest.mark.parametrize(
    ("info", "size"),
    [
        ({"id": "org/Fake-Model-7B"}, "7B"),
        ({"id": "Qwen/Qwen2.5-0.5B-Instruct"}, "0.5B"),
        ({"id": "Qwen/Qwen3-30B-A3B"}, "30B"),
        ({"id": "meta-llama/llama-3.1-8b-instruct"}, "8B"),
        ({"id": "smollm2-135m"}, "135M"),
        ({"id": "gpt-4o-mini"}, ""),
        ({"id": "mistralai/Mixtral-8x7B-v0.1"}, ""),
        (LLAMACPP, "3.9B"),
        ({"id": "x", "meta": {"n_params": 137_000_000}}, "137M"),
    ],
)
def test_parameter_size(info: dict[str, Any], size: str) -> None:
    assert parameter_size(model(info)) == size


@pytest.mark.parametrize(
    ("backend_id", "name"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama"),
        ("Qwen/Qwen3-8B", "qwen2"),
        ("google/gemma-3-4b-it", "gemma3"),
        ("my-custom-model", "unknown"),
    ],
)
def test_family(backend_id: str, name: str) -> None:
    assert family(model({"id": backend_id})) == name


def _is_rfc3339_with_offset(value: str) -> bool:
    return datetime.fromisoformat(value).tzinfo is not None


def test_tag_entry_shape() -> None:
    entry = tag_entry(model(LLAMACPP, "gemma3:latest"), 4096)
    assert entry["name"] == entry["model"] == "gemma3:latest"
    assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"])
    assert entry["size"] == 2489757856
    assert _is_rfc3339_with_offset(entry["modified_at"])
    assert entry["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "gemma3",
        "families": ["gemma3"],
        "parameter_size": "3.9B",
        "quantization_level": "Q4_K_M",
        "context_length": 131072,
        "embedding_length": 2560,
    }
    assert entry["capabilities"] == ["completion", "tools", "vision"]


def test_tag_entry_defaults_for_a_bare_backend_entry() -> None:
    entry = tag_entry(Model("m:latest", (Deployment("default", "m"),)), 4096)
    assert entry["size"] == 0
    assert entry["details"]["quantization_level"] == ""
    assert entry["details"]["context_length"] == 4096
    assert "embedding_length" not in entry["details"]
    assert _is_rfc3339_with_offset(entry["modified_at"])


def test_digest_is_stable_per_backend_id() -> None:
    first = tag_entry(model(VLLM, "qwen3:latest"), 4096)["digest"]
    assert tag_entry(model(VLLM, "other:latest"), 4096)["digest"] == first
    assert tag_entry(model({"id": "other"}), 4096)["digest"] != first


@pytest.mark.parametrize(
    ("created", "modified"),
    [(1700000000, "2023-11-14T22:13:20+00:00"), (0, None), (True, None), ("1", None)],
)
def test_modified_at_comes_from_created(created: Any, modified: str | None) -> None:
    entry = tag_entry(model({"id": "x", "created": created}), 4096)
    if modified:
        assert entry["modified_at"] == modified
    else:
        assert entry["modified_at"] != "2023-11-14T22:13:20+00:00"
        assert _is_rfc3339_with_offset(entry["modified_at"])


def test_ps_entry_shape() -> None:
    entry = ps_entry(model(VLLM, "qwen3:latest"), 4096)
    assert entry["name"] == entry["model"] == "qwen3:latest"
    assert entry["expires_at"] == FOREVER
    assert _is_rfc3339_with_offset(entry["expires_at"].replace("Z", "+00:00"))
    assert entry["size_vram"] == entry["size"] == 0
    assert entry["context_length"] == 32768
    assert entry["details"]["family"] == "qwen2"


def test_show_for_a_tool_capable_model() -> None:
    reply = show(model(VLLM, "qwen3:latest"), 4096)
    arch = reply["model_info"]["general.architecture"]
    assert reply["model_info"] == {
        "general.architecture": arch,
        "general.basename": "Qwen/Qwen3-8B",
        f"{arch}.context_length": 32768,
    }
    assert reply["capabilities"] == ["completion", "tools", "thinking"]
    assert ".Tools" in reply["template"]
    assert "FROM qwen3:latest" in reply["modelfile"]
    assert "context_length" not in reply["details"]
    assert _is_rfc3339_with_offset(reply["modified_at"])
    assert "details" in reply
    assert not {"license", "parameters"} & reply.keys()  # empty: left out, as Ollama does


@pytest.mark.parametrize(
    "info",
    [
        {"id": "nomic-embed-text-v1.5", "max_model_len": 2048},
        {"id": "base", "supported_parameters": ["temperature"]},
    ],
)
def test_show_template_mentions_tools_only_with_the_tools_capability(info: dict[str, Any]) -> None:
    reply = show(model(info), 4096)
    assert "tools" not in reply["capabilities"]
    assert ".Tools" not in reply["template"]
    assert ".Prompt" in reply["template"]


def test_show_reports_the_embedding_length_under_the_architecture() -> None:
    reply = show(model(LLAMACPP), 4096)
    assert reply["model_info"]["gemma3.context_length"] == 131072
    assert reply["model_info"]["gemma3.embedding_length"] == 2560
    assert "embedding_length" not in reply["details"]


def test_what_the_mapping_file_declares_wins_over_backend_and_names() -> None:
    # An OpenAI backend reports no context length: Copilot would budget 4096 for gpt-4o.
    model = Model(
        "gpt-4o:latest",
        (Deployment("default", "gpt-4o", {"max_model_len": 8192}),),
        {"context_length": 128000, "capabilities": ["completion", "tools", "vision"]},
    )
    assert context_length(model, 4096) == 128000
    assert capabilities(model) == ["completion", "tools", "vision"]
    shown = show(model, 4096)
    assert shown["model_info"][shown["model_info"]["general.architecture"] + ".context_length"] == (
        128000
    )
    assert tag_entry(model, 4096)["details"]["context_length"] == 128000


@pytest.mark.parametrize(
    ("ftype", "level"),
    [("Q4_1", "Q4_1"), ("bf16", "BF16"), (7, ""), ("Q4_K - Medium", ""), ("Q" * 40, "")],
)
def test_quantization_level_is_llama_servers_file_type(ftype: Any, level: str) -> None:
    entry = tag_entry(model({"id": "m.gguf", "owned_by": "llamacpp", "meta": {"ftype": ftype}}), 1)
    assert entry["details"]["quantization_level"] == level
