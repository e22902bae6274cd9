"""`/`, `/api/version`, `/api/tags`, `/api/show`, `/api/ps` and HEAD on them: the listings are
built from the backend's `/v1/models`."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time

import pytest
import requests
import responses

from app.config import ModelMapping, Settings
from tests.checks import ollama_error

from .helpers import BACKEND, MODELS_URL, RFC3339, USER, calls_to, completion, single

HEX64 = re.compile(r"^[0-9a-f]{64}$")
DETAIL_KEYS = {
    "parent_model",
    "format",
    "family",
    "families",
    "parameter_size",
    "quantization_level",
    "context_length",
}
EXPECTED_NAMES = [
    "llama3.2:latest",
    "Qwen/Qwen3-8B:latest",
    "nomic-embed-text:latest",
    "gpt-oss:20b",
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_root_says_ollama_is_running(client, method):
    response = client.open("/", method=method)
    assert response.status_code == 200
    assert response.content_type == "text/plain; charset=utf-8"
    assert response.data == (b"Ollama is running" if method == "GET" else b"")


def test_version_is_numeric_and_at_least_0_6_4(client):
    body = single(client.get("/api/version"))
    assert list(body) == ["version"]
    parts = body["version"].split(".")
    assert len(parts) == 3
    assert all(part.isdigit() for part in parts)
    assert tuple(int(part) for part in parts) >= (0, 6, 4)


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, ollama_version="0.13.5")])
def test_version_is_the_configured_one(client):
    assert single(client.get("/api/version")) == {"version": "0.13.5"}


@pytest.mark.parametrize("path", ["/api/version", "/api/tags"])
def test_head_answers_like_get_without_a_body(client, backend, path):
    response = client.head(path)
    assert response.status_code == 200
    assert response.content_type == "application/json; charset=utf-8"
    assert response.data == b""


def test_tags_lists_every_backend_model_in_ollama_shape(client, backend):
    models = single(client.get("/api/tags"))["models"]
    assert [m["name"] for m in models] == EXPECTED_NAMES
    for entry in models:
        assert entry["model"] == entry["name"]
        assert HEX64.match(entry["digest"])
        assert type(entry["size"]) is int
        assert RFC3339.match(entry["modified_at"])
        assert set(entry["details"]) >= DETAIL_KEYS
        assert entry["details"]["families"] == [entry["details"]["family"]]
        assert isinstance(entry["capabilities"], list)
        assert entry["capabilities"]
    assert len({m["digest"] for m in models}) == len(models)


def test_tags_details_and_capabilities_come_from_the_backend_entry(client, backend):
    models = {m["name"]: m for m in single(client.get("/api/tags"))["models"]}
    llama = models["llama3.2:latest"]
    assert llama["digest"] == hashlib.sha256(b"llama3.2").hexdigest()
    assert llama["details"]["context_length"] == 8192
    assert llama["details"]["family"] == "llama"
    assert llama["modified_at"].startswith("2023-11-14T22:13:20")
    assert "completion" in llama["capabilities"]
    assert "tools" in llama["capabilities"]
    qwen = models["Qwen/Qwen3-8B:latest"]
    assert qwen["details"]["context_length"] == 32768
    assert qwen["details"]["parameter_size"] == "8B"
    assert "thinking" in qwen["capabilities"]
    assert models["nomic-embed-text:latest"]["capabilities"] == ["embedding"]
    # No max_model_len: the configured default context length.
    assert models["gpt-oss:20b"]["details"]["context_length"] == 4096


def test_tags_are_cached_between_calls(client, backend):
    first = client.get("/api/tags")
    second = client.get("/api/tags")
    assert first.data == second.data
    assert calls_to(backend, MODELS_URL) == 1


def test_tags_of_an_empty_backend_is_an_empty_array(client, backend):
    backend.replace(responses.GET, MODELS_URL, json={"object": "list", "data": []})
    assert single(client.get("/api/tags")) == {"models": []}


@pytest.mark.parametrize(
    "settings",
    [Settings(backend_url=BACKEND, mapping=ModelMapping(aliases={"fast": "llama3.2"}))],
)
def test_tags_show_aliases_instead_of_the_backend_id(client, backend):
    names = [m["name"] for m in single(client.get("/api/tags"))["models"]]
    assert names == ["fast:latest", *EXPECTED_NAMES[1:]]


RICH = {
    "object": "list",
    "data": [
        {"id": "smollm2-135m.gguf", "object": "model", "owned_by": "llamacpp",
         "meta": {"n_ctx_train": 8192, "n_embd": 576, "n_params": 134515008, "size": 269030400}},
        {"id": "meta/llama-70b", "meta": {"n_params": 70553706496, "n_ctx": 4096}},
        {"id": "openai/gpt-4o", "top_provider": {"context_length": 128000},
         "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
         "supported_parameters": ["tools", "reasoning", "temperature"]},
        {"id": "acme/plain", "context_length": 2048, "supported_parameters": ["temperature"],
         "architecture": {"input_modalities": ["text"]}},
        {"id": "acme/vectors", "architecture": {"output_modalities": ["embedding"]}},
    ],
}  # fmt: skip


def test_what_the_backend_reports_about_a_model_wins(client, backend):
    backend.replace(responses.GET, MODELS_URL, json=RICH)
    models = {m["name"]: m for m in single(client.get("/api/tags"))["models"]}
    small = models["smollm2-135m.gguf:latest"]
    assert small["size"] == 269030400
    assert small["details"]["parameter_size"] == "135M"
    assert small["details"]["embedding_length"] == 576
    assert small["details"]["context_length"] == 8192
    big = models["meta/llama-70b:latest"]["details"]
    assert (big["parameter_size"], big["context_length"]) == ("70.6B", 4096)
    gpt = models["openai/gpt-4o:latest"]
    assert gpt["capabilities"] == ["completion", "tools", "vision", "thinking"]
    assert gpt["details"]["context_length"] == 128000
    assert models["acme/plain:latest"]["capabilities"] == ["completion"]
    assert models["acme/vectors:latest"]["capabilities"] == ["embedding"]
    show = single(client.post("/api/show", json={"model": "smollm2-135m.gguf"}))
    arch = show["model_info"]["general.architecture"]
    assert show["model_info"][f"{arch}.embedding_length"] == 576
    assert show["model_info"][f"{arch}.context_length"] == 8192


def test_a_models_answer_without_a_list_is_502(client, backend):
    backend.replace(responses.GET, MODELS_URL, json={"models": []})
    assert "no data list" in ollama_error(client.get("/api/tags"), 502)


MAPPED = Settings(
    backend_url=BACKEND,
    mapping=ModelMapping(aliases={"fast": "llama3.2", "hidden": "not-listed"}, default_model="x"),
)


@pytest.mark.parametrize("settings", [MAPPED])
@pytest.mark.parametrize(
    ("name", "backend_id"),
    [("fast", "llama3.2"), ("llama3.2", "llama3.2"), ("hidden:latest", "not-listed"),
     ("anything-else", "x")],
)  # fmt: skip
def test_aliases_and_the_default_model_resolve(client, backend, name, backend_id):
    body = single(client.post("/api/show", json={"model": name}))
    assert f"as {backend_id}\n" in body["modelfile"]


def test_ps_lists_models_as_loaded_forever(client, backend):
    models = single(client.get("/api/ps"))["models"]
    assert [m["name"] for m in models] == EXPECTED_NAMES
    llama = models[0]
    assert llama["model"] == "llama3.2:latest"
    assert HEX64.match(llama["digest"])
    assert RFC3339.match(llama["expires_at"])
    assert llama["expires_at"] > "2100"
    assert llama["context_length"] == 8192
    assert llama["size_vram"] == llama["size"]
    assert set(llama["details"]) >= DETAIL_KEYS


@pytest.mark.parametrize("name", ["llama3.2", "llama3.2:latest", "LLAMA3.2:Latest"])
def test_show_describes_the_model(client, backend, name):
    body = single(client.post("/api/show", json={"model": name}))
    info = body["model_info"]
    arch = info["general.architecture"]
    assert arch == "llama"
    assert info[f"{arch}.context_length"] == 8192
    assert body["capabilities"] == ["completion", "tools"]
    assert ".Tools" in body["template"]  # consistent with the tools capability
    assert body["details"]["family"] == "llama"
    assert {"parent_model", "format", "families", "parameter_size"} <= set(body["details"])
    assert RFC3339.match(body["modified_at"])
    assert "FROM llama3.2:latest" in body["modelfile"]


def test_show_of_an_embedding_model(client, backend):
    body = single(client.post("/api/show", json={"model": "nomic-embed-text"}))
    assert body["capabilities"] == ["embedding"]
    assert ".Tools" not in body["template"]
    info = body["model_info"]
    assert info[f"{info['general.architecture']}.context_length"] == 2048


def test_show_accepts_the_legacy_name_field(client, backend):
    body = single(client.post("/api/show", json={"name": "Qwen/Qwen3-8B"}))
    assert body["model_info"]["qwen2.context_length"] == 32768


@pytest.mark.parametrize("name", ["nope", "llama3.2:8b", "llama3"])
def test_show_of_an_unknown_model_is_404(client, backend, name):
    message = ollama_error(client.post("/api/show", json={"model": name}), 404)
    assert message == f"model '{name}' not found"


def test_a_miss_right_after_a_fetch_does_not_refetch(client, backend):
    single(client.get("/api/tags"))
    ollama_error(client.post("/api/show", json={"model": "nope"}), 404)
    # The list is under 2 s old: a miss does not hammer the backend.
    assert calls_to(backend, MODELS_URL) == 1


NO_CACHE = Settings(backend_url=BACKEND, models_cache_ttl=0)


@pytest.mark.parametrize("settings", [NO_CACHE])
def test_a_model_new_on_the_backend_becomes_usable(client, backend):
    ollama_error(client.post("/api/show", json={"model": "phi4"}), 404)
    backend.replace(responses.GET, MODELS_URL, json={"object": "list", "data": [{"id": "phi4"}]})
    assert single(client.post("/api/show", json={"model": "phi4"}))["capabilities"]


@pytest.mark.parametrize("settings", [NO_CACHE])
def test_the_last_good_list_is_served_while_the_backend_is_down(client, backend):
    first = single(client.get("/api/tags"))
    backend.replace(responses.GET, MODELS_URL, body=requests.ConnectionError("Connection refused"))
    assert single(client.get("/api/tags")) == first
    assert calls_to(backend, MODELS_URL) == 2


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND)])
def test_auto_detection_takes_the_dialect_from_the_model_list(app, client, backend, caplog):
    caplog.set_level(logging.INFO)
    # The mocked list says owned_by "vllm": vLLM's dialect, said once with its evidence.
    backend.add(responses.POST, f"{BACKEND}/chat/completions", json=completion("hi"))
    body = {"model": "llama3.2", "messages": USER, "stream": False, "think": True}
    assert client.post("/api/chat", json=body).status_code == 200
    sent_body = json.loads(backend.calls[-1].request.body)
    assert sent_body["chat_template_kwargs"] == {"enable_thinking": True, "thinking": True}
    client.get("/api/tags")
    detected = [r for r in caplog.records if "detected as" in r.getMessage()]
    assert len(detected) == 1
    assert "vllm" in detected[0].getMessage()
    assert 'owned_by "vllm"' in detected[0].getMessage()


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, backend_flavour="openai")])
def test_an_explicit_flavour_wins_over_detection(client, backend, caplog):
    backend.add(responses.POST, f"{BACKEND}/chat/completions", json=completion("hi"))
    body = {"model": "llama3.2", "messages": USER, "stream": False, "think": False}
    assert client.post("/api/chat", json=body).status_code == 200
    assert json.loads(backend.calls[-1].request.body)["reasoning_effort"] == "none"
    assert not [r for r in caplog.records if "detected as" in r.getMessage()]


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, models_cache_ttl=0)])
def test_a_created_stamp_that_is_just_now_is_not_a_modification_time(client, backend):
    # llama.cpp's server stamps every listing with the current time: modified_at must not
    # change from one listing to the next.
    seen = []
    for offset in (0, 40):
        entry = {"id": "fresh", "object": "model", "created": int(time.time()) + offset}
        backend.replace(responses.GET, MODELS_URL, json={"data": [entry]})
        seen.append(single(client.get("/api/tags"))["models"][0]["modified_at"])
    assert seen[0] == seen[1]
