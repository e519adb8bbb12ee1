"""A database that drops away answers 503 with Retry-After, not a bare 500.

When the connection dies in the middle of a request (a failover, a restart, an administrator
terminating the backend), the request's transaction is rolled back by PostgreSQL and Django
raises OperationalError or InterfaceError. That is the server's trouble, not the client's, and
a retry is the right reaction: writes are single transactions, and the reviewer's (judgment,
skip) are idempotent, so a repeated judgment never stores a second one.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying.
RETRY_AFTER_S = 2
MESSAGE = "The database did not answer, so this request may not have completed. Retry in a moment."


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        if request.path_info.startswith("/api/"):
            response = JsonResponse({"detail": MESSAGE}, status=503)
        else:
            response = HttpResponse(MESSAGE + "\n", status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
