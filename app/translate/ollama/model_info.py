"""Ollama's model metadata (tags, show, ps) synthesised from a backend's `/v1/models` entry.

An OpenAI backend says little about its models, but Ollama clients act on this metadata:
Copilot hides agent mode without the `tools` capability, llama-index and Copilot size prompts
from `model_info["<arch>.context_length"]`, llm-ollama skips models without capabilities.
What the backend reports wins (vLLM `max_model_len`, OpenRouter `context_length`,
`supported_parameters` and modalities, llama.cpp `meta`); names fill the gaps.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..models import Model

# The date of a model its backend gives no date for (llama-cpp-python lists none; llama-server
# and vLLM stamp every listing with the current time): when this file was written, so every
# worker, every replica running the same image and every restart shows the same value. A start
# time would differ between workers, and a model would seem to change from call to call.
_UNDATED = datetime.fromtimestamp(int(Path(__file__).stat().st_mtime), UTC)
_FTYPE = re.compile(r"[A-Za-z0-9_]{1,16}")
# Ollama shows a model kept alive forever (keep_alive < 0) as expiring in ~292 years.
FOREVER = "2318-01-01T00:00:00Z"

_FAMILIES = (
    ("qwen", "qwen2"), ("llama", "llama"), ("mistral", "llama"), ("mixtral", "llama"),
    ("gemma", "gemma3"), ("phi", "phi3"), ("deepseek", "deepseek2"), ("gpt-oss", "gptoss"),
    ("smollm", "llama"), ("granite", "granite"), ("command", "command-r"), ("glm", "glm4"),
    ("gpt", "gpt"), ("claude", "claude"), ("gemini", "gemini"), ("bert", "bert"),
)  # fmt: skip
_EMBEDDING = re.compile(r"embed|bge-|\be5-|gte-|minilm|arctic-embed|mxbai", re.IGNORECASE)
_THINKING = re.compile(
    r"qwen3|qwq|deepseek-r1|deepseek-reasoner|gpt-oss|\bo[134]\b|\bo[134]-|gpt-5|magistral|think"
    r"|reason",
    re.IGNORECASE,
)
_VISION = re.compile(
    r"[-_.]vl\b|-vl-|vision|llava|pixtral|gpt-4o|gpt-4\.1|gpt-5|gemma-?3|llama-?4|minicpm-v"
    r"|internvl|moondream|claude|gemini",
    re.IGNORECASE,
)
_PARAMETER_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[bBmM](?![a-zA-Z0-9])")


def _section(model: Model, key: str) -> dict[str, Any]:
    """A nested object of the backend's model entry, or {} when absent or malformed."""
    value = model.info.get(key)
    return value if isinstance(value, dict) else {}


def family(model: Model) -> str:
    lowered = model.backend_id.lower()
    for hint, name in _FAMILIES:
        if hint in lowered:
            return name
    return "unknown"


