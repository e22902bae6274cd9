"""`/v1/responses`, `/v1/models/{model}` and `/api/status` through the Flask app, with a mocked
backend."""

from __future__ import annotations

import json

import pytest
import responses

from app.config import ModelMapping, Settings
from tests.checks import openai_error, sse_events
from tests.samples import RESPONSES_WEATHER_TOOL

from .helpers import BACKEND, CHAT_URL, add_stream, chat_stream, delta, sent, sse, whole

BODY = {"model": "llama3.2", "input": "Hi"}
NATIVE = Settings(backend_url=BACKEND, backend_flavour="llama-server-native")
ALIASED = Settings(
    backend_url=BACKEND,
    backend_flavour="generic",
    mapping=ModelMapping(aliases={"gpt-4o": "llama3.2"}),
)


def test_a_response_and_what_the_backend_was_sent(client, backend):
    whole(backend)
    codex_fields = {
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "k",
        "client_metadata": {"x": 1},
        "tools": [{"type": "web_search"}, RESPONSES_WEATHER_TOOL],
        "reasoning": {"effort": "medium", "summary": "auto"},
    }
    response = client.post("/v1/responses", json={**BODY, **codex_fields})
    assert response.status_code == 200
    result = response.get_json()
    assert result["id"].startswith("resp_")
    assert (result["status"], result["model"], result["store"]) == ("completed", "llama3.2", False)
    assert result["output"][0]["content"][0]["text"] == "Hello!"
    body = sent(backend, CHAT_URL)
    assert set(body) == {"model", "messages", "tools"}  # generic: no reasoning field either
    assert [tool["function"]["name"] for tool in body["tools"]] == ["get_weather"]


def test_a_stream_through_the_app(client, backend):
    add_stream(backend, CHAT_URL, chat_stream("Hel", "lo"))
    response = client.post("/v1/responses", json={**BODY, "stream": True})
    assert response.content_type.startswith("text/event-stream")
    got = sse_events(response.data)
    text = "".join(data["delta"] for name, data in got if name == "response.output_text.delta")
    assert text == "Hello"
    assert got[-1][0] == "response.completed"
    assert got[-1][1]["response"]["usage"]["output_tokens"] == 3


def test_a_failure_mid_stream_is_response_failed(client, backend):
    add_stream(backend, CHAT_URL, sse(delta("Hel"), {"error": {"message": "engine died"}}))
    got = sse_events(client.post("/v1/responses", json={**BODY, "stream": True}).data)
    assert [name for name, _ in got][-2:] == ["error", "response.failed"]
    assert got[-1][1]["response"]["error"]["message"] == "engine died"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**BODY, "previous_response_id": "resp_1"}, 400, "previous_response_id"),
        ({**BODY, "store": True}, 400, "store"),
        ({**BODY, "model": "nope"}, 404, "nope"),
        ({"model": "llama3.2"}, 400, "input"),
    ],
)
def test_client_errors_are_in_openais_shape(client, backend, body, status, field):
    error = openai_error(client.post("/v1/responses", json=body), status)
    assert field in error["message"]
    assert not [c for c in backend.calls if c.request.url == CHAT_URL]


TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "input": [{"type": "message", "role": ["user"], "content": "x"}]}, "role"),
        ({**BODY, "input": [{"role": {"a": 1}, "content": "x"}]}, "role"),
        ({**BODY, "input": [{"role": "user", "content": [{"type": []}]}]}, "content part"),
        ({**BODY, "input": [{"role": "user", "content": [{"type": {}}]}]}, "content part"),
        (
            {**BODY, "input": [{"type": "function_call_output", "call_id": "c",
                                "output": [{"type": ["x"]}]}]},
            "content part",
        ),
        ({**BODY, "tools": [TOOL], "tool_choice": {"type": "allowed_tools", "tools": 5}},
         "allowed_tools"),
        ({**BODY, "tools": [TOOL], "tool_choice": {"type": "allowed_tools", "tools": None}},
         "allowed_tools"),
        ({**BODY, "tools": [TOOL],
          "tool_choice": {"type": "allowed_tools", "tools": [{"name": ["f"]}]}},
         "allowed_tools"),
        ({**BODY, "tools": [TOOL],
          "tool_choice": {"type": "allowed_tools", "tools": [], "mode": {"x": 1}}},
         "mode"),
    ],
)  # fmt: skip
def test_values_of_the_wrong_type_are_a_400_not_a_500(client, backend, body, field):
    # Each was a 500: a list or an object where a string goes does not even hash.
    error = openai_error(client.post("/v1/responses", json=body), 400)
    assert field in error["message"]
    assert not [c for c in backend.calls if c.request.url == CHAT_URL]


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(17)},
        {"k" * 65: "v"},
        {"k": "v" * 513},
        {"k": {"nested": "object"}},
    ],
)
def test_metadata_is_bounded_as_openai_bounds_it(client, backend, metadata):
    # Every response event echoes it: 40 MB of metadata were encoded and sent three times.
    error = openai_error(client.post("/v1/responses", json={**BODY, "metadata": metadata}), 400)
    assert "metadata" in error["message"]
    assert not [c for c in backend.calls if c.request.url == CHAT_URL]


