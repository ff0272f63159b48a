"""A minimal Django shop for the compose stack: orders in PostgreSQL, a Redis cache and a
Celery task per order, so every collector of didban-agent has something to report."""
from .celery import app as celery_app

__all__ = ["celery_app"]
