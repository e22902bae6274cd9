"""A validated OpenAI Responses request, as app/responses/schemas.py loads it.

`input` items and tools stay as the client sent them: they are checked in the single pass that
converts them (to_backend.py). The rest is echoed in the response object, as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ResponsesRequest:
    model: str
    input: str | Sequence[Any]
    instructions: str | None
    tools: Sequence[Any]
    # "auto" | "none" | "required" | {"type": "function", "name"} | {"type": "allowed_tools"...}
    tool_choice: str | Mapping[str, Any] | None
    max_output_tokens: int | None
    temperature: float | None
    top_p: float | None
    # {"effort"?, "summary"?}
    reasoning: Mapping[str, Any] | None
    # {"format"?: {"type": "text" | "json_object" | "json_schema", ...}, "verbosity"?}
    text: Mapping[str, Any] | None
    parallel_tool_calls: bool | None
    metadata: Mapping[str, Any] | None
    stream: bool
