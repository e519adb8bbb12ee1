"""Content-Security-Policy: the browser runs only our own script files.

Every page is rendered without inline scripts or event handlers (tests/security audits each
one), so the policy can forbid them: if an injection ever slipped past escaping and the
Markdown sanitiser, the browser would still refuse to run it. Styles may be inline (htmx adds
its indicator style; progress bars set a width); images come from us or data: URLs (Django's
admin); nothing may frame the site.

The interactive API docs (/api/docs/) are no exception: Swagger UI comes from the
drf-spectacular-sidecar package's static files and starts from a script file, so no page may
load anything from another host. PREFLOOP_CSP=False turns the header off.
"""

from __future__ import annotations

from django.conf import settings

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.PREFLOOP_CSP:
            response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
