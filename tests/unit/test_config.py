"""Settings.from_env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import LOADED, ConfigError, ModelMapping, Settings, load_in_master, parse_mapping


def test_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.backend_url == "http://localhost:8000/v1"
    assert settings.api_key is None
    assert (settings.host, settings.port) == ("0.0.0.0", 11434)
    assert settings.verify_ssl is True
    assert settings.mapping == ModelMapping()
    assert settings.ollama_version == "0.32.7"
    assert settings.backend_flavour == "auto"
    assert settings.thinking_control == "auto"
    assert settings.api_keys == frozenset()
    assert settings.extra_origins == ()


def test_blank_values_count_as_unset() -> None:
    env = {"PROXY_PORT": "   ", "OPENAI_API_BASE_URL": "", "OPENAI_API_KEY": ""}
    assert Settings.from_env(env) == Settings()


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        ("OPENAI_API_KEY", "sk-123", "api_key", "sk-123"),
        ("PROXY_HOST", "127.0.0.1", "host", "127.0.0.1"),
        ("PROXY_PORT", "8080", "port", 8080),
        ("PROXY_PORT", " 1 ", "port", 1),
        ("PROXY_PORT", "65535", "port", 65535),
        ("REQUEST_TIMEOUT", "12.5", "request_timeout", 12.5),
        ("CONNECT_TIMEOUT", "2", "connect_timeout", 2.0),
        ("MAX_RETRIES", "0", "max_retries", 0),
        ("MAX_RETRIES", "10", "max_retries", 10),
        ("LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("DISABLE_SSL_VERIFICATION", "true", "verify_ssl", False),
        ("DISABLE_SSL_VERIFICATION", "YES", "verify_ssl", False),
        ("DISABLE_SSL_VERIFICATION", "on", "verify_ssl", False),
        ("DISABLE_SSL_VERIFICATION", "1", "verify_ssl", False),
        ("DISABLE_SSL_VERIFICATION", "false", "verify_ssl", True),
        ("DISABLE_SSL_VERIFICATION", "off", "verify_ssl", True),
        ("DISABLE_SSL_VERIFICATION", "0", "verify_ssl", True),
        ("OLLAMA_VERSION", "0.6.4", "ollama_version", "0.6.4"),
        ("OLLAMA_VERSION", "1.2.3", "ollama_version", "1.2.3"),
        ("DEFAULT_CONTEXT_LENGTH", "32768", "default_context_length", 32768),
        ("MODELS_CACHE_TTL", "0", "models_cache_ttl", 0.0),
        ("MODELS_CACHE_TTL", "2.5", "models_cache_ttl", 2.5),
        ("BACKEND_FLAVOUR", "vLLM", "backend_flavour", "vllm"),
        ("BACKEND_FLAVOUR", "llamacpp", "backend_flavour", "llama-cpp-python"),  # the old name
        ("BACKEND_FLAVOUR", "Llama-Server", "backend_flavour", "llama-server"),
        ("BACKEND_FLAVOUR", "auto", "backend_flavour", "auto"),
        ("BACKEND_FLAVOUR", "openrouter", "backend_flavour", "openrouter"),
        ("THINKING_CONTROL", "Reasoning_Effort", "thinking_control", "reasoning_effort"),
        ("THINKING_CONTROL", "none", "thinking_control", "none"),
        ("MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
        ("WORKER_CONNECTIONS", "50", "pool_size", 50),
        ("COMPLETIONS_MAX_TOKENS", "512", "completions_max_tokens", 512),
        ("PROXY_API_KEYS", "k1, k2,,", "api_keys", frozenset({"k1", "k2"})),
        (
            "OLLAMA_ORIGINS",
            "https://a.example, app://x",
            "extra_origins",
            ("https://a.example", "app://x"),
        ),
        ("BREAKER_FAIL_MAX", "3", "breaker_fail_max", 3),
        ("BREAKER_RESET_TIMEOUT", "0.5", "breaker_reset_timeout", 0.5),
        ("METRICS_PORT", "9200", "metrics_port", 9200),
    ],
)
def test_each_variable_is_parsed(variable: str, raw: str, attribute: str, expected: object) -> None:
    assert getattr(Settings.from_env({variable: raw}), attribute) == expected


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("PROXY_PORT", "0", "between 1 and 65535"),
        ("PROXY_PORT", "65536", "between 1 and 65535"),
        ("PROXY_PORT", "http", "invalid literal"),
        ("PROXY_PORT", "80.5", "invalid literal"),
        ("REQUEST_TIMEOUT", "0", "positive"),
        ("REQUEST_TIMEOUT", "-3", "positive"),
        ("REQUEST_TIMEOUT", "nan", "positive"),
        ("REQUEST_TIMEOUT", "soon", "could not convert"),
        ("CONNECT_TIMEOUT", "0", "positive"),
        ("MAX_RETRIES", "11", "between 0 and 10"),
        ("MAX_RETRIES", "-1", "between 0 and 10"),
        ("LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("DISABLE_SSL_VERIFICATION", "maybe", "true or false"),
        ("OLLAMA_VERSION", "0.6.3", "at least 0.6.4"),
        ("OLLAMA_VERSION", "0.0.0", "at least 0.6.4"),
        ("OLLAMA_VERSION", "1.0", "numeric version"),
        ("OLLAMA_VERSION", "v0.12.11", "numeric version"),
        ("OLLAMA_VERSION", "0.12.11-rc1", "numeric version"),
        ("DEFAULT_CONTEXT_LENGTH", "0", "between 1 and"),
        ("MODELS_CACHE_TTL", "-1", "zero or a positive"),
        (
            "BACKEND_FLAVOUR",
            "ollama",
            "auto, generic, vllm, llama-server, llama-server-native, llama-cpp-python, openai, "
            "openrouter",
        ),
        ("THINKING_CONTROL", "always", "auto, none, chat_template_kwargs, reasoning_effort"),
        ("MAX_BODY_BYTES", "1023", "between 1024 and"),
        ("WORKER_CONNECTIONS", "0", "between 1 and 100000"),
        ("COMPLETIONS_MAX_TOKENS", "0", "between 1 and"),
        ("BREAKER_FAIL_MAX", "0", "between 1 and 1000"),
        ("BREAKER_RESET_TIMEOUT", "0", "positive"),
        ("METRICS_PORT", "0", "between 1 and 65535"),
        ("METRICS_PORT", "11434", "must differ from PROXY_PORT"),
        ("OPENAI_API_BASE_URL", "localhost:8000", "http:// or https://"),
        ("OPENAI_API_BASE_URL", "ftp://host/v1", "http:// or https://"),
        ("OPENAI_API_BASE_URL", "http://", "http:// or https://"),
        ("OPENAI_API_BASE_URL", "http://host/v1?key=1", "query string or fragment"),
        ("OPENAI_API_BASE_URL", "http://host/v1#x", "query string or fragment"),
        ("MODEL_MAPPING_FILE", "/nonexistent/mapping.json", "No such file"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_variable(
    variable: str, raw: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: raw})
    message = str(caught.value)
    assert message.startswith(f"{variable}={raw!r} is invalid: ")
    assert reason in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://vllm:8000", "http://vllm:8000/v1"),
        ("http://vllm:8000/", "http://vllm:8000/v1"),
        ("http://vllm:8000//", "http://vllm:8000/v1"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
        ("https://example.com/openai/deployments/x/", "https://example.com/openai/deployments/x"),
        ("HTTP://Host:8000", "HTTP://Host:8000/v1"),
    ],
)
def test_backend_url_is_normalised(raw: str, expected: str) -> None:
    assert Settings.from_env({"OPENAI_API_BASE_URL": raw}).backend_url == expected


def _write(tmp_path: Path, content: str) -> str:
    path = tmp_path / "mapping.json"
    path.write_text(content, encoding="utf-8")
    return str(path)


def test_mapping_file_is_loaded_into_settings(tmp_path: Path) -> None:
    document = {
        "model_mappings": {"qwen3": "Qwen/Qwen3-8B", "coder:7b": "Qwen/Qwen2.5-Coder-7B"},
        "default_model": "Qwen/Qwen3-8B",
    }
    settings = Settings.from_env({"MODEL_MAPPING_FILE": _write(tmp_path, json.dumps(document))})
    assert settings.mapping == ModelMapping(
        aliases={"qwen3": "Qwen/Qwen3-8B", "coder:7b": "Qwen/Qwen2.5-Coder-7B"},
        default_model="Qwen/Qwen3-8B",
    )


def test_mapping_file_declares_model_metadata() -> None:
    document = {
        "models": {
            "gpt-4o": {"context_length": 128000, "capabilities": ["completion", "vision"]},
            "text-embedding-3-small": {"capabilities": ["embedding"]},
        }
    }
    mapping = parse_mapping(json.dumps(document))
    assert mapping.models == document["models"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{}", ModelMapping()),
        ('{"model_mappings": {}}', ModelMapping()),
        ('{"default_model": "m"}', ModelMapping(default_model="m")),
        ('{"default_model": null, "other": 1}', ModelMapping()),
    ],
)
def test_mapping_file_parts_are_optional(content: str, expected: ModelMapping) -> None:
    assert parse_mapping(content) == expected


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"model_mappings": {"a": "b",}}', "not valid JSON"),
        ("", "not valid JSON"),
        ('["a", "b"]', "must hold a JSON object"),
        ('"qwen3"', "must hold a JSON object"),
        ('{"model_mappings": ["a", "b"]}', '"model_mappings" must map'),
        ('{"model_mappings": {"a": 1}}', '"model_mappings" must map'),
        ('{"model_mappings": {"a": ""}}', '"model_mappings" must map'),
        ('{"model_mappings": {"": "b"}}', '"model_mappings" must map'),
        ('{"default_model": ""}', '"default_model" must be a non-empty string'),
        ('{"default_model": 3}', '"default_model" must be a non-empty string'),
        ('{"models": []}', '"models" must map backend ids to objects'),
        ('{"models": {"m": 4096}}', "must be an object with context_length"),
        ('{"models": {"m": {"context": 4096}}}', "must be an object with context_length"),
        ('{"models": {"m": {"context_length": 0}}}', "context_length must be a positive"),
        ('{"models": {"m": {"context_length": true}}}', "context_length must be a positive"),
        ('{"models": {"m": {"capabilities": ["chat"]}}}', "capabilities must be a list of"),
        ('{"models": {"m": {"capabilities": "tools"}}}', "capabilities must be a list of"),
    ],
)
def test_bad_mapping_files_are_config_errors(tmp_path: Path, content: str, reason: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"MODEL_MAPPING_FILE": path})
    assert str(caught.value).startswith(f"MODEL_MAPPING_FILE={path!r} is invalid: ")
    assert reason in str(caught.value)


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_BASE_URL", "MODEL_MAPPING_FILE", "LOG_LEVEL", "THINKING_CONTROL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROXY_PORT", "12345")
    monkeypatch.setenv("BACKEND_FLAVOUR", "vllm")
    settings = Settings.from_env()
    assert (settings.port, settings.backend_flavour) == (12345, "vllm")


def test_the_master_passes_the_files_it_validated_to_the_workers(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"default_model": "first"}')
    env = {"MODEL_MAPPING_FILE": path}
    settings, error = load_in_master(env)
    assert error is None
    assert settings.mapping.default_model == "first"
    Path(path).write_text('{"default_model": "changed after the fork"}')
    # A worker started later (a crashed one replaced) runs what the master validated.
    assert Settings.from_env(env).mapping.default_model == "first"


def test_a_bad_file_stops_the_start_but_not_a_running_proxy_on_reload(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"default_model": ')
    with pytest.raises(ConfigError, match="MODEL_MAPPING_FILE"):
        load_in_master({"MODEL_MAPPING_FILE": path})

    Path(path).write_text('{"default_model": "good"}')
    env = {"MODEL_MAPPING_FILE": path}
    load_in_master(env)
    assert env[LOADED]
    Path(path).write_text('{"default_model": ')  # a half-saved edit, then SIGHUP
    settings, error = load_in_master(env)
    assert error is not None
    assert "running configuration is kept" in error
    assert settings.mapping.default_model == "good"
    Path(path).unlink()  # a file gone is no different
    assert load_in_master(env)[0].mapping.default_model == "good"

    Path(path).write_text('{"default_model": "edited"}')  # fixed, then SIGHUP again
    settings, error = load_in_master(env)
    assert error is None
    assert settings.mapping.default_model == "edited"
    assert Settings.from_env(env).mapping.default_model == "edited"


def test_a_file_setting_removed_on_reload_drops_its_snapshot(tmp_path: Path) -> None:
    env = {"MODEL_MAPPING_FILE": _write(tmp_path, '{"default_model": "m"}')}
    load_in_master(env)
    del env["MODEL_MAPPING_FILE"]
    settings, error = load_in_master(env)
    assert error is None
    assert settings.mapping == ModelMapping()
    assert Settings.from_env(env).mapping == ModelMapping()
