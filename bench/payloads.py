"""The fixed bodies: what the nginx backend answers and what the load generator sends.

The answers imitate vLLM byte for byte in shape (compact JSON, `"usage":null` on every chunk
but the last, a usage-only chunk with `choices: []`), so the proxy parses what it would parse
in production. Sizes are realistic: ~40 tokens for a whole answer, 20 streamed pieces, one
768-float embedding.
"""

from __future__ import annotations

import json
import random
from typing import Any

from harness import openai_events as events

MODEL = "bench"
CREATED = 1700000000
STREAM_PIECES = 20
_ID = "chatcmpl-8f3c1a2b9d7e4f60a1b2c3d4e5f60718"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


_TEXT = (
    "The proxy should be invisible: a client asks in Ollama's dialect, the backend answers in "
    "OpenAI's, and every token crosses over with as little work as the translation needs, "
    "no more. Measure it beside the backend, never alone, because a noisy machine lies."
)
_WORDS = _TEXT.split()
ANSWER = " ".join(_WORDS[:40])
PIECES = [(" " if i else "") + word for i, word in enumerate(_WORDS[:STREAM_PIECES])]
USAGE = {"prompt_tokens": 26, "total_tokens": 66, "completion_tokens": 40}

MODELS = _dumps(
    {
        "object": "list",
        "data": [
            {
                "id": MODEL,
                "object": "model",
                "created": CREATED,
                "owned_by": MODEL,
                "max_model_len": 8192,
            }
        ],
    }
)

CHAT_COMPLETION = _dumps(
    {
        "id": _ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": ANSWER,
                    "refusal": None,
                    "tool_calls": [],
                    "reasoning_content": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "usage": {**USAGE, "prompt_tokens_details": None},
        "prompt_logprobs": None,
    }
)


def _delta(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return events.chunk(delta, finish, model=MODEL, chunk_id=_ID)


CHAT_STREAM = events.sse(
    _delta({"role": "assistant", "content": ""}),
    *(_delta({"content": piece}) for piece in PIECES),
    _delta({"content": ""}, "stop"),
    events.usage_chunk(USAGE["prompt_tokens"], STREAM_PIECES, model=MODEL, chunk_id=_ID),
    dumps=_dumps,
).decode()

_rng = random.Random(768)
EMBEDDING = _dumps(
    {
        "id": "embd-5b2e9c1f0a7d4e3b8c6f1a2d3e4b5c6d",
        "object": "list",
        "created": CREATED,
        "model": MODEL,
        "data": [
            {
                "index": 0,
                "object": "embedding",
                "embedding": [round(_rng.gauss(0, 0.05), 9) for _ in range(768)],
            }
        ],
        "usage": {"prompt_tokens": 9, "total_tokens": 9, "completion_tokens": 0},
    }
)

# What the clients send.
_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "In two sentences, why should a proxy be invisible?"},
]
OLLAMA_CHAT = _dumps(
    {"model": MODEL, "messages": _MESSAGES, "stream": False, "options": {"temperature": 0.7}}
)
OLLAMA_CHAT_STREAM = _dumps(
    {"model": MODEL, "messages": _MESSAGES, "stream": True, "options": {"temperature": 0.7}}
)
OLLAMA_GENERATE = _dumps(
    {"model": MODEL, "prompt": "Why should a proxy be invisible?", "stream": False}
)
OLLAMA_EMBED = _dumps({"model": MODEL, "input": "Why should a proxy be invisible?"})
OPENAI_CHAT = _dumps({"model": MODEL, "messages": _MESSAGES, "temperature": 0.7})
OPENAI_CHAT_STREAM = _dumps(
    {
        "model": MODEL,
        "messages": _MESSAGES,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)
OPENAI_EMBED = _dumps({"model": MODEL, "input": "Why should a proxy be invisible?"})
