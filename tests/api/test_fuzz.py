"""Property tests: whatever a client sends, the proxy answers promptly and in the right shape.

Random JSON values, bodies shaped like each endpoint's request with random field values,
random bytes, random paths and methods. The backend (mocked) answers every request sensibly,
or refuses every connection: the point is the proxy's handling of its input. The properties:
never a 500, no other 5xx unless the backend failed (or the endpoint is one Ollama's 501
documents), errors in Ollama's shape (OpenAI's on /v1), streams that are valid NDJSON ending in
done:true or an error line, and an answer within seconds.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import re
import signal
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import responses
from flask.testing import FlaskClient
from hypothesis import event, given, settings
from hypothesis import strategies as st

from app import create_app
from app.config import Settings
from tests.samples import PNG

from .helpers import BACKEND, chat_stream, completion, sse

# The breaker would turn a run of connection failures into 503s for the examples after it;
# models_cache_ttl=0 makes every request ask the (mocked) backend for its models again.
SETTINGS = Settings(backend_url=BACKEND, models_cache_ttl=0, breaker_fail_max=1000)
FUZZ = settings(max_examples=300, deadline=None, database=None)
ANSWER_WITHIN = 5.0  # seconds; a request taking longer counts as a hang
MODELS = {
    "object": "list",
    "data": [
        {"id": "llama3.2", "object": "model", "max_model_len": 8192},
        {"id": "nomic-embed-text", "object": "model", "max_model_len": 2048},
        {"id": "Qwen/Qwen3-8B", "object": "model"},
    ],
}
# The proxy answers these (and blob uploads) with 501: the backend has no model store
# (README, Endpoints).
NOT_IMPLEMENTED = {"/api/push", "/api/create", "/api/copy", "/api/delete"}
NDJSON = "application/x-ndjson"
ERROR_TYPE = "application/json; charset=utf-8"


@functools.cache
def client() -> FlaskClient:
    """One app per module: Hypothesis runs each test many times, a fixture would run once."""
    return create_app(SETTINGS).test_client()


# --------------------------------------------------------------------------- the mocked backend


def _answer(fails: bool, request: Any) -> Any:
    if fails:
        return requests.ConnectionError("[Errno 111] Connection refused")
    path = urlsplit(request.url).path.removeprefix("/v1")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    stream = body.get("stream") is True
    if path == "/models":
        return 200, {}, json.dumps(MODELS)
    if path == "/chat/completions":
        if stream:
            return 200, {"Content-Type": "text/event-stream"}, chat_stream("Hi", " there")
        return 200, {}, json.dumps(completion())
    if path == "/completions":
        if stream:
            piece = {"choices": [{"index": 0, "text": "Hi", "finish_reason": "stop"}]}
            return 200, {"Content-Type": "text/event-stream"}, sse(piece)
        text = {"choices": [{"index": 0, "text": "Hi", "finish_reason": "stop"}]}
        return 200, {}, json.dumps(text)
    if path == "/embeddings":
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        data = [{"object": "embedding", "index": i, "embedding": [0.6, 0.8]} for i in range(count)]
        return 200, {}, json.dumps({"data": data, "usage": {"prompt_tokens": count}})
    return 200, {}, json.dumps({"ok": True})  # any other /v1 path the pass-through forwards


@contextlib.contextmanager
def backend(fails: bool) -> Iterator[None]:
    anything = re.compile(re.escape(BACKEND) + r".*")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            mock.add_callback(method, anything, callback=functools.partial(_answer, fails))
        yield


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise AssertionError(f"no answer within {seconds}s: the proxy hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- the properties


def send(
    method: str,
    path: str,
    *,
    fails: bool,
    body: Any = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> None:
    """Sends one request and checks every property of the answer."""
    if raw is None and body is not None:
        raw = json.dumps(body).encode()
    with backend(fails), time_limit(ANSWER_WITHIN):
        response = client().open(path, method=method, data=raw, content_type=content_type)
        with response:
            data = response.get_data()
    status = response.status_code
    event(f"{status} {response.mimetype}")  # the spread of answers, in --hypothesis-show-statistics
    context = f"{method} {path} {raw[:300] if raw else raw!r} -> {status} {data[:300]!r}"
    assert status != 500, context
    if status >= 500:
        documented = status == 501 and (
            path in NOT_IMPLEMENTED or (method == "POST" and path.startswith("/api/blobs/"))
        )
        assert documented or (fails and status in (502, 503, 504)), context
    if method == "HEAD":
        return
    if status >= 400:
        assert response.content_type == ERROR_TYPE, context
        error = json.loads(data)
        assert list(error) == ["error"], context
        if path.startswith("/v1/"):
            assert isinstance(error["error"], dict), context
            assert isinstance(error["error"].get("message"), str), context
        else:
            assert isinstance(error["error"], str), context
            assert error["error"], context
    elif status == 200 and response.mimetype == NDJSON:
        check_ndjson(data, path, context)
    elif status == 200 and path.startswith("/api/"):
        assert isinstance(json.loads(data), dict), context


def check_ndjson(data: bytes, path: str, context: str) -> None:
    assert data.endswith(b"\n"), context
    lines = [json.loads(line) for line in data.split(b"\n")[:-1]]
    assert lines, context
    assert all(isinstance(line, dict) for line in lines), context
    last = lines[-1]
    if "error" in last:
        assert isinstance(last["error"], str), context
        assert not any(line.get("done") for line in lines), context
    elif path == "/api/pull":
        assert last == {"status": "success"}, context
    else:
        assert last.get("done") is True, context
        assert not any(line.get("done") for line in lines[:-1]), context


# --------------------------------------------------------------------------- strategies


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)  # infinities included: json.dumps writes them, Ollama refuses
    | st.text(max_size=20)
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


json_values = st.recursive(scalars, _containers, max_leaves=12)
absurd_numbers = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([-1, 0, 2**31, 2**63, 2**64 + 1, 1e308, -1e308, 5e-324])
)
models = st.sampled_from(
    ["llama3.2", "llama3.2:latest", "LLAMA3.2", "nomic-embed-text", "Qwen/Qwen3-8B", "gone", ""]
)
OPTION_NAMES = [
    "temperature", "top_p", "top_k", "min_p", "num_predict", "num_ctx", "seed", "stop",
    "repeat_penalty", "presence_penalty", "frequency_penalty", "typical_p", "mirostat",
    "num_keep", "num_batch", "num_gpu", "num_thread", "use_mmap", "repeat_last_n",
]  # fmt: skip
options = st.dictionaries(
    st.sampled_from(OPTION_NAMES),
    absurd_numbers | st.lists(st.text(max_size=5), max_size=3) | st.booleans(),
    max_size=4,
)
images = st.lists(
    st.sampled_from([PNG, "%%% not base64", "", "aGVsbG8=", f"data:image/png;base64,{PNG}"])
    | st.binary(max_size=24).map(lambda raw: base64.b64encode(raw).decode()),
    max_size=2,
)
tool_call = st.fixed_dictionaries(
    {"function": st.fixed_dictionaries(
        {"name": st.text(max_size=8)},
        optional={"arguments": st.dictionaries(st.text(max_size=5), scalars, max_size=2)})},
    optional={"id": st.text(max_size=8), "type": st.just("function")},
)  # fmt: skip
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "tool"]),
        "content": st.text(max_size=30),
    },
    optional={
        "images": images,
        "thinking": st.text(max_size=10),
        "tool_calls": st.lists(tool_call, max_size=2),
        "tool_name": st.text(max_size=8),
    },
)
tool = st.fixed_dictionaries(
    {"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=8)},
        optional={"parameters": st.just({"type": "object", "properties": {}}) | json_values,
                  "description": st.text(max_size=10)})},
)  # fmt: skip
generation = {
    "stream": st.booleans(),
    "options": options,
    "format": st.sampled_from(["json", "", None, {"type": "object", "properties": {}}]),
    "keep_alive": st.sampled_from(["5m", "-1", "0", "1h30m", "3x"]) | absurd_numbers,
    "think": st.sampled_from([True, False, "high", "low", "max"]),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(-5, 30),
}
management = {
    "stream": st.booleans(),
    "verbose": st.booleans(),
    "insecure": st.booleans(),
    "name": models,
    "from": models,
    "files": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
}


def shaped(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies that look like the endpoint's requests, with values of the right type (absurd
    ones included) and, now and then, a field or two replaced by any JSON value at all."""
    keys = sorted({*required, *optional, "unknown_field"})
    return st.builds(
        lambda body, broken: {**body, **broken},
        st.fixed_dictionaries(required, optional=optional),
        st.dictionaries(st.sampled_from(keys), json_values, max_size=2),
    )


