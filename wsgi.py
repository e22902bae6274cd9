"""WSGI entry point: `gunicorn -c gunicorn.conf.py` loads `wsgi:app` in each worker."""

from dotenv import load_dotenv

load_dotenv()  # .env fills in what the environment does not set; real variables win

from app import create_app  # noqa: E402

app = create_app()
