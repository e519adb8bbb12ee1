"""Request ids: every request gets one, its log lines carry it, and the response says it.

A proxy or client that already sent `X-Request-ID` keeps its id (when it is a sane token), so
one id follows a request from the load balancer through gunicorn into the logs; otherwise a
fresh one is made. The same middleware writes one access line per request, which replaces
gunicorn's own access log (that one cannot carry the id, and is not JSON).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from config.logging import request_id

logger = logging.getLogger("prefloop.request")

HEADER = "X-Request-ID"
# Letters, digits and a few separators, at most 128 characters: anything else (a log-injection
# attempt, a megabyte of header) is replaced by an id of our own.
_SANE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
# Probes that would otherwise fill the access log every few seconds; logged at DEBUG.
QUIET_PATHS = ("/healthz", "/metrics")


def incoming_or_new(value: str | None) -> str:
    if value and _SANE.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = incoming_or_new(request.headers.get(HEADER))
        request.request_id = rid
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[HEADER] = rid
            elapsed_ms = (time.perf_counter() - started) * 1000
            level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
            match = getattr(request, "resolver_match", None)
            logger.log(
                level,
                "%s %s %s %.1f ms",
                request.method,
                request.path,
                response.status_code,
                elapsed_ms,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed_ms, 1),
                    "view": match.view_name if match else None,
                    "user_id": getattr(getattr(request, "user", None), "pk", None),
                },
            )
            return response
        finally:
            request_id.reset(token)
