"""What the Anthropic and Responses translators share when they build a chat completions
request: ids, thinking levels, where late system text goes, a token estimate, and the output
limit that must fit the model's context.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from ..errors import BadRequest
from .ollama.request_types import Think

# Effort words of both APIs -> Ollama's think levels (low, medium, high, max), so one mapping
# (to_backend.thinking_params) tells every backend.
_EFFORT_THINK: dict[str, Think] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "max",
    "max": "max",
}
EFFORTS = tuple(_EFFORT_THINK)
# A prompt's tokens are estimated from its characters; real tokenizers give between 2.5 and 4
# characters per token on English and code. The output limit is checked against a generous
# estimate, so a prompt that fits by the estimate fits for the backend too.
_CHARS_PER_TOKEN = 4
_SAFE_CHARS_PER_TOKEN = 2


def function_tool(where: str, tool: dict[str, Any], schema_key: str) -> dict[str, Any]:
    """A chat function tool from a flat declaration (Anthropic's with `input_schema`,
    Responses' with `parameters`); only the fields chat completions know are kept."""
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name: is required")
    function: dict[str, Any] = {"name": name, "parameters": tool.get(schema_key)}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def new_id(prefix: str) -> str:
    """`prefix` and 24 random hex digits: `msg_…`, `resp_…`, `toolu_…` as the APIs spell them."""
    return prefix + secrets.token_hex(12)


def effort_think(effort: str) -> Think:
    return _EFFORT_THINK[effort]


def place_system_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat with system text only at its start, and no two user turns in a row.

    Many chat templates refuse a system message that is not first (Claude Code sends one after
    the user's turn) and some refuse two user turns in a row: a late system message's text
    joins the user turn next to it (its text is kept, in place), and adjacent user turns merge.

    A run of turns is merged in one pass (_Run), not two at a time: joining each turn onto the
    text merged so far copies that text every time, quadratic in the run (32,000 user turns of
    1,000 characters took 38 s of CPU).
    """
    placed: list[dict[str, Any]] = []
    run: _Run | None = None  # the turns merging into placed[-1]
    for message in messages:
        role = message["role"]
        if role == "system" and placed and placed[-1]["role"] != "system":
            role = "user"
            message = {"role": "user", "content": message["content"]}  # noqa: PLW2901
        if placed and placed[-1]["role"] == role in ("user", "system"):
            if run is None:
                run = _Run(placed[-1])
            run.add(message["content"])
            continue
        if run is not None:
            placed[-1] = run.merged()
            run = None
        placed.append(message)
    if run is not None:
        placed[-1] = run.merged()
    return placed


class _Run:
    """Adjacent turns of one role, merged as joining them two at a time would: strings joined
    by blank lines (empty ones skipped) while all are strings; once a turn has content parts,
    everything is parts (the text so far one part, each later string a part of its own)."""

    def __init__(self, first: dict[str, Any]) -> None:
        self.first = first
        self.texts: list[str] = []
        self.parts: list[dict[str, Any]] | None = None
        self.add(first["content"])

    def add(self, content: Any) -> None:
        if self.parts is not None:
            self.parts.extend(_parts(content))
        elif isinstance(content, str):
            self.texts.append(content)
        else:
            self.parts = _parts(self._text()) + _parts(content)

    def _text(self) -> str:
        return "\n\n".join(text for text in self.texts if text)

    def merged(self) -> dict[str, Any]:
        return {**self.first, "content": self._text() if self.parts is None else self.parts}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)


def estimate_tokens(messages: Sequence[dict[str, Any]], tools: Sequence[Any] = ()) -> int:
    """Characters / 4 of everything the model reads: roles, texts, tool calls and the tool
    definitions; images count nothing (as in Ollama's own estimate). At least 1."""
    return max(1, _characters(messages, tools) // _CHARS_PER_TOKEN)


def _characters(messages: Sequence[dict[str, Any]], tools: Sequence[Any]) -> int:
    total = 0
    for message in messages:
        total += len(message["role"])
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text", "")) for part in content if part["type"] == "text")
        if message.get("tool_calls"):
            total += len(json.dumps(message["tool_calls"], ensure_ascii=False))
    if tools:
        total += len(json.dumps(tools, ensure_ascii=False))
    return total


def output_limit(
    max_tokens: int | None,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[Any],
    context_length: int | None,
) -> dict[str, int]:
    """`num_predict` for sampling_params, or nothing.

    Agents ask for far more than a small model's context (Claude Code: 32,000). vLLM refuses a
    request whose prompt plus `max_tokens` exceeds the model's window, so when that may happen
    the limit is left out: the backend then stops at the end of the context, which is within
    what the client allowed anyway.
    """
    if max_tokens is None:
        return {}
    if context_length is not None:
        prompt = _characters(messages, tools) // _SAFE_CHARS_PER_TOKEN
        if max_tokens + prompt >= context_length:
            return {}
    return {"num_predict": max_tokens}
