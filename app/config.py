"""Settings read once from the environment, typed and validated at start.

Entry points (wsgi.py, gunicorn.conf.py) load `.env` first; this module only reads a mapping, so
tests build Settings from a plain dict and nothing leaks in from the machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import backends_file
from .backends_file import BackendSpec, Defaults
from .flavours import ALIASES, AUTO, FLAVOURS, ThinkStyle

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_NONE: tuple[str, ...] = ()
# "auto": the flavour's own way.
THINKING_CONTROLS = ("auto", *(style.value for style in ThinkStyle))


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class ModelMapping:
    """MODEL_MAPPING_FILE: Ollama-name -> backend-id aliases (applied both ways), the default
    model, and metadata an operator declares per backend id where the backend reports none."""

    aliases: Mapping[str, str] = field(default_factory=dict)
    default_model: str | None = None
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    backend_url: str = "http://localhost:8000/v1"
    api_key: str | None = None
    host: str = "0.0.0.0"  # noqa: S104  a server in a container listens on every interface
    port: int = 11434
    request_timeout: float = 300.0
    connect_timeout: float = 5.0
    max_retries: int = 2
    log_level: str = "INFO"
    verify_ssl: bool = True
    mapping: ModelMapping = field(default_factory=ModelMapping)
    # The Ollama release whose API this proxy serves: clients gate features on it.
    ollama_version: str = "0.32.7"
    default_context_length: int = 4096
    models_cache_ttl: float = 10.0
    backend_flavour: str = AUTO  # detected from the backend's own answers
    thinking_control: str = "auto"
    max_body_bytes: int = 64 * 1024 * 1024
    pool_size: int = 1000
    completions_max_tokens: int = 4096
    api_keys: frozenset[str] = frozenset()
    extra_origins: tuple[str, ...] = ()
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 30.0
    metrics_port: int = 9100
    # Deadlines for clients (gunicorn has none): a new connection's request headers, a request
    # body, and a client that reads nothing of its answer.
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    write_timeout: float = 60.0
    # BACKENDS_FILE: several backends; empty means the one the variables above describe.
    backend_specs: tuple[BackendSpec, ...] = ()
    # Ordered fallback models per model, tried when every deployment of a model failed.
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def backends(self) -> tuple[BackendSpec, ...]:
        if self.backend_specs:
            return self.backend_specs
        return (
            BackendSpec(
                name="default",
                base_url=self.backend_url,
                api_key=self.api_key,
                flavour=self.backend_flavour,
                connect_timeout=self.connect_timeout,
                request_timeout=self.request_timeout,
            ),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _Reader(env)
        settings = cls(
            backend_url=reader.get("OPENAI_API_BASE_URL", cls.backend_url, _backend_url),
            api_key=env.get("OPENAI_API_KEY") or None,
            host=reader.get("PROXY_HOST", cls.host, _non_empty),
            port=reader.get("PROXY_PORT", cls.port, _int_between(1, 65535)),
            request_timeout=reader.get("REQUEST_TIMEOUT", cls.request_timeout, _positive_float),
            connect_timeout=reader.get("CONNECT_TIMEOUT", cls.connect_timeout, _positive_float),
            max_retries=reader.get("MAX_RETRIES", cls.max_retries, _int_between(0, 10)),
            log_level=reader.get("LOG_LEVEL", cls.log_level, _log_level),
            verify_ssl=not reader.get("DISABLE_SSL_VERIFICATION", False, _boolean),
            mapping=reader.get(
                "MODEL_MAPPING_FILE",
                ModelMapping(),
                lambda path: parse_mapping(file_text(env, "MODEL_MAPPING_FILE", path)),
            ),
            ollama_version=reader.get("OLLAMA_VERSION", cls.ollama_version, _version),
            default_context_length=reader.get(
                "DEFAULT_CONTEXT_LENGTH", cls.default_context_length, _int_between(1, 1 << 24)
            ),
            models_cache_ttl=reader.get(
                "MODELS_CACHE_TTL", cls.models_cache_ttl, _non_negative_float
            ),
            backend_flavour=reader.get("BACKEND_FLAVOUR", cls.backend_flavour, _flavour_name),
            thinking_control=reader.get(
                "THINKING_CONTROL", cls.thinking_control, _one_of(THINKING_CONTROLS)
            ),
            max_body_bytes=reader.get(
                "MAX_BODY_BYTES", cls.max_body_bytes, _int_between(1024, 1 << 32)
            ),
            pool_size=reader.get("WORKER_CONNECTIONS", cls.pool_size, _int_between(1, 100_000)),
            completions_max_tokens=reader.get(
                "COMPLETIONS_MAX_TOKENS", cls.completions_max_tokens, _int_between(1, 1 << 24)
            ),
            api_keys=frozenset(reader.get("PROXY_API_KEYS", _NONE, _comma_list)),
            extra_origins=reader.get("OLLAMA_ORIGINS", _NONE, _comma_list),
            breaker_fail_max=reader.get(
                "BREAKER_FAIL_MAX", cls.breaker_fail_max, _int_between(1, 1000)
            ),
            breaker_reset_timeout=reader.get(
                "BREAKER_RESET_TIMEOUT", cls.breaker_reset_timeout, _positive_float
            ),
            metrics_port=reader.get("METRICS_PORT", cls.metrics_port, _int_between(1, 65535)),
            header_timeout=reader.get("HEADER_TIMEOUT", cls.header_timeout, _positive_float),
            body_timeout=reader.get("BODY_TIMEOUT", cls.body_timeout, _positive_float),
            write_timeout=reader.get("WRITE_TIMEOUT", cls.write_timeout, _positive_float),
        )
        path = env.get("BACKENDS_FILE", "").strip()
        if path:
            defaults = Defaults(
                settings.backend_flavour,
                settings.connect_timeout,
                settings.request_timeout,
                _backend_url,
                _flavour_name,
            )
            try:
                text = file_text(env, "BACKENDS_FILE", path)
                specs, fallbacks = backends_file.load(text, env, defaults)
            except (ValueError, OSError) as exc:
                raise ConfigError(f"BACKENDS_FILE={path!r} is invalid: {exc}") from None
            settings = replace(settings, backend_specs=specs, fallbacks=fallbacks)
        if settings.metrics_port == settings.port:
            raise ConfigError(
                f"METRICS_PORT={str(settings.metrics_port)!r} is invalid: "
                "it must differ from PROXY_PORT"
            )
        return settings


class _Reader:
    """Parses one variable at a time so every error names the variable it came from."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from None


