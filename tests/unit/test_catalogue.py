"""The model catalogue: Ollama names over the backend's /v1/models, cached and resolved."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import responses

from app import catalogue as catalogue_module
from app.backend import Backend
from app.backends_file import BackendSpec
from app.catalogue import Catalogue
from app.config import ModelMapping, Settings
from app.errors import BackendError, NotFound
from app.translate.models import Deployment, Model, ollama_name

BASE = "http://backend.test/v1"
MODELS_URL = f"{BASE}/models"
LISTING: dict[str, Any] = {
    "object": "list",
    "data": [
        {"id": "llama3.2", "object": "model", "owned_by": "vllm", "max_model_len": 131072},
        {"id": "Qwen/Qwen3-8B", "object": "model", "owned_by": "vllm", "max_model_len": 32768},
        {"id": "user/model:7b", "object": "model"},
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def backend_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(
        catalogue_module, "time", SimpleNamespace(monotonic=fake.monotonic, time=time.time)
    )
    return fake


def make(mapping: ModelMapping | None = None, ttl: float = 10.0) -> Catalogue:
    backend = Backend(Settings(backend_url=BASE, max_retries=0, breaker_fail_max=100))
    return Catalogue([backend], mapping or ModelMapping(), ttl)


def serve(api: responses.RequestsMock, body: Any = LISTING, status: int = 200) -> None:
    api.get(MODELS_URL, json=body, status=status)


def names(catalogue: Catalogue) -> list[str]:
    return [model.name for model in catalogue.models()]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama3.2", "llama3.2:latest"),
        ("llama3.2:3b", "llama3.2:3b"),
        ("user/model:7b", "user/model:7b"),
        ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B:latest"),
        ("registry.local:5000/model", "registry.local:5000/model:latest"),
    ],
)
def test_ollama_name(name: str, expected: str) -> None:
    assert ollama_name(name) == expected


def test_listing_shows_backend_ids_as_ollama_names(backend_api: responses.RequestsMock) -> None:
    serve(backend_api)
    catalogue = make()
    assert names(catalogue) == ["llama3.2:latest", "Qwen/Qwen3-8B:latest", "user/model:7b"]
    assert catalogue.models()[1].info == LISTING["data"][1]


@pytest.mark.parametrize(
    ("requested", "backend_id"),
    [
        ("llama3.2", "llama3.2"),
        ("llama3.2:latest", "llama3.2"),
        ("LLAMA3.2:Latest", "llama3.2"),
        (" llama3.2 ", "llama3.2"),
        ("qwen/qwen3-8b", "Qwen/Qwen3-8B"),
        ("Qwen/Qwen3-8B:latest", "Qwen/Qwen3-8B"),
        ("user/model:7b", "user/model:7b"),
        ("USER/MODEL:7B", "user/model:7b"),
    ],
)
def test_names_resolve_like_ollamas(
    backend_api: responses.RequestsMock, requested: str, backend_id: str
) -> None:
    serve(backend_api)
    assert make().resolve(requested).backend_id == backend_id


@pytest.mark.parametrize("requested", ["llama3", "llama3.2:3b", "user/model", "mistral"])
def test_unknown_models_are_ollamas_404(
    backend_api: responses.RequestsMock, requested: str
) -> None:
    serve(backend_api)
    with pytest.raises(NotFound) as caught:
        make().resolve(requested)
    assert caught.value.status == 404
    assert caught.value.message == f"model '{requested}' not found"


ALIASES = ModelMapping(aliases={"qwen3": "Qwen/Qwen3-8B", "coder:7b": "Qwen/Qwen2.5-Coder-7B"})


def test_aliases_replace_their_target_in_listings(backend_api: responses.RequestsMock) -> None:
    serve(backend_api)
    catalogue = make(ALIASES)
    # The alias whose target the backend does not serve is not listed.
    assert names(catalogue) == ["qwen3:latest", "llama3.2:latest", "user/model:7b"]
    deployment = Deployment("default", "Qwen/Qwen3-8B", LISTING["data"][1])
    assert catalogue.models()[0] == Model("qwen3:latest", (deployment,))


@pytest.mark.parametrize(
    ("requested", "backend_id"),
    [
        ("qwen3", "Qwen/Qwen3-8B"),
        ("QWEN3:latest", "Qwen/Qwen3-8B"),
        ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
        ("coder:7b", "Qwen/Qwen2.5-Coder-7B"),
    ],
)
def test_aliases_resolve_both_ways(
    backend_api: responses.RequestsMock, requested: str, backend_id: str
) -> None:
    serve(backend_api)
    catalogue = make(ALIASES)
    catalogue.models()
    assert catalogue.resolve(requested).backend_id == backend_id


def test_an_alias_resolves_even_when_the_backend_is_down(
    backend_api: responses.RequestsMock,
) -> None:
    serve(backend_api, {"error": {"message": "down"}}, status=503)
    assert make(ALIASES).resolve("coder:7b").backend_id == "Qwen/Qwen2.5-Coder-7B"


def test_an_alias_carries_its_targets_metadata_from_the_first_request(
    backend_api: responses.RequestsMock,
) -> None:
    # /api/show on a fresh worker must report the backend's max_model_len.
    serve(backend_api)
    assert make(ALIASES).resolve("qwen3").info == LISTING["data"][1]


def test_declared_metadata_reaches_listed_aliased_and_default_models(
    backend_api: responses.RequestsMock,
) -> None:
    serve(backend_api)
    declared = {"context_length": 40960, "capabilities": ["completion", "thinking"]}
    mapping = ModelMapping(
        aliases={"qwen3": "Qwen/Qwen3-8B"},
        default_model="Qwen/Qwen3-8B",
        models={"Qwen/Qwen3-8B": declared},
    )
    catalogue = make(mapping)
    assert [m.declared for m in catalogue.models() if m.backend_id == "Qwen/Qwen3-8B"] == [declared]
    assert catalogue.resolve("qwen3").declared == declared
    assert catalogue.resolve("unknown-name").declared == declared
    assert catalogue.resolve("llama3.2").declared == {}


def test_default_model_catches_unknown_names(backend_api: responses.RequestsMock) -> None:
    serve(backend_api)
    catalogue = make(ModelMapping(default_model="Qwen/Qwen3-8B"))
    assert catalogue.resolve("gpt-4").backend_id == "Qwen/Qwen3-8B"
    assert catalogue.resolve("llama3.2").backend_id == "llama3.2"


def test_listing_is_cached_for_the_ttl(backend_api: responses.RequestsMock, clock: Clock) -> None:
    serve(backend_api)
    catalogue = make(ttl=10.0)
    catalogue.models()
    catalogue.resolve("llama3.2")
    clock.now += 9.9
    catalogue.models()
    assert len(backend_api.calls) == 1
    clock.now += 0.2
    catalogue.models()
    assert len(backend_api.calls) == 2


def test_concurrent_requests_on_a_cold_cache_fetch_once(
    backend_api: responses.RequestsMock,
) -> None:
    release = threading.Event()

    def slow_listing(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        release.wait(5)
        return 200, {}, json.dumps(LISTING)

    backend_api.add_callback(responses.GET, MODELS_URL, callback=slow_listing)
    catalogue = make()
    results: list[str] = []
    workers = [
        threading.Thread(target=lambda: results.append(catalogue.resolve("llama3.2").backend_id))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    threading.Event().wait(0.2)  # let every worker reach the fetch
    release.set()
    for worker in workers:
        worker.join(timeout=5)
    assert results == ["llama3.2"] * 4
    assert len(backend_api.calls) == 1


def test_a_zero_ttl_fetches_every_time(backend_api: responses.RequestsMock) -> None:
    serve(backend_api)
    catalogue = make(ttl=0)
    catalogue.models()
    catalogue.models()
    assert len(backend_api.calls) == 2


def test_a_miss_refetches_but_not_more_often_than_every_two_seconds(
    backend_api: responses.RequestsMock, clock: Clock
) -> None:
    serve(backend_api)
    catalogue = make(ttl=60.0)
    catalogue.models()
    backend_api.replace(
        responses.GET, MODELS_URL, json={"data": [*LISTING["data"], {"id": "new-model"}]}
    )
    with pytest.raises(NotFound):
        catalogue.resolve("new-model")  # fetched 0 s ago: no refetch yet
    assert len(backend_api.calls) == 1
    clock.now += 2.5
    assert catalogue.resolve("new-model").backend_id == "new-model"
    assert len(backend_api.calls) == 2
    assert catalogue.resolve("new-model:latest").backend_id == "new-model"
    assert len(backend_api.calls) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_the_last_good_list_is_served_while_the_backend_is_down(
    backend_api: responses.RequestsMock, status: int
) -> None:
    serve(backend_api)
    catalogue = make(ttl=0)
    before = names(catalogue)
    backend_api.replace(responses.GET, MODELS_URL, body="upstream gone", status=status)
    assert names(catalogue) == before
    assert catalogue.resolve("llama3.2").backend_id == "llama3.2"
    assert len(backend_api.calls) == 3


def test_the_last_good_list_is_served_when_the_backend_is_unreachable(
    backend_api: responses.RequestsMock,
) -> None:
    serve(backend_api)
    catalogue = make(ttl=0)
    catalogue.models()
    backend_api.replace(responses.GET, MODELS_URL, body=requests.ConnectionError("refused"))
    assert names(catalogue) == ["llama3.2:latest", "Qwen/Qwen3-8B:latest", "user/model:7b"]


def test_a_backend_down_from_the_start_is_an_error(backend_api: responses.RequestsMock) -> None:
    serve(backend_api, {"error": {"message": "Loading model"}}, status=503)
    with pytest.raises(BackendError) as caught:
        make().models()
    assert caught.value.status == 503
    assert "Loading model" in caught.value.message


@pytest.mark.parametrize(
    "body", [{"object": "list"}, {"data": "models"}, [{"id": "x"}], "models", 42]
)
def test_an_answer_without_a_data_list_is_a_backend_error(
    backend_api: responses.RequestsMock, body: Any
) -> None:
    serve(backend_api, body)
    with pytest.raises(BackendError) as caught:
        make().models()
    assert (caught.value.status, caught.value.message) == (
        502,
        "backend's /models answer has no data list",
    )


def test_invalid_json_is_a_backend_error(backend_api: responses.RequestsMock) -> None:
    backend_api.get(MODELS_URL, body="<html>oops</html>", status=200)
    with pytest.raises(BackendError, match="backend sent invalid JSON for /models"):
        make().models()


def test_entries_without_a_usable_id_are_skipped(backend_api: responses.RequestsMock) -> None:
    entries = [{"id": "ok"}, {"id": ""}, {"id": 5}, {"object": "model"}, "x", None]
    serve(backend_api, {"data": entries})
    assert names(make()) == ["ok:latest"]


# --------------------------------------------------------------------------- several backends


def several(
    api: responses.RequestsMock, lists: dict[str, Any], ttl: float = 10.0, **specs: Any
) -> Catalogue:
    """Backends named after `lists`' keys, each serving its list (or failing with it)."""
    backends = []
    for name, listing in lists.items():
        url = f"http://{name}.test/v1"
        spec = BackendSpec(name, url, None, "generic", 1.0, 1.0, **specs.get(name, {}))
        backends.append(Backend(Settings(max_retries=0, breaker_fail_max=100), spec=spec))
        if isinstance(listing, Exception):
            api.get(f"{url}/models", body=listing)
        elif isinstance(listing, int):
            api.get(f"{url}/models", status=listing, body="<html>404</html>")
        else:
            api.get(f"{url}/models", json={"data": [{"id": model} for model in listing]})
    return Catalogue(backends, ModelMapping(), ttl)


