"""The Ollama-to-OpenAI proxy: a Flask app factory.

Module level imports only Flask: gunicorn's master imports this package (for the log config)
before gevent patches the workers, and requests/urllib3 imported there would escape patching.
"""

from __future__ import annotations

from flask import Flask

from .config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    from .access import init_access, loopback
    from .anthropic import bp as anthropic_bp
    from .error_handlers import register_error_handlers
    from .guards import Guard
    from .health import init_health
    from .metrics import init_request_metrics
    from .ollama import bp as ollama_bp
    from .openai import bp as openai_bp
    from .replies import go_status_lines
    from .requestid import init_request_id
    from .responses import bp as responses_bp
    from .services import EXTENSION, Services

    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    # Werkzeug answers `//` in a path with a redirect built from the client's Host header; a
    # path is matched as it came, and one with an empty segment is simply not found.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BODY_TIMEOUT"] = settings.body_timeout
    app.extensions[EXTENSION] = Services.build(settings)
    # Hook order matters: the request ID first (every later hook and log line carries it), then
    # the request metrics (so a request refused by access control is still timed).
    init_request_id(app)
    init_request_metrics(app)
    register_error_handlers(app)
    init_access(app, settings.extra_origins, settings.api_keys, check_host=loopback(settings.host))
    init_health(app)
    go_status_lines(app)
    app.register_blueprint(ollama_bp)
    # Before the /v1 pass-through: the APIs the proxy serves itself.
    app.register_blueprint(anthropic_bp)
    app.register_blueprint(responses_bp)
    app.register_blueprint(openai_bp)
    app.wsgi_app = Guard(app.wsgi_app)  # type: ignore[method-assign]
    return app
