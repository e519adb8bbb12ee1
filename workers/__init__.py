"""Celery workers. The app lives in workers.celery (`celery -A workers worker`)."""

from workers.celery import app

__all__ = ["app"]