def deployments(model: Model) -> list[tuple[str, str]]:
    return [(d.backend, d.backend_id) for d in model.deployments]


def test_the_listing_is_the_union_and_one_name_is_one_model(
    backend_api: responses.RequestsMock,
) -> None:
    catalogue = several(
        backend_api, {"a": ["qwen3", "embed"], "b": ["qwen3"], "c": ["gpt-4o"]},
        c={"prefix": "openai/"},
    )  # fmt: skip
    assert names(catalogue) == ["qwen3:latest", "embed:latest", "openai/gpt-4o:latest"]
    assert deployments(catalogue.resolve("qwen3")) == [("a", "qwen3"), ("b", "qwen3")]
    assert deployments(catalogue.resolve("openai/gpt-4o")) == [("c", "gpt-4o")]
    with pytest.raises(NotFound):
        catalogue.resolve("gpt-4o")  # only under its prefix


def test_a_declared_model_list_is_served_without_discovery(
    backend_api: responses.RequestsMock,
) -> None:
    # b serves no /v1/models at all (404): what it declares is all there is to know.
    catalogue = several(
        backend_api, {"a": ["discovered"], "b": 404}, b={"models": ("declared-1", "declared-2")}
    )
    assert deployments(catalogue.resolve("declared-2")) == [("b", "declared-2")]
    assert "declared-1:latest" in names(catalogue)


