"""BACKENDS_FILE: valid files load with their defaults; every mistake stops the start, naming
the backend and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.config import ConfigError, Settings


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "backends.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def settings(tmp_path: Path, document: Any, **env: str) -> Settings:
    return Settings.from_env({"BACKENDS_FILE": write(tmp_path, document), **env})


TYPICAL = {
    "backends": [
        {"name": "vllm-a", "base_url": "http://vllm-a:8000/v1", "flavour": "vllm", "weight": 2},
        {"name": "vllm-b", "base_url": "http://vllm-b:8000", "flavour": "vllm"},
        {"name": "embedder", "base_url": "http://llama:8080/v1", "models": ["nomic-embed"]},
        {
            "name": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key_env": "OPENAI_KEY_FOR_PROXY",
            "flavour": "openai",
            "models": ["gpt-4o-mini"],
            "prefix": "openai/",
            "timeouts": {"connect": 3, "request": 120},
        },
    ],
    "fallbacks": {"qwen3": ["openai/gpt-4o-mini"]},
}


def test_the_typical_setup_loads_with_defaults_for_what_it_leaves_out(tmp_path: Path) -> None:
    loaded = settings(tmp_path, TYPICAL, OPENAI_KEY_FOR_PROXY="sk-secret", REQUEST_TIMEOUT="200")
    a, b, embedder, openai = loaded.backends
    assert (a.name, a.base_url, a.flavour, a.weight) == (
        "vllm-a",
        "http://vllm-a:8000/v1",
        "vllm",
        2.0,
    )
    assert b.base_url == "http://vllm-b:8000/v1"  # a bare host gets /v1, as OPENAI_API_BASE_URL
    assert (embedder.flavour, embedder.models, embedder.request_timeout) == (
        "auto",
        ("nomic-embed",),
        200.0,
    )
    assert (openai.api_key, openai.prefix) == ("sk-secret", "openai/")
    assert (openai.connect_timeout, openai.request_timeout) == (3.0, 120.0)
    assert loaded.fallbacks == {"qwen3": ("openai/gpt-4o-mini",)}


def test_without_a_file_the_variables_are_the_one_backend(tmp_path: Path) -> None:
    [only] = Settings.from_env(
        {"OPENAI_API_BASE_URL": "http://vllm:8000", "OPENAI_API_KEY": "k"}
    ).backends
    assert (only.name, only.base_url, only.api_key) == ("default", "http://vllm:8000/v1", "k")


def backend(**fields: Any) -> dict[str, Any]:
    return {"backends": [{"name": "gpu-1", "base_url": "http://gpu-1:8000/v1", **fields}]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ([], 'must be an object with "backends"'),
        ({"backends": []}, '"backends" must be a list of 1 to 64 backends'),
        ({"backends": [{"base_url": "http://x/v1"}]}, "backends[0].name must be"),
        ({"backends": [{"name": "GPU 1", "base_url": "http://x"}]}, "backends[0].name must be"),
        ({"backends": [{"name": "gpu-1"}]}, 'backends[0] ("gpu-1").base_url is required'),
        (backend(base_url="ftp://x"), 'backends[0] ("gpu-1").base_url: must be an http://'),
        (backend(flavour="ollama"), 'backends[0] ("gpu-1").flavour: must be one of auto'),
        (backend(weight=0), 'backends[0] ("gpu-1").weight: must be a number above 0'),
        (backend(weight="2"), 'backends[0] ("gpu-1").weight'),
        (backend(models=[]), 'backends[0] ("gpu-1").models: must be a non-empty list'),
        (backend(models=["ok", 3]), 'backends[0] ("gpu-1").models'),
        (backend(timeouts={"read": 5}), 'backends[0] ("gpu-1").timeouts'),
        (backend(timeouts={"request": 0}), 'backends[0] ("gpu-1").timeouts'),
        (backend(api_key="sk-inline"), "unknown field 'api_key'"),  # keys never in the file
        (backend(api_key_env="NOT_SET_ANYWHERE"), "the variable NOT_SET_ANYWHERE is not set"),
        (
            {"backends": [backend()["backends"][0], backend()["backends"][0]]},
            'the name "gpu-1" is used twice',
        ),
        ({**backend(), "fallbacks": {"m": "x"}}, 'fallbacks["m"] must be a non-empty list'),
        ({**backend(), "fallbacks": []}, '"fallbacks" must map'),
    ],
)  # fmt: skip
def test_every_mistake_stops_the_start_naming_backend_and_field(
    tmp_path: Path, document: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, document)
    assert str(caught.value).startswith("BACKENDS_FILE=")
    assert message in str(caught.value)


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BACKENDS_FILE"):
        Settings.from_env({"BACKENDS_FILE": str(tmp_path / "nowhere.json")})


def test_the_example_the_readme_shows_is_valid() -> None:
    example = Path(__file__).parents[2] / "deploy" / "backends.example.json"
    loaded = Settings.from_env({"BACKENDS_FILE": str(example), "OPENAI_KEY": "sk-example"})
    assert [spec.name for spec in loaded.backends] == ["vllm-a", "vllm-b", "embedder", "openai"]
    assert loaded.backends[3].api_key == "sk-example"
    assert loaded.fallbacks == {"Qwen/Qwen3-8B": ("openai/gpt-4o-mini",)}
