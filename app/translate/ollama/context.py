"""`context` on `/api/generate`: a conversation an OpenAI backend can continue.

Ollama returns the token ids of prompt and answer, and a client that sends them back continues
the conversation (deprecated, but ComfyUI, some n8n flows and older scripts rely on it; ComfyUI
fails with KeyError when it is missing). An OpenAI backend has no token ids to give, so the
proxy returns the conversation itself (system prompt, prompts and answers, as text), compressed
and packed into the integer list clients expect. Sent back, it becomes chat history. The
integers are opaque to clients, carry no server state (any replica can read them), and start
with a negative marker no tokenizer produces, so real Ollama token ids are recognised and
ignored. Images and thinking are not carried.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from ...errors import BadRequest
from ..limits import MAX_CONTEXT

MARKER = -0x4F4C4C41  # "OLLA", negated: token ids are never negative
VERSION = 1
# A conversation this large is no longer a prompt; it also bounds decompression (zip bombs).
MAX_CONVERSATION_BYTES = 16 * 1024 * 1024


def encode(messages: list[dict[str, str]]) -> list[int]:
    """The packed conversation; [] (no conversation to continue) for one too large to be read
    back (decode's bound, or a request's), which is then not worth the work of encoding."""
    if sum(len(m["content"]) for m in messages) > MAX_CONVERSATION_BYTES:
        return []
    data = zlib.compress(json.dumps(messages, separators=(",", ":")).encode(), 6)
    padded = data + b"\0" * (-len(data) % 3)
    # Three bytes per integer: a fraction of the JSON size of one integer per byte.
    if len(padded) // 3 > MAX_CONTEXT - 3:
        return []  # a context no request may carry back
    body = [int.from_bytes(padded[i : i + 3], "big") for i in range(0, len(padded), 3)]
    return [MARKER, VERSION, len(data), *body]


def decode(context: Sequence[int]) -> list[dict[str, str]]:
    """The conversation a context carries; [] for none or for Ollama's own token ids."""
    if len(context) < 3 or context[0] != MARKER:
        return []
    version, length, body = context[1], context[2], context[3:]
    if version != VERSION or not 0 <= length <= 3 * len(body):
        raise BadRequest("invalid context: it was not produced by this server")
    try:
        data = b"".join(value.to_bytes(3, "big") for value in body)[:length]
        inflater = zlib.decompressobj()
        text = inflater.decompress(data, MAX_CONVERSATION_BYTES)
        if inflater.unconsumed_tail:
            raise BadRequest("invalid context: the conversation it carries is too large")
        messages = json.loads(text)
    except (OverflowError, zlib.error, ValueError, RecursionError):
        raise BadRequest("invalid context: it is damaged") from None
    if not isinstance(messages, list) or not all(_is_turn(m) for m in messages):
        raise BadRequest("invalid context: it is damaged")
    return messages


def _is_turn(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("role"), str)
        and isinstance(message.get("content"), str)
    )


def conversation(
    prompt: str, system: str | None, history: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The turns of a templated generate: system prompt, earlier turns, then the prompt.

    A system prompt sent again with a context replaces the one the context carries instead of
    appearing twice (clients such as ComfyUI send it on every call).
    """
    turns = [turn for turn in history if turn["role"] != "system"]
    if system:
        leading = [{"role": "system", "content": system}]
    else:
        leading = [turn for turn in history[:1] if turn["role"] == "system"]
    return [*leading, *turns, {"role": "user", "content": prompt}]