def context_length(model: Model, default: int) -> int:
    declared = model.declared.get("context_length")
    if declared:
        return int(declared)
    info = model.info
    provider = _section(model, "top_provider")
    meta = _section(model, "meta")
    for value in (
        info.get("max_model_len"),  # vLLM
        info.get("context_length"),  # OpenRouter, LiteLLM
        provider.get("context_length"),
        meta.get("n_ctx"),
        meta.get("n_ctx_train"),  # llama.cpp: the training window, an upper bound
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def capabilities(model: Model) -> list[str]:
    if model.declared.get("capabilities"):
        return list(model.declared["capabilities"])
    info = model.info
    name = model.backend_id
    architecture = _section(model, "architecture")
    modalities = architecture.get("input_modalities") or []
    supported = info.get("supported_parameters")
    if _EMBEDDING.search(name) or "embedding" in (architecture.get("output_modalities") or []):
        return ["embedding"]
    caps = ["completion"]
    if not isinstance(supported, list) or "tools" in supported:
        caps.append("tools")
    if "image" in modalities or (not modalities and _VISION.search(name)):
        caps.append("vision")
    if (isinstance(supported, list) and "reasoning" in supported) or _THINKING.search(name):
        caps.append("thinking")
    return caps


def known_capabilities(model: Model) -> list[str] | None:
    """The capabilities an operator declared or the backend reported (OpenRouter's
    supported_parameters); None when they would only be guessed from the name."""
    if model.declared.get("capabilities") or isinstance(
        model.info.get("supported_parameters"), list
    ):
        return capabilities(model)
    return None


def parameter_size(model: Model) -> str:
    meta = _section(model, "meta")
    count = meta.get("n_params")
    if isinstance(count, int) and count > 0:
        return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{round(count / 1e6)}M"
    match = _PARAMETER_SIZE.search(model.backend_id)
    return match.group(0).upper() if match else ""


def created(model: Model) -> datetime:
    """When the backend says the model was made; else the date of the proxy's release (a
    listing's own timestamp, which some servers put there, was dropped by the catalogue)."""
    stamp = model.info.get("created")
    if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp > 0:
        return datetime.fromtimestamp(stamp, UTC)
    return _UNDATED


def modified_at(model: Model) -> str:
    return created(model).isoformat()


def quantization_level(model: Model) -> str:
    """llama-server names the file type of the GGUF it serves (`meta.ftype`: "Q4_K_M")."""
    ftype = _section(model, "meta").get("ftype")
    if isinstance(ftype, str) and _FTYPE.fullmatch(ftype):
        return ftype.upper()
    return ""


def details(model: Model, default_context: int) -> dict[str, Any]:
    fam = family(model)
    result: dict[str, Any] = {
        "parent_model": "",
        "format": "gguf",
        "family": fam,
        "families": [fam],
        "parameter_size": parameter_size(model),
        "quantization_level": quantization_level(model),
        "context_length": context_length(model, default_context),
    }
    meta = _section(model, "meta")
    if isinstance(meta.get("n_embd"), int):
        result["embedding_length"] = meta["n_embd"]
    return result


def _size(model: Model) -> int:
    meta = _section(model, "meta")
    size = meta.get("size")
    return size if isinstance(size, int) and size > 0 else 0


def _digest(model: Model) -> str:
    return hashlib.sha256(model.backend_id.encode()).hexdigest()


def tag_entry(model: Model, default_context: int) -> dict[str, Any]:
    return {
        "name": model.name,
        "model": model.name,
        "modified_at": modified_at(model),
        "size": _size(model),
        "digest": _digest(model),
        "details": details(model, default_context),
        "capabilities": capabilities(model),
    }


def ps_entry(model: Model, default_context: int) -> dict[str, Any]:
    size = _size(model)
    return {
        "name": model.name,
        "model": model.name,
        "size": size,
        "digest": _digest(model),
        "details": details(model, default_context),
        # The backend keeps every model it serves loaded; keep_alive cannot change that.
        "expires_at": FOREVER,
        "size_vram": size,
        "context_length": context_length(model, default_context),
    }


def show(model: Model, default_context: int) -> dict[str, Any]:
    caps = capabilities(model)
    fam = family(model)
    info: dict[str, Any] = {
        "general.architecture": fam,
        "general.basename": model.backend_id,
        f"{fam}.context_length": context_length(model, default_context),
    }
    entry = details(model, default_context)
    if "embedding_length" in entry:
        info[f"{fam}.embedding_length"] = entry["embedding_length"]
    # Ollama leaves out an empty license and parameters (omitempty): there are none to show.
    return {
        "modelfile": (
            '# Modelfile generated by "ollama show"\n'
            f"# Served by an OpenAI-compatible backend as {model.backend_id}\n"
            f"FROM {model.name}\n"
        ),
        "template": _template(caps),
        "details": {
            k: v for k, v in entry.items() if k not in ("context_length", "embedding_length")
        },
        "model_info": info,
        "capabilities": caps,
        "modified_at": modified_at(model),
    }


def _template(caps: list[str]) -> str:
    # Some clients detect tool support by scanning the template for .Tools: keep it consistent
    # with the capabilities. The backend applies the model's real template.
    system = "{{ if .System }}{{ .System }}{{ end }}"
    if "tools" in caps:
        return system + "{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}"
    return system + "{{ .Prompt }}"
