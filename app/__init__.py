"""The Ollama-to-OpenAI proxy: a Flask app factory.

Module level imports only Flask: gunicorn's master imports this package (for the log config)
before gevent patches the workers, and requests/urllib3 imported there would escape patching.
"""

from __future__ import annotations

from flask import Flask

from .config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    from .access import init_access
    from .errors import register_error_handlers
    from .ollama import bp as ollama_bp
    from .openai import bp as openai_bp
    from .services import EXTENSION, Services

    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions[EXTENSION] = Services.build(settings)
    register_error_handlers(app)
    init_access(app, settings.extra_origins, settings.api_keys)
    app.register_blueprint(ollama_bp)
    app.register_blueprint(openai_bp)
    return app
