"""Who may call the proxy: optional API keys for `/api/*` and `/v1/*` (as a Bearer token or
Anthropic's `x-api-key`), and Ollama's CORS rules.

CORS follows Ollama (docs/protocol.md, "Conventions of Ollama's API"): browser pages from
localhost and from app, file, IDE webview and extension origins are allowed by default, more
through OLLAMA_ORIGINS; a request from any other origin is refused with 403, as Ollama's CORS
middleware does.
"""

from __future__ import annotations

import fnmatch
import hmac
import ipaddress
import re
import socket

from flask import Flask, Response, request

from .error_handlers import error_response
from .errors import Unauthorized

_DEFAULT_ORIGINS = (
    "http://localhost",
    "https://localhost",
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1",
    "https://127.0.0.1",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://0.0.0.0",
    "https://0.0.0.0",
    "http://0.0.0.0:*",
    "https://0.0.0.0:*",
    "app://*",
    "file://*",
    "tauri://*",
    "vscode-webview://*",
    "vscode-file://*",
    "chrome-extension://*",
    "moz-extension://*",
    "safari-web-extension://*",
)
ALLOWED_HEADERS = (
    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, "
    "X-Request-ID, x-stainless-arch, x-stainless-async, x-stainless-lang, "
    "x-stainless-os, x-stainless-package-version, x-stainless-retry-count, "
    "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, x-api-key, "
    "anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access"
)
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
# Liveness and readiness probes never need a key: Kubernetes sends none.
OPEN_PATHS = frozenset({"/", "/health", "/ready"})


def origin_pattern(origins: tuple[str, ...] = ()) -> re.Pattern[str]:
    """One compiled matcher for the default origins plus OLLAMA_ORIGINS (`*` is a wildcard)."""
    patterns = [fnmatch.translate(origin.lower()) for origin in (*_DEFAULT_ORIGINS, *origins)]
    return re.compile("|".join(patterns))


def loopback(host: str) -> bool:
    """Whether PROXY_HOST binds the loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_host(header: str, own_name: str = socket.gethostname()) -> bool:
    """Ollama's guard against DNS rebinding on a loopback bind: a page on evil.example whose
    name now resolves to 127.0.0.1 still sends `Host: evil.example`, which is refused. Local
    names and private or loopback addresses are allowed."""
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:11434
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in ("", "localhost", own_name.lower()):
        return True
    if host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def init_access(
    app: Flask, extra_origins: tuple[str, ...], api_keys: frozenset[str], *, check_host: bool
) -> None:
    allowed = origin_pattern(extra_origins)

    @app.before_request
    def check_access() -> Response | None:
        if check_host and not allowed_host(request.headers.get("Host", "")):
            return error_response("host not allowed: the proxy listens on loopback only", 403)
        origin = request.headers.get("Origin")
        if origin is not None and not allowed.fullmatch(origin.lower()):
            return error_response(f"origin {origin} is not allowed (see OLLAMA_ORIGINS)", 403)
        if request.method == "OPTIONS":
            return Response(status=204)  # a CORS preflight: the headers are added below
        if api_keys and request.path not in OPEN_PATHS:
            _require_key(api_keys)
        return None

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin is not None and allowed.fullmatch(origin.lower()):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "43200"
            response.vary.add("Origin")
        return response


def _presented_key() -> str:
    """The client's key: `Authorization: Bearer <key>`, or Anthropic's `x-api-key` (the
    Anthropic SDKs and Claude Code send one or the other)."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        return presented.strip()
    return request.headers.get("x-api-key", "").strip()


def _require_key(keys: frozenset[str]) -> None:
    presented = _presented_key()
    # compare_digest against every key: the time taken says nothing about which key is near.
    valid = False
    for key in keys:
        valid |= hmac.compare_digest(presented.encode(), key.encode())
    if not presented or not valid:
        raise Unauthorized(
            "unauthorized: this server requires an API key (Authorization: Bearer <key>, "
            "or x-api-key: <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
