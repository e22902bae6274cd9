"""`/api/generate`: templated prompts go to `/v1/chat/completions`, raw ones to
`/v1/completions`."""

from __future__ import annotations

import threading

import pytest
import responses

from app.config import Settings
from app.translate.ollama.context import decode, encode
from tests.checks import ollama_error
from tests.samples import PNG

from .helpers import (
    BACKEND,
    CHAT_URL,
    COMPLETIONS_URL,
    RFC3339_UTC,
    USAGE,
    add_stream,
    assert_metrics,
    chat_stream,
    completion,
    delta,
    lines,
    sent,
    single,
    sse,
)


def legacy(text: str, finish: str | None = None) -> dict:
    """One text_completion event (streamed or whole)."""
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1700000000,
        "model": "llama3.2",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
    }


def test_prompt_streams_through_chat_completions(client, backend):
    add_stream(backend, CHAT_URL, chat_stream("The", " sky"))
    request = {"model": "llama3.2", "prompt": "Why is the sky blue?", "system": "Be brief."}
    chunks = lines(client.post("/api/generate", json=request))
    assert [c["response"] for c in chunks] == ["The", " sky", ""]
    for chunk in chunks:
        assert chunk["model"] == "llama3.2"
        assert RFC3339_UTC.match(chunk["created_at"])
        assert "message" not in chunk
    assert [c["done"] for c in chunks] == [False, False, True]
    assert chunks[-1]["done_reason"] == "stop"
    assert chunks[-1]["eval_count"] == USAGE["completion_tokens"]
    assert_metrics(chunks[-1], every=True)
    assert sent(backend, CHAT_URL) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why is the sky blue?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_stream_false_gives_one_object_with_response(client, backend):
    backend.add(responses.POST, CHAT_URL, json=completion("Rayleigh scattering."))
    request = {
        "model": "LLAMA3.2",
        "prompt": "Why?",
        "stream": False,
        "options": {"temperature": 0, "num_predict": 10},
    }
    body = single(client.post("/api/generate", json=request))
    assert body["model"] == "LLAMA3.2"
    assert body["response"] == "Rayleigh scattering."
    assert body["done"] is True
    assert body["done_reason"] == "stop"
    assert "message" not in body
    assert_metrics(body, every=True)
    assert sent(backend, CHAT_URL) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Why?"}],
        "temperature": 0,
        "max_tokens": 10,
    }


def test_thinking_goes_to_the_thinking_field(client, backend):
    backend.add(responses.POST, CHAT_URL, json=completion("42", reasoning="Let me count."))
    request = {"model": "Qwen/Qwen3-8B", "prompt": "Answer?", "stream": False}
    body = single(client.post("/api/generate", json=request))
    assert (body["thinking"], body["response"]) == ("Let me count.", "42")


def test_images_are_sent_as_image_parts(client, backend):
    backend.add(responses.POST, CHAT_URL, json=completion("a pixel"))
    request = {"model": "llama3.2", "prompt": "What?", "images": [PNG], "stream": False}
    single(client.post("/api/generate", json=request))
    assert sent(backend, CHAT_URL)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        }
    ]


def test_raw_goes_to_completions_with_max_tokens(client, backend):
    add_stream(
        backend,
        COMPLETIONS_URL,
        sse(legacy("Once"), legacy(" upon", "length"), {"choices": [], "usage": USAGE}),
    )
    request = {"model": "llama3.2", "prompt": "<s>[INST] Tell [/INST]", "raw": True}
    chunks = lines(client.post("/api/generate", json=request))
    assert [c["response"] for c in chunks] == ["Once", " upon", ""]
    assert chunks[-1]["done_reason"] == "length"
    assert "context" not in chunks[-1]
    assert sent(backend, COMPLETIONS_URL) == {
        "model": "llama3.2",
        "prompt": "<s>[INST] Tell [/INST]",
        "max_tokens": 4096,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize("settings", [Settings(backend_url=BACKEND, completions_max_tokens=512)])
def test_raw_max_tokens_comes_from_num_predict_else_the_setting(client, backend):
    backend.add(responses.POST, COMPLETIONS_URL, json=legacy("x", "stop"))
    base = {"model": "llama3.2", "prompt": "p", "raw": True, "stream": False}
    body = single(client.post("/api/generate", json=base))
    assert body["response"] == "x"
    assert sent(backend, COMPLETIONS_URL)["max_tokens"] == 512
    single(client.post("/api/generate", json={**base, "options": {"num_predict": 7}}))
    assert sent(backend, COMPLETIONS_URL) == {"model": "llama3.2", "prompt": "p", "max_tokens": 7}


def test_suffix_goes_to_completions(client, backend):
    backend.add(responses.POST, COMPLETIONS_URL, json=legacy("middle", "stop"))
    request = {"model": "llama3.2", "prompt": "def f(", "suffix": "):", "stream": False}
    assert single(client.post("/api/generate", json=request))["response"] == "middle"
    upstream = sent(backend, COMPLETIONS_URL)
    assert (upstream["prompt"], upstream["suffix"]) == ("def f(", "):")


@pytest.mark.parametrize(
    "extra", [{"system": "You are terse."}, {"template": "{{ .Prompt }}"}, {"context": [1, 2, 3]}]
)
def test_raw_with_template_system_or_context_is_400(client, backend, extra):
    request = {"model": "llama3.2", "prompt": "x", "raw": True, **extra}
    message = ollama_error(client.post("/api/generate", json=request), 400)
    assert message == "raw mode does not support template, system, or context"
    assert len(backend.calls) == 0


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("keep_alive", "reason"), [(None, "load"), (0, "unload"), ("0s", "unload"), (-1, "load")]
)
def test_empty_prompt_loads_or_unloads(client, backend, stream, keep_alive, reason):
    request = {"model": "llama3.2", "prompt": "", "stream": stream, "keep_alive": keep_alive}
    body = single(client.post("/api/generate", json=request))
    assert body == {
        "model": "llama3.2",
        "created_at": body["created_at"],
        "response": "",
        "done": True,
        "done_reason": reason,
    }
    assert RFC3339_UTC.match(body["created_at"])
    assert all(call.request.url not in (CHAT_URL, COMPLETIONS_URL) for call in backend.calls)


