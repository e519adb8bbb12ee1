"""Browser tests: Debian's chromium driven by Playwright (never `playwright install`).

A missing browser skips these tests on a laptop; CI sets PREFLOOP_REQUIRE_E2E=1, which turns
the skip into a failure. Screenshots of every page a test passes through land in
$PREFLOOP_ARTIFACTS_DIR/e2e (test-artifacts/e2e by default).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses calls from a
# thread with a running loop unless told it is safe (test code here is not async).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PREFLOOP_ARTIFACTS_DIR", ROOT / "test-artifacts")) / "e2e"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    executable = _chromium()
    if executable is None:
        if os.environ.get("PREFLOOP_REQUIRE_E2E") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Shooter:
    """Saves numbered screenshots of the pages a test passes through."""

    def __init__(self, page, name: str):
        self.page = page
        self.folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, label: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{label}.png"), full_page=True)


@pytest.fixture
def page_factory(browser, request):
    contexts = []
    # Whatever the Content-Security-Policy made the browser refuse (config/headers.py): our own
    # pages must never need an exception to it.
    refused: list[str] = []

    def make(*, width: int = 1366, height: int = 768):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: refused.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None,
        )
        return page, Shooter(page, f"{request.node.name}-{width}x{height}")

    yield make
    for context in contexts:
        context.close()
    assert refused == [], refused


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")
