"""Health check: answers 200 only when the database and the broker both answer."""

from __future__ import annotations

from django.conf import settings
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
    from workers.celery import app, transport_options

    # The URL job launches send to (tuning.services.jobs), read now: the Celery app's own copy
    # is taken once, when workers.celery is first imported.
    url = settings.CELERY_BROKER_URL
    try:
        with app.connection_for_write(url, transport_options=transport_options(url)) as conn:
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
