"""Error messages from every backend dialect, and the two error shapes clients expect."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask, abort, request
from flask.testing import FlaskClient

from app.error_handlers import ollama_error_body, openai_error_body, register_error_handlers
from app.errors import (
    BackendError,
    BadRequest,
    NotFound,
    ProxyError,
    backend_message,
    model_not_found,
)
from app.replies import JSON_MIMETYPE


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # OpenAI
        (
            b'{"error":{"message":"Invalid API key","type":"invalid_request_error",'
            b'"param":null,"code":"invalid_api_key"}}',
            "Invalid API key",
        ),
        # vLLM >= 0.10.1 (int code)
        (
            b'{"error":{"message":"The model `x` does not exist.","type":"NotFoundError",'
            b'"param":null,"code":404}}',
            "The model `x` does not exist.",
        ),
        # llama.cpp
        (
            b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}',
            "Loading model",
        ),
        # OpenRouter
        (
            b'{"error":{"code":400,"message":"Provider error","metadata":{"raw":"x"}}}',
            "Provider error",
        ),
        # a bare string error
        (b'{"error":"model is overloaded"}', "model is overloaded"),
        # vLLM < 0.10.1: flat object
        (
            b'{"object":"error","message":"max_tokens must be at least 1","type":'
            b'"BadRequestError","param":null,"code":400}',
            "max_tokens must be at least 1",
        ),
        # FastAPI-style
        (b'{"detail":"Not Found"}', "Not Found"),
        # plain text, trimmed
        (b"  Bad Gateway\n", "Bad Gateway"),
        (b"<html><body>502 Bad Gateway</body></html>", "HTTP 503"),  # never an error page
        ("Überlastet".encode(), "Überlastet"),
        (b"\xff\xfeoops", "\ufffd\ufffdoops"),
        # nothing usable: the fallback
        (b"", "HTTP 503"),
        (b"   \n", "HTTP 503"),
        (b'{"error":""}', "HTTP 503"),
        (b'{"error":{"message":5}}', "HTTP 503"),
        (b'{"error":null}', "HTTP 503"),
        (b'{"detail":[{"loc":["body"],"msg":"field required"}]}', "HTTP 503"),
        (b"[1,2]", "HTTP 503"),
        (b'"just a string"', "HTTP 503"),
        (b"null", "HTTP 503"),
    ],
)
def test_backend_message_in_every_dialect(body: bytes, message: str) -> None:
    assert backend_message(body, "HTTP 503") == message


def test_long_plain_text_is_cut_to_500_characters() -> None:
    assert backend_message(b"x" * 2000, "fallback") == "x" * 500


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "invalid_request_error"),
        (413, "invalid_request_error"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "api_error"),
    ],
)
def test_openai_error_body_types_by_status(status: int, kind: str) -> None:
    body = openai_error_body("something failed", status)
    assert json.loads(body) == {
        "error": {"message": "something failed", "type": kind, "param": None, "code": None}
    }
    assert b", " not in body


def test_ollama_error_body_is_compact_json() -> None:
    assert ollama_error_body('model "x" not found') == b'{"error":"model \\"x\\" not found"}'
    assert json.loads(ollama_error_body("naïve\u2028")) == {"error": "naïve\u2028"}


def test_error_classes_carry_status_and_headers() -> None:
    assert (BadRequest("x").status, NotFound("x").status, BackendError("x").status) == (
        400,
        404,
        502,
    )
    assert ProxyError("x").status == 500
    error = BackendError("busy", 503, headers={"Retry-After": "7"})
    assert (error.status, error.message, str(error)) == (503, "busy", "busy")
    assert error.headers == {"Retry-After": "7"}
    assert BadRequest("x").headers == {}


def test_model_not_found_is_ollamas_404() -> None:
    error = model_not_found("Llama3:latest")
    assert error.status == 404
    assert error.message == "model 'Llama3:latest' not found"


@pytest.fixture
def client() -> FlaskClient:
    app = Flask("errors-test")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    register_error_handlers(app)

    @app.post("/api/chat")
    @app.post("/v1/chat/completions")
    def failing() -> str:
        raise BackendError(
            "backend unavailable (HTTP 503): Loading model", 503, headers={"Retry-After": "5"}
        )

    @app.get("/api/show")
    @app.get("/v1/models")
    def missing() -> str:
        raise model_not_found("x")

    @app.get("/api/crash")
    def crash() -> str:
        raise RuntimeError("secret internals")

    @app.get("/api/teapot")
    def teapot() -> str:
        abort(418)

    @app.post("/api/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    return app.test_client()


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/api/show", 404, {"error": "model 'x' not found"}),
        (
            "GET",
            "/v1/models",
            404,
            {
                "error": {
                    "message": "model 'x' not found",
                    "type": "not_found_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
        ),
        ("GET", "/api/nothing", 404, {"error": "404 page not found: no endpoint GET /api/nothing"}),
        ("GET", "/api/chat", 405, {"error": "method GET not allowed for /api/chat"}),
        (
            "GET",
            "/api/crash",
            500,
            {"error": "internal proxy error; the request ID is in the logs"},
        ),
        ("GET", "/api/teapot", 418, None),
        ("POST", "/api/upload", 413, {"error": "request body too large: the limit is 1024 bytes"}),
    ],
)
def test_handlers_answer_in_the_paths_dialect(
    client: FlaskClient, method: str, path: str, status: int, body: object
) -> None:
    response = client.open(path, method=method, data=b"x" * 2048)
    assert response.status_code == status
    assert response.content_type == JSON_MIMETYPE
    if body is not None:
        assert response.get_json() == body
    else:
        assert set(response.get_json()) == {"error"}


def test_retry_after_and_allow_headers(client: FlaskClient) -> None:
    ollama = client.post("/api/chat")
    assert (ollama.status_code, ollama.headers["Retry-After"]) == (503, "5")
    assert ollama.get_json() == {"error": "backend unavailable (HTTP 503): Loading model"}
    openai = client.post("/v1/chat/completions")
    assert openai.get_json()["error"]["type"] == "api_error"
    assert openai.headers["Retry-After"] == "5"
    not_allowed = client.get("/api/chat")
    assert "POST" in not_allowed.headers["Allow"]


def test_unexpected_errors_are_logged_with_the_stack_but_not_shown(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.errors"):
        response = client.get("/api/crash")
    assert b"secret internals" not in response.data
    assert any(record.exc_info for record in caplog.records)
