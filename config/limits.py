"""Request bodies over the limit are refused with 413 before anyone reads them.

Django reads a body lazily and, past DATA_UPLOAD_MAX_MEMORY_SIZE, raises RequestDataTooBig,
which it answers as a bare 400; and it would write a multipart upload of any size to disk
before a view could look at it. This middleware decides from Content-Length alone, so an
oversized body is never read: the import endpoints (API and page) may take
PREFLOOP_IMPORT_MAX_BYTES plus the multipart envelope, everything else
DATA_UPLOAD_MAX_MEMORY_SIZE (Django's 2.5 MB unless set). A body sent without Content-Length
(chunked) reaches Django as empty, so it cannot slip past.

A RequestDataTooBig that still happens (too many form fields read as one body, say) becomes a
413 with the same message, not a 400.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

# URL names that accept a whole import file as their body.
UPLOAD_URL_NAMES = frozenset({"api-project-import", "prefs-import"})
# Room for the multipart boundary and part headers around the file (bytes).
MULTIPART_SLACK_BYTES = 64 * 1024


def body_limit(path: str) -> int | None:
    """The largest body `path` accepts, in bytes; None for no limit."""
    try:
        name = resolve(path).url_name
    except Resolver404:
        name = None
    if name in UPLOAD_URL_NAMES:
        return settings.PREFLOOP_IMPORT_MAX_BYTES + MULTIPART_SLACK_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large(request, limit: int | None) -> HttpResponse:
    size = f" of {limit:,} bytes" if limit is not None else ""
    message = f"The request body is larger than this endpoint's limit{size}."
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message}, status=413)
    return HttpResponse(message + "\n", status=413, content_type="text/plain; charset=utf-8")


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared:
            limit = body_limit(request.path_info)
            if limit is not None and declared > limit:
                return too_large(request, limit)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return too_large(request, body_limit(request.path_info))
        return None
