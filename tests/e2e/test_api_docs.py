"""The interactive API docs render in a real browser from this site alone, under its CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_the_schema_without_another_host(page_factory, live_server):
    page, shoot = page_factory()
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.goto(f"{live_server.url}/api/docs/")
    # Swagger UI fetched /api/schema/ and drew its operations (page_factory fails on any CSP refusal).
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Prefloop API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag")
    shoot("api-docs")
    assert hosts == {urlsplit(live_server.url).netloc}
