"""The routing policy: least in flight per weight, open breakers skipped, failover only before
the backend could have started, once per deployment, then the fallbacks."""

from __future__ import annotations

from collections import Counter

import pytest

from app.backend import Backend
from app.backends_file import BackendSpec
from app.config import Settings
from app.errors import BackendError, BadRequest, ProxyError, model_not_found
from app.router import Route, Router
from app.translate.models import Deployment, Model

SETTINGS = Settings(backend_url="http://unused.test/v1", breaker_fail_max=1)


def backend(name: str, weight: float = 1.0) -> Backend:
    spec = BackendSpec(name, f"http://{name}.test/v1", None, "generic", 1.0, 1.0, weight=weight)
    return Backend(SETTINGS, spec=spec)


def model(name: str, *backends: str) -> Model:
    return Model(f"{name}:latest", tuple(Deployment(b, f"{name}-on-{b}") for b in backends))


def router(backends: list[Backend], models: dict[str, Model] | None = None, **fallbacks) -> Router:
    known = models or {}

    def resolve(name: str) -> Model:
        if name not in known:
            raise model_not_found(name)  # as the catalogue does
        return known[name]

    by_name = {b.name: b for b in backends}
    return Router(by_name, resolve, {k: tuple(v) for k, v in fallbacks.items()}, "auto")


def test_the_least_loaded_deployment_is_picked() -> None:
    a, b, c = backend("a"), backend("b"), backend("c")
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
    chosen = router([a, b, c]).pick(list(model("m", "a", "b", "c").deployments))
    assert chosen.backend == "b"


def test_weights_scale_the_load_a_backend_takes() -> None:
    big, small = backend("big", weight=4), backend("small")
    big.in_flight, small.in_flight = 6, 1  # 7/4 < 2/1: the big one still has room
    assert router([big, small]).pick(list(model("m", "big", "small").deployments)).backend == "big"
    big.in_flight = 8  # 9/4 > 2/1
    assert (
        router([big, small]).pick(list(model("m", "big", "small").deployments)).backend == "small"
    )


def test_ties_are_spread_at_random() -> None:
    a, b = backend("a"), backend("b")
    routes = router([a, b])
    deployments = list(model("m", "a", "b").deployments)
    picks = Counter(routes.pick(deployments).backend for _ in range(400))
    assert 120 <= picks["a"] <= 280  # an even spread; a fixed choice would be 0 or 400


def test_a_backend_with_an_open_breaker_is_skipped_not_waited_on() -> None:
    a, b = backend("a"), backend("b")
    a.breaker.record_failure(BackendError("down"))  # fail_max 1: open
    b.in_flight = 50
    assert router([a, b]).pick(list(model("m", "a", "b").deployments)).backend == "b"


def failing(*failures: dict[str, ProxyError | None]) -> tuple[list[str], object]:
    """A call that fails per backend as told (None: answers), recording where it went."""
    tried: list[str] = []
    plan = {}
    for failure in failures:
        plan.update(failure)

    def call(route: Route) -> str:
        tried.append(route.backend.name)
        error = plan.get(route.backend.name)
        if error is not None:
            raise error
        return f"answered by {route.backend.name} as {route.target.backend_model}"

    return tried, call


@pytest.mark.parametrize(
    "error",
    [
        BackendError("refused", 502, failover=True),
        BackendError("breaker open", 503, failover=True),
        ProxyError("rate limited", 429, failover=True),
    ],
)
def test_a_failure_before_the_backend_started_goes_to_another_deployment(error) -> None:
    backends = [backend("a"), backend("b")]
    backends[1].in_flight = 5  # a is picked first
    tried, call = failing({"a": error})
    answer = router(backends).exchange(model("m", "a", "b"), call)
    assert answer == "answered by b as m-on-b"
    assert tried == ["a", "b"]


@pytest.mark.parametrize(
    "error",
    [
        BackendError("did not answer within 1s", 504),  # it may be generating
        BadRequest("bad input"),  # no other backend would take it either
        BackendError("the stream broke", 502),
    ],
)
def test_other_failures_are_the_answer(error) -> None:
    backends = [backend("a"), backend("b")]
    backends[1].in_flight = 5
    tried, call = failing({"a": error})
    with pytest.raises(ProxyError) as caught:
        router(backends).exchange(model("m", "a", "b"), call)
    assert caught.value is error
    assert tried == ["a"]


def test_each_deployment_is_tried_once_then_the_fallbacks_in_order() -> None:
    backends = [backend("a"), backend("b"), backend("c")]
    down = BackendError("refused", 502, failover=True)
    tried, call = failing({"a": down, "b": down})
    fallback = model("small", "c")
    routes = router(backends, {"small": fallback}, **{"big:latest": ["small"]})
    assert routes.exchange(model("big", "a", "b"), call) == "answered by c as small-on-c"
    assert sorted(tried[:2]) == ["a", "b"]
    assert tried[2:] == ["c"]


def test_when_everything_fails_the_last_failure_is_the_answer() -> None:
    backends = [backend("a")]
    tried, call = failing({"a": ProxyError("rate limited", 429, failover=True)})
    with pytest.raises(ProxyError, match="rate limited"):
        router(backends).exchange(model("m", "a"), call)
    assert tried == ["a"]


def test_only_the_final_attempt_is_marked_last() -> None:
    backends = [backend("a"), backend("b")]
    seen: list[bool] = []

    def call(route: Route) -> str:
        seen.append(route.last)
        raise BackendError("refused", 502, failover=True)

    with pytest.raises(BackendError):
        router(backends).exchange(model("m", "a", "b"), call)
    assert seen == [False, True]


def test_a_fallback_no_backend_serves_is_skipped_for_the_next() -> None:
    backends = [backend("a"), backend("c")]
    tried, call = failing({"a": BackendError("refused", 502, failover=True)})
    routes = router(backends, {"small": model("small", "c")}, **{"big:latest": ["gone", "small"]})
    assert routes.exchange(model("big", "a"), call) == "answered by c as small-on-c"
    assert tried == ["a", "c"]


def test_when_no_fallback_can_serve_the_deployment_failure_is_the_answer() -> None:
    down = BackendError("refused", 502, failover=True)
    tried, call = failing({"a": down})
    routes = router([backend("a")], {}, **{"big:latest": ["gone"]})
    with pytest.raises(BackendError) as caught:
        routes.exchange(model("big", "a"), call)
    assert caught.value is down  # not a 404 for a model the client never asked for
    assert tried == ["a"]