def test_metadata_within_the_bounds_is_echoed(client, backend):
    whole(backend)
    metadata = {f"k{i}": "v" * 512 for i in range(16)}
    response = client.post("/v1/responses", json={**BODY, "metadata": metadata})
    assert response.get_json()["metadata"] == metadata


def test_allowed_tools_offer_a_subset(client, backend):
    whole(backend)
    other = {**TOOL, "name": "g"}
    choice = {"type": "allowed_tools", "mode": "required",
              "tools": [{"type": "function", "name": "g"}, {"type": "web_search"}]}  # fmt: skip
    response = client.post("/v1/responses", json={**BODY, "tools": [TOOL, other],
                                                  "tool_choice": choice})  # fmt: skip
    assert response.status_code == 200
    body = sent(backend, CHAT_URL)
    assert [tool["function"]["name"] for tool in body["tools"]] == ["g"]
    assert body["tool_choice"] == "required"


def test_an_unknown_model_has_openais_code(client, backend):
    error = openai_error(client.post("/v1/responses", json={**BODY, "model": "nope"}), 404)
    assert (error["type"], error["code"]) == ("not_found_error", "model_not_found")


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
def test_stored_responses_do_not_exist(client, backend, method):
    # PUT and PATCH went on to the backend, with its key, through the /v1 pass-through.
    error = openai_error(client.open("/v1/responses/resp_1", method=method), 404)
    assert "stores none" in error["message"]
    assert [c.request.url for c in backend.calls if "/models" not in c.request.url] == []


def test_other_methods_on_responses_are_405(client, backend):
    assert openai_error(client.get("/v1/responses"), 405)["message"]


@pytest.mark.parametrize("settings", [NATIVE])
def test_a_native_backend_gets_the_request_unchanged(client, backend):
    raw = json.dumps({**BODY, "previous_response_id": "resp_1"}).encode()
    backend.add(responses.POST, f"{BACKEND}/responses", json={"id": "native"})
    response = client.post("/v1/responses", data=raw, content_type="application/json")
    assert response.get_json() == {"id": "native"}
    [call] = [c for c in backend.calls if c.request.url == f"{BACKEND}/responses"]
    assert call.request.body == raw


# --------------------------------------------------------------------------- /v1/models/{model}


@pytest.mark.parametrize("settings", [ALIASED])
@pytest.mark.parametrize(("asked", "owner"), [("llama3.2", "vllm"), ("gpt-4o", "vllm")])
def test_one_model_in_openais_shape_aliases_resolved(client, backend, asked, owner):
    response = client.get(f"/v1/models/{asked}")
    assert response.status_code == 200
    assert response.get_json() == {
        "id": asked,
        "object": "model",
        "created": 1700000000,
        "owned_by": owner,
    }


def test_a_model_id_with_a_slash(client, backend):
    assert client.get("/v1/models/Qwen/Qwen3-8B").get_json()["id"] == "Qwen/Qwen3-8B"


def test_an_unknown_model_is_openais_404(client, backend):
    error = openai_error(client.get("/v1/models/nope"), 404)
    assert error["code"] == "model_not_found"


# --------------------------------------------------------------------------- /api/status


def test_status_reports_cloud_features_disabled(client, backend):
    assert client.get("/api/status").get_json() == {"cloud": {"disabled": True, "source": "config"}}


def test_a_prompt_over_the_context_has_openais_code(client, backend):
    message = "request (8863 tokens) exceeds the available context size (2048 tokens)"
    backend.add(responses.POST, CHAT_URL, json={"error": {"message": message}}, status=400)
    error = openai_error(client.post("/v1/responses", json=BODY), 400)
    assert (error["message"], error["code"]) == (message, "context_length_exceeded")
