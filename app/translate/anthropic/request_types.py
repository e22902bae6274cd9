"""A validated Anthropic Messages request, as app/anthropic/schemas.py loads it.

Messages, system blocks and tools stay as the client sent them: they are checked in the single
pass that converts them (to_backend.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class MessagesRequest:
    model: str
    # Required on /v1/messages, absent on /v1/messages/count_tokens.
    max_tokens: int | None
    messages: Sequence[Any]
    system: str | Sequence[Any] | None
    stop_sequences: Sequence[str]
    temperature: float | None
    top_p: float | None
    top_k: int | None
    tools: Sequence[Any]
    # {"type": "auto" | "any" | "tool" | "none", "name"?, "disable_parallel_tool_use"?}
    tool_choice: Mapping[str, Any] | None
    # {"type": "enabled", "budget_tokens"} | {"type": "disabled"} | {"type": "adaptive"}
    thinking: Mapping[str, Any] | None
    # {"effort"?, "format"?: {"type": "json_schema", "schema"}}
    output_config: Mapping[str, Any] | None
    stream: bool
