"""OpenAI answers as a backend sends them: chat completion chunks, whole completions, SSE bodies.

One builder for every suite that plays the backend (API tests with a mocked backend, the
translator's unit tests, the benchmark's nginx answers). Shapes follow vLLM: every chunk
carries `logprobs` and `usage` keys, null unless set.
"""

from __future__ import annotations

import json
from typing import Any

Json = dict[str, Any]
CHUNK_ID = "chatcmpl-1"
CREATED = 1700000000


def chunk(
    delta: Json | None = None,
    finish: str | None = None,
    *,
    model: str = "m",
    chunk_id: str = CHUNK_ID,
    logprobs: Any = None,
    usage: Json | None = None,
    **extra: Any,
) -> Json:
    """One `chat.completion.chunk` with a single choice."""
    choice = {"index": 0, "delta": delta or {}, "logprobs": logprobs, "finish_reason": finish}
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [choice],
        "usage": usage,
        **extra,
    }


def delta_chunk(**fields: Any) -> Json:
    """A chunk whose delta has the fields given that are not None (content, reasoning...)."""
    return chunk({key: value for key, value in fields.items() if value is not None})


def usage_chunk(
    prompt: int, completion: int, *, model: str = "m", chunk_id: str = CHUNK_ID
) -> Json:
    """The trailing `choices: []` chunk that `stream_options.include_usage` asks for."""
    totals = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [],
        "usage": totals,
    }


def tool_fragment(index: int, call_id: str = "", name: str = "", arguments: str = "") -> Json:
    """A delta carrying one tool-call fragment: `id`, `type` and `name` only when given."""
    fragment: Json = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        fragment |= {"id": call_id, "type": "function"}
    if name:
        fragment["function"]["name"] = name
    return {"tool_calls": [fragment]}


def completion(
    content: str | None = "Hello!",
    *,
    finish: str = "stop",
    tool_calls: list[Json] | None = None,
    reasoning: str | None = None,
    model: str = "m",
    usage: Json | None = None,
) -> Json:
    """A whole (non-streamed) `chat.completion`."""
    message: Json = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    if reasoning is not None:
        message["reasoning"] = reasoning
    return {
        "id": CHUNK_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def sse(*events: Json | str, done: bool = True, dumps: Any = json.dumps) -> bytes:
    """An SSE body: each event a `data:` line then a blank line, `[DONE]` last."""
    out = []
    for event in events:
        payload = event if isinstance(event, str) else dumps(event)
        out.append(f"data: {payload}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()
