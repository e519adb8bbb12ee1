"""A reviewer judges with the keyboard alone, on a laptop screen and on a phone."""

from __future__ import annotations

import re

import pytest

from prefs.models import Judgment
from tests.e2e.conftest import log_in
from tests.factories import SECRET_SOURCES, make_comparisons

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _progress(page) -> tuple[int, int]:
    line = page.locator("[data-progress]")
    return int(line.get_attribute("data-done")), int(line.get_attribute("data-remaining"))


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)])
def test_reviewer_judges_ten_comparisons_with_the_keyboard(
    page_factory, live_server, django_user_model, project, width, height
):
    make_comparisons(project, 12)
    reviewer = django_user_model.objects.create_user("kim", password="kim-password-1")
    project.reviewers.add(reviewer)
    page, shoot = page_factory(width=width, height=height)
    log_in(page, live_server, "kim", "kim-password-1")
    shoot("projects")
    page.goto(f"{live_server.url}/projects/{project.pk}/review/")
    shoot("review")
    assert _progress(page) == (0, 12)

    # Both responses are on screen without horizontal scrolling at this width.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for side in ("left", "right"):
        box = page.locator(f".response[data-side={side}]").bounding_box()
        assert box["width"] > 0 and box["x"] + box["width"] <= width

    page.keyboard.press("?")
    assert page.locator("#keys-help").is_visible()
    shoot("keys")
    page.keyboard.press("?")
    assert not page.locator("#keys-help").is_visible()

    verdicts = ["1", "2", "3", "4", "1", "2", "1", "2", "3", "1"]
    for done, key in enumerate(verdicts):
        before = page.locator("form.verdict-form").get_attribute("action")
        page.keyboard.press(key)
        page.keyboard.press("Shift+3")
        if done == 0:
            page.keyboard.press("r")
            page.keyboard.type("left is kinder")
            page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        # The next pair arrives by htmx: same page, new form, progress moved.
        page.wait_for_function(
            "before => document.querySelector('form.verdict-form')?.getAttribute('action') !== before",
            arg=before,
        )
        assert _progress(page) == (done + 1, 12 - done - 1)
    shoot("after-ten")

    page.keyboard.press("s")
    page.wait_for_function("() => document.querySelector('[data-progress]').dataset.remaining === '1'")
    assert _progress(page) == (10, 1)

    judgments = list(Judgment.objects.filter(reviewer=reviewer).order_by("id"))
    assert len(judgments) == 10
    assert {j.strength for j in judgments} == {3}
    assert judgments[0].rationale == "left is kinder"
    expected = {"1": "left", "2": "right", "3": "tie", "4": "both_bad"}
    for judgment, key in zip(judgments, verdicts, strict=True):
        shown = {"A": "left" if judgment.left_is_a else "right", "B": "right" if judgment.left_is_a else "left"}
        assert shown.get(judgment.choice, judgment.choice) == expected[key]

    html = page.content()
    for secret in SECRET_SOURCES:
        assert secret not in html
    assert re.search(r"10</strong> done", html)


def test_enter_without_a_verdict_says_what_to_press(page_factory, live_server, django_user_model, project):
    make_comparisons(project, 1)
    reviewer = django_user_model.objects.create_user("lee", password="lee-password-1")
    project.reviewers.add(reviewer)
    page, shoot = page_factory()
    log_in(page, live_server, "lee", "lee-password-1")
    page.goto(f"{live_server.url}/projects/{project.pk}/review/")
    page.keyboard.press("Enter")
    assert "Pick a verdict first" in page.locator("[data-form-error]").inner_text()
    shoot("no-verdict")
    assert Judgment.objects.count() == 0
