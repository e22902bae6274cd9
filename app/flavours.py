"""Backend quirks, in one place: rewrites of a standard OpenAI request for servers that
misread parts of it. Each rule cites what the server does with the standard form.

(Option and `think` fields per flavour live with their tables in ollama/options.py and
ollama/requests_out.py; this module is for behaviour that would otherwise break a request.)
"""

from __future__ import annotations

from typing import Any


def adapt_chat_body(body: dict[str, Any], flavour: str) -> dict[str, Any]:
    if flavour != "llamacpp":
        return body
    if "tools" in body:
        # llama-cpp-python ignores tools unless tool_choice is given explicitly.
        body.setdefault("tool_choice", "auto")
    for message in body["messages"]:
        if message.get("content") is None:
            # llama-cpp-python answers 500 to an assistant message with null content.
            message["content"] = ""
    if body.get("logprobs") and not body.get("top_logprobs"):
        # llama.cpp returns no logprobs at all unless at least one alternative is asked for.
        body["top_logprobs"] = 1
    response_format = body.get("response_format")
    if response_format and response_format["type"] == "json_schema":
        # llama-cpp-python rejects OpenAI's json_schema form (500) but takes its own extension,
        # which llama.cpp's server understands too.
        schema = response_format["json_schema"]["schema"]
        body["response_format"] = {"type": "json_object", "schema": schema}
    return body


def takes_any_request_id(flavour: str) -> bool:
    """False where X-Request-ID must be a UUID: llama-cpp-python answers anything else with an
    empty 400 (its request-ID middleware validates the header)."""
    return flavour != "llamacpp"


def streams_tool_calls(flavour: str) -> bool:
    """False where streaming with tools fails: llama-cpp-python answers a streamed tool request
    with an empty 200 ("Automatic streaming tool choice is not supported")."""
    return flavour != "llamacpp"


def supports_suffix(flavour: str) -> bool:
    """False for vLLM, whose /v1/completions has no fill-in-the-middle (`suffix` is rejected or
    silently ignored depending on the version); answered as Ollama answers a model without the
    `insert` capability."""
    return flavour != "vllm"


def decodes_webp(flavour: str) -> bool:
    """False for llama.cpp, whose image loader (stb_image) has no WebP decoder; Ollama re-encodes
    WebP to PNG for it, which would take an imaging library here."""
    return flavour != "llamacpp"


def embeds_in_batches(flavour: str) -> bool:
    """False where a list input is embedded wrongly: llama-cpp-python shifts every vector after
    the first by a token count, so each input gets a request of its own."""
    return flavour != "llamacpp"
