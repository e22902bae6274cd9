"""The Ollama-to-OpenAI proxy: a Flask app factory.

Module level imports only Flask: gunicorn's master imports this package (for the log config)
before gevent patches the workers, and requests/urllib3 imported there would escape patching.
"""

from __future__ import annotations

from flask import Flask

from .config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    from .access import init_access
    from .error_handlers import register_error_handlers
    from .health import init_health
    from .metrics import init_request_metrics
    from .ollama import bp as ollama_bp
    from .openai import bp as openai_bp
    from .requestid import init_request_id
    from .services import EXTENSION, Services

    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions[EXTENSION] = Services.build(settings)
    # Hook order matters: the request ID first (every later hook and log line carries it), then
    # the request metrics (so a request refused by access control is still timed).
    init_request_id(app)
    init_request_metrics(app)
    register_error_handlers(app)
    init_access(app, settings.extra_origins, settings.api_keys)
    init_health(app)
    app.register_blueprint(ollama_bp)
    app.register_blueprint(openai_bp)
    return app
