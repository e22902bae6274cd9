"""Which server is behind the backend URL, from what it already tells: its `/v1/models` answer
and that answer's headers (docs/backends/, "Detection").

The first rule that matches wins; each returns the evidence it matched, for the log. Anything
unrecognised is `generic`, the dialect every server accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

Evidence = str
Entries = list[dict[str, Any]]
Headers = Mapping[str, str]
Rule = Callable[[Entries, Headers, str], Evidence | None]

_OPENAI_OWNERS = frozenset({"openai", "system", "openai-internal"})


def _entries(listing: Any) -> Entries:
    data = listing.get("data") if isinstance(listing, dict) else None
    return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []


def _owned_by(entries: Entries, owner: str) -> bool:
    return any(entry.get("owned_by") == owner for entry in entries)


def _llama_server(entries: Entries, headers: Headers, _: str) -> str | None:
    if headers.get("server", "").lower().startswith("llama.cpp"):
        return "Server: llama.cpp"
    if _owned_by(entries, "llamacpp") and any("meta" in entry for entry in entries):
        return 'owned_by "llamacpp" with meta'
    return None


def _vllm(entries: Entries, headers: Headers, _: str) -> str | None:
    if _owned_by(entries, "vllm"):
        return 'owned_by "vllm"' + (
            " with max_model_len" if any("max_model_len" in e for e in entries) else ""
        )
    return None


def _llama_cpp_python(entries: Entries, headers: Headers, _: str) -> str | None:
    if _owned_by(entries, "me") and any("permissions" in entry for entry in entries):
        return 'owned_by "me" with permissions'
    return None


def _openrouter(entries: Entries, headers: Headers, url: str) -> str | None:
    if (urlsplit(url).hostname or "").endswith("openrouter.ai"):
        return "host openrouter.ai"
    if any("pricing" in entry and "context_length" in entry for entry in entries):
        return "models with pricing and context_length"
    return None


def _openai(entries: Entries, headers: Headers, url: str) -> str | None:
    if (urlsplit(url).hostname or "") == "api.openai.com":
        return "host api.openai.com"
    if "openai-version" in headers:
        return "openai-version header"
    if entries and all(entry.get("owned_by") in _OPENAI_OWNERS for entry in entries):
        return "owned_by openai/system"
    return None


_RULES: tuple[tuple[str, Rule], ...] = (
    ("llama-server", _llama_server),
    ("vllm", _vllm),
    ("llama-cpp-python", _llama_cpp_python),
    ("openrouter", _openrouter),
    ("openai", _openai),
)


def detect(listing: Any, headers: Mapping[str, str], url: str) -> tuple[str, Evidence]:
    """The flavour name for a backend, and why. `headers` with lower-case names."""
    entries = _entries(listing)
    for name, rule in _RULES:
        evidence = rule(entries, headers, url)
        if evidence is not None:
            return name, evidence
    return "generic", "nothing recognised"
