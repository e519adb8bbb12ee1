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


def test_a_verdict_checked_before_the_hold_went_back_is_cleared_when_it_comes_back(
    page_factory, live_server, django_user_model, project, other_project
):
    """The reviewer checks "left", another tab asks in another project (the hold goes back), then
    Enter: the verdict is refused and the same assignment comes back, handed out again. It used
    to come back with its sides drawn anew and "left" still checked, so a second Enter stored
    the response that had been on the right."""
    make_comparisons(project, 1)
    make_comparisons(other_project, 1, prefix="o")
    reviewer = django_user_model.objects.create_user("lee", password="lee-password-1")
    project.reviewers.add(reviewer)
    other_project.reviewers.add(reviewer)
    page, shoot = page_factory()
    log_in(page, live_server, "lee", "lee-password-1")
    page.goto(f"{live_server.url}/projects/{project.pk}/review/")
    left = page.locator(".response[data-side=left] .md").inner_text()
    right = page.locator(".response[data-side=right] .md").inner_text()
    pair = page.locator("form.verdict-form").get_attribute("data-pair")
    page.keyboard.press("1")
    assert page.locator('input[name="choice"]:checked').get_attribute("value") == "left"

    other_tab = page.context.new_page()
    other_tab.goto(f"{live_server.url}/projects/{other_project.pk}/review/")
    other_tab.close()

    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('[data-form-error]')?.textContent.includes('released')")
    shoot("handed-out-again")
    assert page.locator("form.verdict-form").get_attribute("data-pair") != pair
    assert page.locator('input[name="choice"]:checked').count() == 0
    assert page.locator(".response[data-side=left] .md").inner_text() == left
    assert page.locator(".response[data-side=right] .md").inner_text() == right
    assert not Judgment.objects.exists()

    # Enter alone asks for a verdict; nothing is stored until one is chosen again.
    page.keyboard.press("Enter")
    assert "Pick a verdict first" in page.locator("[data-form-error]").inner_text()
    assert not Judgment.objects.exists()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Nothing left to review")
    shoot("judged")
    judgment = Judgment.objects.get(reviewer=reviewer)
    comparison = judgment.comparison
    winner = comparison.candidate_a if judgment.choice == "A" else comparison.candidate_b
    assert winner.text == left
