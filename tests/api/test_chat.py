"""`/api/chat` -> `/v1/chat/completions` and back."""

from __future__ import annotations

import base64
import json

import pytest

from app import create_app
from app.config import Settings
from tests.checks import ollama_error
from tests.samples import PNG

from .helpers import (
    BACKEND,
    CHAT_URL,
    METRICS,
    RFC3339_UTC,
    USER,
    add_stream,
    assert_metrics,
    chat,
    chat_stream,
    completion,
    delta,
    lines,
    sent,
    single,
    sse,
    whole,
)


def test_stream_is_the_default_and_is_ndjson(client, backend):
    add_stream(backend, CHAT_URL, chat_stream("Hel", "lo"))
    chunks = lines(chat(client))
    assert [c["message"] for c in chunks[:-1]] == [
        {"role": "assistant", "content": "Hel"},
        {"role": "assistant", "content": "lo"},
    ]
    assert all(c["done"] is False and "done_reason" not in c for c in chunks[:-1])
    final = chunks[-1]
    assert final["message"] == {"role": "assistant", "content": ""}
    assert (final["done"], final["done_reason"]) == (True, "stop")
    assert (final["prompt_eval_count"], final["eval_count"]) == (7, 3)
    assert_metrics(final, every=True)
    for chunk in chunks:
        assert chunk["model"] == "llama3.2"
        assert RFC3339_UTC.match(chunk["created_at"])
    assert sent(backend, CHAT_URL) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_stream_false_gives_one_object(client, backend):
    whole(backend, completion("Hello there"))
    body = single(chat(client, stream=False))
    assert body["model"] == "llama3.2"
    assert RFC3339_UTC.match(body["created_at"])
    assert body["message"] == {"role": "assistant", "content": "Hello there"}
    assert (body["done"], body["done_reason"]) == (True, "stop")
    assert (body["prompt_eval_count"], body["eval_count"]) == (7, 3)
    assert_metrics(body, every=True)  # the Vercel AI SDK's provider requires them all
    upstream = sent(backend, CHAT_URL)
    assert "stream_options" not in upstream
    assert upstream.get("stream", False) is False


def test_options_are_mapped_to_openai_fields(client, backend):
    whole(backend)
    options = {"temperature": 0.2, "top_p": 0.9, "num_predict": 64, "seed": 42,
               "stop": ["\n\n", "User:"], "num_ctx": 8192, "top_k": 40}  # fmt: skip
    single(chat(client, stream=False, options=options, tools=[], keep_alive="5m"))
    # num_ctx is load-time only; top_k is not an OpenAI field on a generic backend; no tools: [].
    assert sent(backend, CHAT_URL) == {
        "model": "llama3.2",
        "messages": USER,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "seed": 42,
        "stop": ["\n\n", "User:"],
    }


@pytest.mark.parametrize(
    ("flavour", "expected"),
    [
        ("vllm", {"max_tokens": 9, "top_k": 40, "min_p": 0.1, "repetition_penalty": 1.1}),
        ("llama-cpp-python", {"max_tokens": 9, "top_k": 40, "min_p": 0.1, "repeat_penalty": 1.1}),
        ("openai", {"max_completion_tokens": 9}),
    ],
)
def test_options_follow_the_backend_flavour(backend, flavour, expected):
    client = create_app(Settings(backend_url=BACKEND, backend_flavour=flavour)).test_client()
    whole(backend)
    options = {"num_predict": 9, "top_k": 40, "min_p": 0.1, "repeat_penalty": 1.1}
    single(chat(client, stream=False, options=options))
    assert sent(backend, CHAT_URL) == {"model": "llama3.2", "messages": USER, **expected}


@pytest.mark.parametrize("options", [{"num_predict": -1}, {"num_predict": 0}, {"seed": -1}])
def test_sentinel_options_are_not_forwarded(client, backend, options):
    whole(backend)
    single(chat(client, stream=False, options=options))
    assert set(sent(backend, CHAT_URL)) == {"model", "messages"}


SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("json", {"type": "json_object"}),
        (SCHEMA, {"type": "json_schema", "json_schema": {"name": "schema", "schema": SCHEMA}}),
    ],
)
def test_format_becomes_response_format(client, backend, fmt, expected):
    whole(backend, completion("{}"))
    single(chat(client, stream=False, format=fmt))
    assert sent(backend, CHAT_URL)["response_format"] == expected


@pytest.mark.parametrize(
    ("name", "backend_id"),
    [
        ("llama3.2", "llama3.2"),
        ("LLAMA3.2:LATEST", "llama3.2"),
        ("Llama3.2:latest", "llama3.2"),
        ("qwen/qwen3-8b", "Qwen/Qwen3-8B"),
    ],
)
def test_names_resolve_case_insensitively_and_are_echoed(client, backend, name, backend_id):
    add_stream(backend, CHAT_URL, chat_stream("ok"))
    chunks = lines(chat(client, model=name))
    assert {c["model"] for c in chunks} == {name}
    assert sent(backend, CHAT_URL)["model"] == backend_id


@pytest.mark.parametrize(
    ("finish", "done_reason"),
    [("stop", "stop"), ("length", "length"), ("tool_calls", "stop"), ("content_filter", "stop")],
)
def test_done_reason_mapping(client, backend, finish, done_reason):
    add_stream(backend, CHAT_URL, chat_stream("x", finish=finish))
    assert lines(chat(client))[-1]["done_reason"] == done_reason


@pytest.mark.parametrize("stream", [True, False, None])
@pytest.mark.parametrize(
    ("keep_alive", "reason"),
    [(None, "load"), ("5m", "load"), (0, "unload"), ("0s", "unload"), ("0", "unload")],
)
def test_empty_messages_load_or_unload_without_calling_the_backend(
    client, backend, stream, keep_alive, reason
):
    body = single(chat(client, messages=[], stream=stream, keep_alive=keep_alive))
    assert body == {
        "model": "llama3.2",
        "created_at": body["created_at"],
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
    }
    assert RFC3339_UTC.match(body["created_at"])
    assert all(call.request.url != CHAT_URL for call in backend.calls)


def test_load_of_an_unknown_model_is_404(client, backend):
    response = chat(client, model="nope", messages=[])
    assert ollama_error(response, 404) == "model 'nope' not found"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ({"error": {"message": "model overloaded", "type": "server_error", "code": 500}}, 502),
        ({"object": "error", "message": "model overloaded", "type": "InternalServerError"}, 502),
        # vLLM rejects some requests only once the stream is open, as an event with an int HTTP
        # code; nothing was sent yet, so the client should get that status.
        ({"error": {"message": "model overloaded", "type": "BadRequestError", "code": 400}}, 400),
    ],
)
def test_backend_error_as_first_event_keeps_a_real_status(client, backend, error, status):
    add_stream(backend, CHAT_URL, sse(error))
    assert "model overloaded" in ollama_error(chat(client), status)


@pytest.mark.parametrize(
    "tail",
    [
        sse({"error": {"message": "CUDA out of memory", "type": "server_error"}}),
        sse(delta(finish="error")),
        sse(done=False),  # the stream ended without a finish_reason
    ],
)
def test_failure_after_content_ends_the_stream_with_an_error_line(client, backend, tail):
    head = sse(delta("", role="assistant"), delta("partial"), done=False)
    add_stream(backend, CHAT_URL, head + tail)
    chunks = lines(chat(client))
    assert chunks[0]["message"]["content"] == "partial"
    assert list(chunks[-1]) == ["error"]
    assert not any(c.get("done") for c in chunks)


def test_non_ascii_and_line_separators_stay_on_one_line(client, backend):
    text = "naïve\u2028next\u2029para 😀"
    add_stream(backend, CHAT_URL, chat_stream(text))
    response = chat(client)
    assert lines(response)[0]["message"]["content"] == text
    assert response.data.isascii()  # escaped, so str.splitlines() clients cannot split a line