SHAPED: dict[tuple[str, str], st.SearchStrategy[dict[str, Any]]] = {
    ("POST", "/api/chat"): shaped(
        {"model": models, "messages": st.lists(message, max_size=4)},
        {**generation, "tools": st.lists(tool, max_size=2)},
    ),
    ("POST", "/api/generate"): shaped(
        {"model": models, "prompt": st.text(max_size=30)},
        {
            **generation,
            "suffix": st.text(max_size=10),
            "system": st.text(max_size=10),
            "template": st.text(max_size=10),
            "raw": st.booleans(),
            "images": images,
            "context": st.lists(st.integers(-(2**40), 2**40), max_size=4),
        },
    ),
    ("POST", "/api/embed"): shaped(
        {"model": models, "input": st.text(max_size=20) | st.lists(st.text(), max_size=4)},
        {
            "truncate": st.booleans(),
            "dimensions": st.integers(-5, 10**12),
            "options": options,
            "keep_alive": generation["keep_alive"],
        },
    ),
    ("POST", "/api/embeddings"): shaped(
        {"model": models, "prompt": st.text(max_size=20)}, {"options": options}
    ),
    ("POST", "/api/show"): shaped({"model": models}, management),
    ("POST", "/api/pull"): shaped({"model": models}, management),
    ("POST", "/api/push"): shaped({"model": models}, management),
    ("POST", "/api/create"): shaped({"model": models}, management),
    ("DELETE", "/api/delete"): shaped({"model": models}, management),
    ("POST", "/api/copy"): shaped({"source": models, "destination": models}, {}),
}
ENDPOINTS = sorted(SHAPED)
# The translating endpoints carry most of the logic: they get most of the examples.
WEIGHTED = ENDPOINTS + 3 * [
    ("POST", "/api/chat"),
    ("POST", "/api/generate"),
    ("POST", "/api/embed"),
]


