"""WSGI entry point: `gunicorn -c gunicorn.conf.py` loads `wsgi:app` in each worker."""

import os

from dotenv import load_dotenv

# .env fills in what the environment does not set; real variables win (see gunicorn.conf.py).
load_dotenv(os.environ.get("PROXY_ENV_FILE", ".env"))

from app import create_app  # noqa: E402

app = create_app()
