"""Validated Ollama requests, as the schemas (app/ollama/schemas.py) load them.

Frozen and fully typed, so everything downstream of validation is checked by mypy. Messages and
tools stay as the client sent them: they are validated in the single pass that converts them
(messages.py), which costs far less than a nested schema per message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# "json" or a JSON schema object; None for free text.
Format = Literal["json"] | Mapping[str, Any] | None
# True, False or a level ("low", "medium", "high", "max"); None when the client said nothing.
Think = bool | str | None
# Validated `options`: known option names with typed values (options.py).
Options = Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Generation:
    model: str
    format: Format
    options: Options
    stream: bool
    keep_alive: float | None
    think: Think
    logprobs: bool
    top_logprobs: int


@dataclass(frozen=True, kw_only=True)
class ChatRequest(Generation):
    messages: Sequence[Any]
    tools: Sequence[Any]


@dataclass(frozen=True, kw_only=True)
class GenerateRequest(Generation):
    prompt: str
    suffix: str
    system: str | None
    template: str | None
    images: Sequence[str]
    context: Sequence[int]
    raw: bool


@dataclass(frozen=True, kw_only=True)
class EmbedRequest:
    model: str
    input: Any  # a string or a list of strings, checked by embeddings.embed_inputs
    truncate: bool
    dimensions: int | None
    options: Options
    keep_alive: float | None


@dataclass(frozen=True, kw_only=True)
class EmbeddingsRequest:
    model: str
    prompt: str
    options: Options
    keep_alive: float | None


@dataclass(frozen=True, kw_only=True)
class ModelRequest:
    """show, pull, push, delete: a model name and flags."""

    model: str
    stream: bool
    verbose: bool


@dataclass(frozen=True, kw_only=True)
class CopyRequest:
    source: str
    destination: str