# --------------------------------------------------------------------------- the tests


@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    body=json_values,
    fails=st.booleans(),
)
def test_any_json_value_gets_a_well_formed_answer(endpoint, body, fails) -> None:
    method, path = endpoint
    send(method, path, body=body, fails=fails)


@settings(FUZZ, max_examples=1000)
@given(data=st.data(), fails=st.booleans())
def test_endpoint_shaped_bodies_with_random_fields_get_a_well_formed_answer(data, fails) -> None:
    method, path = data.draw(st.sampled_from(WEIGHTED), label="endpoint")
    body = data.draw(SHAPED[(method, path)], label="body")
    send(method, path, body=body, fails=fails)


nested = st.integers(min_value=1, max_value=50_000).map(
    lambda depth: b'{"model": "llama3.2", "messages": ' + b"[" * depth + b"]" * depth + b"}"
)
raw_bodies = (
    st.binary(max_size=200)
    | st.text(max_size=100).map(str.encode)
    | nested
    | st.sampled_from([b"", b"null", b"[]", b"{}", b'{"model": "llama3.2"', b"\xff\xfe{}"])
)


@FUZZ
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    raw=raw_bodies,
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    ),
    fails=st.booleans(),
)
def test_any_bytes_get_a_well_formed_answer(endpoint, raw, content_type, fails) -> None:
    method, path = endpoint
    send(method, path, raw=raw, content_type=content_type, fails=fails)


segments = (st.text(max_size=12) | st.binary(max_size=6)).map(lambda part: quote(part, safe=""))
paths = st.tuples(
    st.sampled_from(["/", "/api/", "/v1/", "/api/blobs/", "/v1/chat/", ""]),
    st.lists(segments, max_size=3).map("/".join),
).map(lambda parts: "/" + (parts[0] + parts[1]).lstrip("/"))
methods = st.sampled_from(
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "BREW"]
)


@FUZZ
@given(
    method=methods,
    path=paths | st.sampled_from([p for _, p in ENDPOINTS]),
    body=st.none() | json_values,
    fails=st.booleans(),
)
def test_any_path_and_method_get_a_well_formed_answer(method, path, body, fails) -> None:
    send(method, path, body=body, fails=fails)