def test_a_down_backend_drops_out_after_its_cache_expires_and_comes_back(
    backend_api: responses.RequestsMock, clock: Clock
) -> None:
    catalogue = several(backend_api, {"a": ["alpha"], "b": ["beta"]})
    assert names(catalogue) == ["alpha:latest", "beta:latest"]
    backend_api.replace(responses.GET, "http://b.test/v1/models", body=requests.ConnectionError())
    clock.now += 11  # the cache expired: b is asked again, and fails
    assert names(catalogue) == ["alpha:latest"]  # the listing did not fail with it
    # Its models still resolve: a request gets b's real error, not a misleading 404.
    assert deployments(catalogue.resolve("beta")) == [("b", "beta")]
    backend_api.replace(responses.GET, "http://b.test/v1/models", json={"data": [{"id": "beta"}]})
    clock.now += 11
    assert names(catalogue) == ["alpha:latest", "beta:latest"]


def test_the_listing_fails_only_when_no_backend_ever_answered(
    backend_api: responses.RequestsMock,
) -> None:
    down = requests.ConnectionError("refused")
    catalogue = several(backend_api, {"a": down, "b": requests.ConnectionError("refused")})
    with pytest.raises(BackendError, match="unreachable"):
        catalogue.models()
    catalogue = several(backend_api, {"c": down, "d": ["delta"]})
    assert names(catalogue) == ["delta:latest"]


def test_a_name_no_answering_backend_lists_gets_the_silent_backends_error(
    backend_api: responses.RequestsMock,
) -> None:
    # b has never answered: it may be the one serving "qwen3". A 404 would send `ollama run`
    # pulling a model that is only briefly unreachable.
    catalogue = several(backend_api, {"a": ["alpha"], "b": requests.ConnectionError("refused")})
    with pytest.raises(BackendError, match=r"backend b\.test unreachable"):
        catalogue.resolve("qwen3")
    assert deployments(catalogue.resolve("alpha")) == [("a", "alpha")]
    backend_api.replace(responses.GET, "http://b.test/v1/models", json={"data": [{"id": "x"}]})
    with pytest.raises(NotFound):  # every backend has spoken: now it is Ollama's 404
        catalogue.resolve("qwen3")
