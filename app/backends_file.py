"""BACKENDS_FILE: several OpenAI-compatible backends behind one Ollama endpoint.

JSON, like the mapping file: the runtime needs no YAML parser for it, and a strict format
leaves no doubt about types. Keys never appear in the file: a backend names the environment
variable that holds its key. Every problem is reported naming the backend and the field.

    {"backends": [{"name": "vllm-a", "base_url": "http://vllm-a:8000/v1",
                   "api_key_env": "VLLM_KEY", "flavour": "vllm", "weight": 2,
                   "models": ["Qwen/Qwen3-8B"], "prefix": "", "timeouts": {"connect": 5,
                   "request": 300}}, ...],
     "fallbacks": {"qwen3-8b": ["openai/gpt-4o-mini"]}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# A backend's name is a metrics label and a log field: short, and plain.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_FIELDS = frozenset(
    {"name", "base_url", "api_key_env", "flavour", "models", "prefix", "weight", "timeouts"}
)
MAX_BACKENDS = 64


@dataclass(frozen=True)
class BackendSpec:
    name: str
    base_url: str
    api_key: str | None
    flavour: str
    connect_timeout: float
    request_timeout: float
    # Served models, when declared: then nothing is discovered from /v1/models.
    models: tuple[str, ...] | None = None
    # Put before the backend's ids in the names clients see ("openai/" -> "openai/gpt-4o").
    prefix: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class Defaults:
    """What a backend gets for the fields it leaves out (the single-backend settings), and the
    settings' own validators, so a field means the same here as in the environment."""

    flavour: str
    connect_timeout: float
    request_timeout: float
    parse_url: Callable[[str], str]
    parse_flavour: Callable[[str], str]


class FileError(ValueError):
    pass


def load(
    text: str, env: Mapping[str, str], defaults: Defaults
) -> tuple[tuple[BackendSpec, ...], dict[str, tuple[str, ...]]]:
    """The backends and the fallback models the file's text declares."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict) or not set(document) <= {"backends", "fallbacks"}:
        raise FileError('must be an object with "backends" and, optionally, "fallbacks"')
    entries = document.get("backends")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BACKENDS:
        raise FileError(f'"backends" must be a list of 1 to {MAX_BACKENDS} backends')
    specs = tuple(_backend(n, entry, env, defaults) for n, entry in enumerate(entries))
    names = [spec.name for spec in specs]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise FileError(f'backends: the name "{duplicate}" is used twice')
    return specs, _fallbacks(document.get("fallbacks", {}))


def _backend(position: int, entry: Any, env: Mapping[str, str], defaults: Defaults) -> BackendSpec:
    where = f"backends[{position}]"
    if not isinstance(entry, dict):
        raise FileError(f"{where} must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise FileError(f"{where}.name must be 1-63 of a-z 0-9 . _ - (it is a metrics label)")
    where = f'{where} ("{name}")'
    unknown = set(entry) - _FIELDS
    if unknown:
        raise FileError(f"{where}: unknown field {sorted(unknown)[0]!r}")

    def field(key: str, check: Any, default: Any) -> Any:
        if key not in entry:
            return default
        try:
            return check(entry[key])
        except (ValueError, TypeError) as exc:
            raise FileError(f"{where}.{key}: {exc}") from None

    base_url = field("base_url", lambda v: defaults.parse_url(_text(v)), None)
    if base_url is None:
        raise FileError(f"{where}.base_url is required")
    key_name = field("api_key_env", _text, None)
    api_key = None
    if key_name is not None:
        api_key = env.get(key_name) or None
        if api_key is None:
            raise FileError(f"{where}.api_key_env: the variable {key_name} is not set")
    timeouts = field("timeouts", _timeouts, {})
    return BackendSpec(
        name=name,
        base_url=base_url,
        api_key=api_key,
        flavour=field("flavour", lambda v: defaults.parse_flavour(_text(v)), defaults.flavour),
        connect_timeout=timeouts.get("connect", defaults.connect_timeout),
        request_timeout=timeouts.get("request", defaults.request_timeout),
        models=field("models", _model_list, None),
        prefix=field("prefix", _text_or_empty, ""),
        weight=field("weight", _weight, 1.0),
    )


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _text_or_empty(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _model_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(_text(item) for item in value):
        raise ValueError("must be a non-empty list of model ids")
    return tuple(value)


def _weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
        raise ValueError("must be a number above 0 and at most 1000")
    return float(value)


def _timeouts(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not set(value) <= {"connect", "request"}:
        raise ValueError('must be an object with "connect" and/or "request" seconds')
    for seconds in value.values():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError("timeouts must be positive numbers of seconds")
    return {key: float(seconds) for key, seconds in value.items()}


def _fallbacks(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise FileError('"fallbacks" must map a model name to a list of model names')
    result = {}
    for model, chain in value.items():
        if (
            not isinstance(chain, list)
            or not chain
            or not all(isinstance(name, str) and name for name in chain)
        ):
            raise FileError(f'fallbacks["{model}"] must be a non-empty list of model names')
        result[model] = tuple(chain)
    return result
