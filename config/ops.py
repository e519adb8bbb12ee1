"""Health check: answers 200 only when the database and the broker both answer."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:  # any driver error means "not healthy", reported as text
        return str(exc)


def _broker_ok() -> str | None:
    from workers.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return None
    except Exception as exc:
        return str(exc)


@require_GET
@never_cache
def healthz(request):
    problems = {}
    if (err := _database_ok()) is not None:
        problems["database"] = err
    if (err := _broker_ok()) is not None:
        problems["broker"] = err
    if problems:
        return JsonResponse({"status": "unhealthy", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})