def _non_empty(raw: str) -> str:
    return raw


def _comma_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or a positive number of seconds")
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _flavour_name(raw: str) -> str:
    name = raw.lower()
    name = ALIASES.get(name, name)
    if name != AUTO and name not in FLAVOURS:
        raise ValueError(f"must be one of {', '.join((AUTO, *FLAVOURS))}")
    return name


def _version(raw: str) -> str:
    parts = raw.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError("must be a numeric version such as 0.12.11 (clients parse it)")
    if tuple(int(part) for part in parts) < (0, 6, 4):
        raise ValueError("must be at least 0.6.4: older versions make VS Code Copilot refuse")
    return raw


def _backend_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL such as http://localhost:8000/v1")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment")
    url = raw.rstrip("/")
    # A bare host ("http://vllm:8000") means the usual /v1 prefix; any other path is kept as
    # given, because some providers serve the OpenAI API under another prefix.
    if not parts.path.strip("/"):
        url += "/v1"
    return url


CAPABILITIES = ("completion", "tools", "insert", "vision", "embedding", "thinking")


# Settings read from files. gunicorn's master validates each file at start (and on a SIGHUP
# reload) and passes the text it validated to the workers in the environment: a worker started
# later (a reload, a crashed worker replaced) runs exactly what was validated, and a file made
# invalid before a reload leaves the running configuration in place (gunicorn.conf.py).
FILE_SETTINGS = ("MODEL_MAPPING_FILE", "BACKENDS_FILE")


def snapshot_variable(setting: str) -> str:
    return f"PROXY_{setting}_CONTENT"


def file_text(env: Mapping[str, str], setting: str, path: str) -> str:
    """The validated text the master passed on, or the file itself."""
    snapshot = env.get(snapshot_variable(setting))
    if snapshot is not None:
        return snapshot
    with open(path, encoding="utf-8") as handle:
        return handle.read()


LOADED = "PROXY_CONFIGURATION_LOADED"


def load_in_master(env: MutableMapping[str, str]) -> tuple[Settings, str | None]:
    """The settings gunicorn's master runs with, validated from the files as they are now.

    At start a bad setting raises ConfigError. On a reload (SIGHUP) it is reported instead (the
    second value) and the previous, validated configuration stays: a typo in a file must not
    take a running proxy down. What was validated is left in `env` for the workers."""
    fresh = {}
    try:
        for setting in FILE_SETTINGS:
            path = env.get(setting, "").strip()
            if path:
                with open(path, encoding="utf-8") as handle:
                    fresh[snapshot_variable(setting)] = handle.read()
        settings = Settings.from_env({**_without_snapshots(env), **fresh})
    except (ConfigError, OSError) as exc:
        if not env.get(LOADED):
            raise ConfigError(str(exc)) from None
        return Settings.from_env(env), f"{exc}; the running configuration is kept"
    for setting in FILE_SETTINGS:
        env.pop(snapshot_variable(setting), None)
    env.update(fresh)
    env[LOADED] = "1"
    return settings, None


def _without_snapshots(env: Mapping[str, str]) -> dict[str, str]:
    names = {snapshot_variable(setting) for setting in FILE_SETTINGS}
    return {key: value for key, value in env.items() if key not in names}


def parse_mapping(text: str) -> ModelMapping:
    """Reads {"model_mappings": {"ollama-name": "backend-id"}, "default_model": "...",
    "models": {"backend-id": {"context_length": N, "capabilities": [...]}}}."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError("must hold a JSON object")
    aliases = document.get("model_mappings", {})
    if not isinstance(aliases, dict) or not all(
        isinstance(key, str) and key and isinstance(value, str) and value
        for key, value in aliases.items()
    ):
        raise ValueError('"model_mappings" must map non-empty names to non-empty backend ids')
    default_model = document.get("default_model")
    if default_model is not None and (not isinstance(default_model, str) or not default_model):
        raise ValueError('"default_model" must be a non-empty string')
    models = document.get("models", {})
    if not isinstance(models, dict):
        raise ValueError('"models" must map backend ids to objects')
    for backend_id, declared in models.items():
        _check_declared(backend_id, declared)
    return ModelMapping(aliases=dict(aliases), default_model=default_model, models=models)


def _check_declared(backend_id: str, declared: Any) -> None:
    where = f'"models"["{backend_id}"]'
    if not isinstance(declared, dict) or not set(declared) <= {"context_length", "capabilities"}:
        raise ValueError(f"{where} must be an object with context_length and/or capabilities")
    length = declared.get("context_length")
    if length is not None and (
        not isinstance(length, int) or isinstance(length, bool) or length < 1
    ):
        raise ValueError(f"{where}.context_length must be a positive integer")
    capabilities = declared.get("capabilities")
    if capabilities is not None and (
        not isinstance(capabilities, list) or not set(capabilities) <= set(CAPABILITIES)
    ):
        raise ValueError(f"{where}.capabilities must be a list of {', '.join(CAPABILITIES)}")
