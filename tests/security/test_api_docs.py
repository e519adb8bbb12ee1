"""/api/docs/ runs Swagger UI from our own static files, under the site's script policy.

It used to load swagger-ui-dist@latest from a CDN, without an integrity check, on our origin.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db

# src= and href= of the page's elements, and url(...) in its inline style.
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


def _references(html: str) -> list[str]:
    return [first or second for first, second in _REFERENCES.findall(html)]


def test_the_docs_page_references_no_other_host(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    references = _references(page.content.decode())
    assert references, "the page loads Swagger UI from somewhere"
    # A host of its own (https://cdn…, //cdn…) is another host; paths on this site have none.
    assert [url for url in references if urlsplit(url).netloc or urlsplit(url).scheme] == []
    assert "<script>" not in page.content.decode(), "no inline script: the policy would block it"


def test_every_file_the_docs_page_needs_is_served_here(client):
    page = client.get("/api/docs/")
    scripts = re.findall(r'<script src="([^"]+)"', page.content.decode())
    assert len(scripts) == 3  # the bundle, its preset, and the start-up script
    for url in _references(page.content.decode()):
        answer = client.get(url)
        assert answer.status_code == 200, url
        body = b"".join(answer.streaming_content) if answer.streaming else answer.content
        assert body, url
    start = client.get(scripts[-1])
    assert start["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in start.content and b"/api/schema/" in start.content
    # Swagger UI would post the schema to validator.swagger.io for a badge.
    assert b'"validatorUrl": null' in start.content


def test_the_docs_page_is_under_the_sites_script_policy(client):
    policy = client.get("/api/docs/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert "http" not in policy and "*" not in policy
