"""The app under test, its test client, and a mocked backend that serves a few models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings

from .helpers import BACKEND, MODELS_URL

MODELS: dict[str, Any] = {
    "object": "list",
    "data": [
        {
            "id": "llama3.2",
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "max_model_len": 8192,
        },
        {
            "id": "Qwen/Qwen3-8B",
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "max_model_len": 32768,
        },
        {"id": "nomic-embed-text", "object": "model", "owned_by": "vllm", "max_model_len": 2048},
        {"id": "gpt-oss:20b", "object": "model", "owned_by": "vllm"},
    ],
}


@pytest.fixture
def settings() -> Settings:
    """Overridden by test modules (or `@pytest.mark.parametrize("settings", ...)`) as needed.
    The dialect is fixed: the mocked model list looks like vLLM's, and detection has tests of
    its own."""
    return Settings(backend_url=BACKEND, backend_flavour="generic")


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def backend() -> Iterator[responses.RequestsMock]:
    """Every backend call is mocked; an unregistered URL fails the request loudly."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, MODELS_URL, json=MODELS)
        yield mock
