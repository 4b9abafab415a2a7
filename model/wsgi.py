"""The WSGI entry gunicorn runs (`wsgi:app`)."""

from predictor import app  # noqa: F401