def test_absent_prompt_is_a_load_too(client, backend):
    body = single(client.post("/api/generate", json={"model": "llama3.2"}))
    assert (body["response"], body["done_reason"]) == ("", "load")


def test_unknown_model_is_404_even_for_a_load(client, backend):
    response = client.post("/api/generate", json={"model": "ghost", "prompt": ""})
    assert ollama_error(response, 404) == "model 'ghost' not found"


def test_error_after_text_ends_with_an_error_line(client, backend):
    add_stream(backend, CHAT_URL, sse(delta("a"), {"object": "error", "message": "engine died"}))
    chunks = lines(client.post("/api/generate", json={"model": "llama3.2", "prompt": "x"}))
    assert chunks[0]["response"] == "a"
    assert list(chunks[-1]) == ["error"]
    assert "engine died" in chunks[-1]["error"]
    assert not any(c.get("done") for c in chunks)


def test_raw_with_images_is_400(client, backend):
    request = {"model": "llama3.2", "prompt": "x", "raw": True, "images": [PNG]}
    assert "images" in ollama_error(client.post("/api/generate", json=request), 400)


def test_invalid_image_is_400_naming_it(client, backend):
    request = {"model": "llama3.2", "prompt": "x", "images": ["not base64!"]}
    message = ollama_error(client.post("/api/generate", json=request), 400)
    assert "images[0]" in message


def test_raw_logprobs_are_converted_from_the_legacy_form(client, backend):
    answer = legacy("Hi", "stop")
    answer["choices"][0]["logprobs"] = {"tokens": ["Hi"], "token_logprobs": [-0.25],
                                        "top_logprobs": [{"Hi": -0.25, "Yo": -3.0}]}  # fmt: skip
    backend.add(responses.POST, COMPLETIONS_URL, json=answer)
    request = {"model": "llama3.2", "prompt": "p", "raw": True, "stream": False,
               "logprobs": True, "top_logprobs": 2}  # fmt: skip
    body = single(client.post("/api/generate", json=request))
    top = [{"token": "Hi", "logprob": -0.25}, {"token": "Yo", "logprob": -3.0}]
    assert body["logprobs"] == [{"token": "Hi", "logprob": -0.25, "top_logprobs": top}]
    assert sent(backend, COMPLETIONS_URL)["logprobs"] == 2


def test_format_is_sent_on_both_paths(client, backend):
    backend.add(responses.POST, CHAT_URL, json=completion("{}"))
    backend.add(responses.POST, COMPLETIONS_URL, json=legacy("{}", "stop"))
    schema = {"title": "My Answer!", "type": "object"}
    base = {"model": "llama3.2", "prompt": "p", "stream": False, "format": schema}
    single(client.post("/api/generate", json=base))
    single(client.post("/api/generate", json={**base, "raw": True}))
    expected = {"type": "json_schema", "json_schema": {"name": "My_Answer_", "schema": schema}}
    assert sent(backend, CHAT_URL)["response_format"] == expected
    assert sent(backend, COMPLETIONS_URL)["response_format"] == expected


def test_llama_cpp_timings_become_the_durations(client, backend):
    timings = {"prompt_n": 7, "prompt_ms": 12.5, "predicted_n": 3, "predicted_ms": 40.25}
    finish = {**delta(finish="stop"), "usage": USAGE, "timings": timings}
    add_stream(backend, CHAT_URL, sse(delta("Hi"), finish))
    final = lines(client.post("/api/generate", json={"model": "llama3.2", "prompt": "x"}))[-1]
    assert final["prompt_eval_duration"] == 12_500_000
    assert final["eval_duration"] == 40_250_000
    assert (final["prompt_eval_count"], final["eval_count"]) == (7, 3)
    assert_metrics(final)


@pytest.mark.parametrize("stream", [True, False])
def test_a_long_prompt_is_packed_into_its_context_off_the_event_loop(
    client, backend, monkeypatch, stream
):
    # Over 256 KiB the request's steps run in a thread, generate's context (the whole
    # conversation, encoded and compressed at the end of the answer) among them.
    threads = []

    def packing(messages):
        threads.append(threading.get_ident())
        return encode(messages)

    monkeypatch.setattr("app.translate.ollama.from_backend.encode_context", packing)
    prompt = "a long prompt " * 30_000
    if stream:
        add_stream(backend, CHAT_URL, chat_stream("Yes", " indeed"))
    else:
        backend.add(responses.POST, CHAT_URL, json=completion("Yes indeed"))
    reply = client.post(
        "/api/generate", json={"model": "llama3.2", "prompt": prompt, "stream": stream}
    )
    final = lines(reply)[-1] if stream else reply.get_json()
    assert decode(final["context"]) == [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": "Yes indeed"},
    ]
    assert threads
    assert threading.get_ident() not in threads
