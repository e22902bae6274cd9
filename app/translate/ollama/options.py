"""Ollama `options` -> OpenAI sampling parameters, gated by what the backend flavour accepts.

Only options the client set are sent: injecting Ollama's defaults (temperature 0.8, top_k 40...)
would override the model's own generation config on the backend.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from ...flavours import Flavour
from ..limits import MAX_OPTIONS, MAX_STOP_SEQUENCES

log = logging.getLogger(__name__)

_INT = "integer"
_FLOAT = "number"
_BOOL = "boolean"

# Every option current or older Ollama clients may send, with its JSON type. Load-time and
# removed options are validated and accepted, then ignored: an OpenAI backend has no equivalent.
OPTION_TYPES: dict[str, str] = {
    **dict.fromkeys(
        (
            "num_predict", "top_k", "seed", "num_keep", "repeat_last_n", "num_ctx", "num_batch",
            "num_gpu", "main_gpu", "num_thread", "mirostat", "draft_num_predict", "num_gqa",
        ),
        _INT,
    ),
    **dict.fromkeys(
        (
            "temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
            "frequency_penalty", "mirostat_tau", "mirostat_eta", "tfs_z",
        ),
        _FLOAT,
    ),
    **dict.fromkeys(
        (
            "use_mmap", "numa", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
            "embedding_only", "penalize_newline",
        ),
        _BOOL,
    ),
}  # fmt: skip

# (low, high) bounds for values a backend would reject or that cannot mean anything.
_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 100.0),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "typical_p": (0.0, 1.0),
    "repeat_penalty": (0.0, 100.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
    "num_predict": (-2, 2**31 - 1),
    "top_k": (-1, 2**31 - 1),
    "seed": (-(2**63), 2**63 - 1),
    "num_ctx": (0, 2**31 - 1),
}

# Ollama option -> OpenAI field, for what every server accepts (the rest: Flavour.option_extras).
_STANDARD = {
    "temperature": "temperature",
    "top_p": "top_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# Options that only steer the model loader or were removed from Ollama: no backend field.
_LOAD_TIME = frozenset(
    {
        "num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "draft_num_predict",
        "num_gqa", "use_mmap", "numa", "low_vram", "f16_kv", "logits_all", "vocab_only",
        "use_mlock", "embedding_only", "penalize_newline", "tfs_z",
    }
)  # fmt: skip
_warned: set[tuple[str, str]] = set()


def parse_options(value: Any) -> dict[str, Any]:
    """Validates `options` like Ollama does: known keys typed, unknown keys and nulls ignored."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("must be an object")
    if len(value) > MAX_OPTIONS:
        raise ValidationError(f"at most {MAX_OPTIONS} options are allowed")
    parsed: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if key == "stop":
            parsed["stop"] = _stop_list(item)
            continue
        kind = OPTION_TYPES.get(key)
        if kind is None:
            continue  # Ollama ignores unknown options (with a warning in its log)
        parsed[key] = _typed(key, kind, item)
    return parsed


def _typed(key: str, kind: str, item: Any) -> Any:
    if kind == _BOOL:
        if not isinstance(item, bool):
            raise ValidationError(f'option "{key}" must be of type boolean')
        return item
    if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
        raise ValidationError(f'option "{key}" must be of type {kind}')
    if kind == _INT:
        item = int(item)  # Go's decoder, and so Ollama, truncates 100.7 to 100
    bounds = _RANGES.get(key)
    if bounds and not bounds[0] <= item <= bounds[1]:
        raise ValidationError(f'option "{key}" must be between {bounds[0]:g} and {bounds[1]:g}')
    return item


def _stop_list(item: Any) -> list[str]:
    # A bare string is an error on real Ollama; accepting it costs nothing and helps curl users.
    stops = [item] if isinstance(item, str) else item
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        raise ValidationError('option "stop" must be of type array of strings')
    if len(stops) > MAX_STOP_SEQUENCES:
        raise ValidationError(f'option "stop" takes at most {MAX_STOP_SEQUENCES} sequences')
    return [stop for stop in stops if stop]


def sampling_params(
    options: Mapping[str, Any], flavour: Flavour, *, completions: bool = False
) -> dict[str, Any]:
    """The OpenAI request fields for validated `options` on a backend of `flavour`."""
    params: dict[str, Any] = {}
    extras = flavour.option_extras
    for key, value in options.items():
        if key in _STANDARD:
            params[_STANDARD[key]] = value
        elif key == "num_predict":
            if value > 0:  # <= 0 means "until the model stops": omit, the backend's default
                # Legacy completions know only max_tokens.
                params["max_tokens" if completions else flavour.max_tokens_field] = value
        elif key == "seed":
            if value >= 0:  # Ollama's -1 means "random"; forwarded it would fix the seed
                params["seed"] = value
        elif key == "stop":
            if value:
                params["stop"] = value
        elif key in extras:
            params[extras[key]] = value
        elif key not in _LOAD_TIME:
            _note_dropped(key, flavour.name)
    return params


def _note_dropped(key: str, flavour: str) -> None:
    # Said once per process and option: operators learn which flavour would forward it.
    if (key, flavour) not in _warned:
        _warned.add((key, flavour))
        log.info(
            "option %s is not sent to a %s backend (set BACKEND_FLAVOUR to forward it)",
            key,
            flavour,
        )