def test_sse_comments_and_crlf_are_tolerated(client, backend):
    ok, finish = (json.dumps(delta("ok")).encode(), json.dumps(delta(finish="stop")).encode())
    body = b": ping\r\n\r\nevent: message\r\ndata: %s\r\n\r\ndata: %s\r\n\r\ndata: [DONE]\r\n\r\n"
    add_stream(backend, CHAT_URL, body % (ok, finish))
    chunks = lines(chat(client))
    assert [c["message"]["content"] for c in chunks] == ["ok", ""]
    assert chunks[-1]["done"] is True


JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(20)).decode()
WEBP = base64.b64encode(b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(8)).decode()
GIF = base64.b64encode(b"GIF89a" + bytes(10)).decode()


@pytest.mark.parametrize(
    ("image", "url"),
    [
        (PNG, f"data:image/png;base64,{PNG}"),
        (JPEG, f"data:image/jpeg;base64,{JPEG}"),
        (WEBP, f"data:image/webp;base64,{WEBP}"),
        (GIF, f"data:image/gif;base64,{GIF}"),
        (f"data:image/png;base64,{JPEG}", f"data:image/jpeg;base64,{JPEG}"),  # lenient client
        (PNG[:40] + "\n" + PNG[40:], f"data:image/png;base64,{PNG}"),  # MIME-wrapped
        (
            base64.b64encode(b"unknown bytes").decode(),
            "data:image/jpeg;base64,dW5rbm93biBieXRlcw==",
        ),
    ],
)
def test_images_become_image_url_parts_with_the_sniffed_type(client, backend, image, url):
    whole(backend, completion("a pixel"))
    messages = [{"role": "user", "content": "What is this?", "images": [image]}]
    single(chat(client, messages=messages, stream=False))
    image = {"type": "image_url", "image_url": {"url": url}}
    assert sent(backend, CHAT_URL)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}
    ]


def test_logprobs_are_requested_and_converted(client, backend):
    top = [{"token": "Hi", "logprob": -0.5}, {"token": "Yo", "logprob": -2.0}]
    token = {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": top}
    answer = completion("Hi")
    answer["choices"][0]["logprobs"] = {"content": [token]}
    whole(backend, answer)
    body = single(chat(client, stream=False, logprobs=True, top_logprobs=2))
    assert body["logprobs"] == [token]
    upstream = sent(backend, CHAT_URL)
    assert (upstream["logprobs"], upstream["top_logprobs"]) == (True, 2)


def test_without_usage_tokens_are_counted_from_the_stream(client, backend):
    # llama-cpp-python ignores include_usage; each streamed piece is one token.
    add_stream(backend, CHAT_URL, sse(delta("x"), delta("y"), delta(finish="stop")))
    final = lines(chat(client))[-1]
    assert "prompt_eval_count" not in final
    assert final["eval_count"] == 2
    assert_metrics(final)
    assert set(final) <= {"model", "created_at", "message", "done", "done_reason", *METRICS}


def test_a_large_event_split_across_reads_arrives_whole(client, backend):
    text = "x" * 200_000  # several network reads of the backend body
    add_stream(backend, CHAT_URL, chat_stream(text))
    assert lines(chat(client))[0]["message"]["content"] == text


def test_multi_line_data_and_a_missing_final_blank_line_are_tolerated(client, backend):
    event = json.dumps(delta("ok", finish="stop"), indent=1).replace("\n", "\ndata: ")
    add_stream(backend, CHAT_URL, b"data: " + event.encode())  # no blank line, no [DONE]
    assert [c["message"]["content"] for c in lines(chat(client))] == ["ok", ""]


@pytest.mark.parametrize("bad", [b"data: [1, 2]\n\n", b"data: {oops\n\n"])
def test_a_malformed_event_after_content_is_an_error_line(client, backend, bad):
    add_stream(backend, CHAT_URL, sse(delta("a"), done=False) + bad)
    chunks = lines(chat(client))
    assert chunks[0]["message"]["content"] == "a"
    assert "malformed" in chunks[-1]["error"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [([1, 2], "unexpected answer"), ({"choices": []}, "no choices"), ({"error": "boom"}, "boom")],
)
def test_an_unusable_whole_answer_is_502(client, backend, answer, expected):
    whole(backend, answer)
    assert expected in ollama_error(chat(client, stream=False), 502)
