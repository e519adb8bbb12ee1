from __future__ import annotations

import re

import pytest

from prefs.models import Judgment
from prefs.services.assignment import AssignmentError
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
from tests.factories import SECRET_SOURCES, make_comparisons
from tests.hostile import XSS_PAYLOADS, assert_inert

pytestmark = pytest.mark.django_db


def _url(project):
    return f"/projects/{project.pk}/review/"


def _assignment_id(html: str) -> int:
    return int(re.search(r"/review/(\d+)/judge/", html).group(1))


def test_anonymous_visitors_are_sent_to_log_in(client, project):
    response = client.get(_url(project))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_outsiders_get_404(client, outsider, project):
    client.force_login(outsider)
    assert client.get(_url(project)).status_code == 404


def test_review_page_shows_conversation_pair_guidelines_and_progress(client, reviewer, project):
    make_comparisons(project, 3)
    client.force_login(reviewer)
    html = client.get(_url(project)).content.decode()
    assert "q question 0?" in html
    assert "q answer 0 one" in html and "q answer 0 two" in html
    assert "<em>kinder</em>" in html  # guidelines rendered as Markdown
    assert re.search(r"<strong>0</strong> done · <strong>3</strong> left", html)
    for secret in SECRET_SOURCES:
        assert secret not in html


def test_htmx_submit_swaps_in_the_next_pair_and_moves_progress(client, reviewer, project):
    make_comparisons(project, 2)
    client.force_login(reviewer)
    first = _assignment_id(client.get(_url(project)).content.decode())
    response = client.post(
        f"{_url(project)}{first}/judge/",
        {"choice": "left", "strength": "3", "rationale": "clearer"},
        HTTP_HX_REQUEST="true",
    )
    fragment = response.content.decode()
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<section id="review-pair"')
    assert "<html" not in fragment
    assert re.search(r"<strong>1</strong> done · <strong>1</strong> left", fragment)
    assert _assignment_id(fragment) != first
    judgment = Judgment.objects.get()
    assert judgment.strength == 3 and judgment.rationale == "clearer"


def test_plain_form_submit_redirects_back_to_the_page(client, reviewer, project):
    make_comparisons(project, 1)
    client.force_login(reviewer)
    first = _assignment_id(client.get(_url(project)).content.decode())
    response = client.post(f"{_url(project)}{first}/judge/", {"choice": "tie"})
    assert response.status_code == 302 and response["Location"] == _url(project)
    assert "Nothing left to review" in client.get(_url(project)).content.decode()


def test_a_missing_choice_keeps_the_pair_and_says_why(client, reviewer, project):
    make_comparisons(project, 1)
    client.force_login(reviewer)
    first = _assignment_id(client.get(_url(project)).content.decode())
    fragment = client.post(
        f"{_url(project)}{first}/judge/", {"rationale": "hmm"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "choice: must be one of" in fragment
    assert _assignment_id(fragment) == first
    assert ">hmm</textarea>" in fragment
    assert Judgment.objects.count() == 0


def test_skip_shows_the_next_pair(client, reviewer, project):
    make_comparisons(project, 2)
    client.force_login(reviewer)
    first = _assignment_id(client.get(_url(project)).content.decode())
    fragment = client.post(f"{_url(project)}{first}/skip/", HTTP_HX_REQUEST="true").content.decode()
    assert _assignment_id(fragment) != first


def test_when_other_tabs_keep_taking_the_hold_the_page_says_try_again_not_all_done(
    client, reviewer, project, monkeypatch
):
    make_comparisons(project, 1)
    client.force_login(reviewer)

    def busy(**kwargs):
        raise AssignmentError("Too many simultaneous requests for the next comparison; try again.", status=409)

    monkeypatch.setattr("prefs.views.review.comparison_next_for", busy)
    page = client.get(_url(project))
    html = page.content.decode()
    assert page.status_code == 200
    assert "try again" in html and "Nothing left to review" not in html


def test_forms_carry_csrf_and_posts_without_it_are_refused(reviewer, project):
    from django.test import Client

    make_comparisons(project, 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    html = client.get(_url(project)).content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    response = client.post(f"{_url(project)}{_assignment_id(html)}/judge/", {"choice": "left"})
    assert response.status_code == 403
    assert Judgment.objects.count() == 0


def test_a_reviewer_cannot_post_to_another_reviewers_assignment(client, reviewer, project, django_user_model):
    make_comparisons(project, 1)
    client.force_login(reviewer)
    theirs = _assignment_id(client.get(_url(project)).content.decode())
    colleague = django_user_model.objects.create_user("colleague", password="x" * 12)
    project.reviewers.add(colleague)
    client.force_login(colleague)
    fragment = client.post(
        f"{_url(project)}{theirs}/judge/", {"choice": "left"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "No such assignment" in fragment
    assert Judgment.objects.count() == 0


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_hostile_prompts_responses_and_guidelines_render_inert(client, reviewer, project, payload):
    project.guidelines = f"Guidelines {payload}"
    project.save()
    prompt = prompt_get_or_create(
        project=project, messages=[{"role": "user", "content": f"Prompt {payload}"}]
    )
    comparison_create(
        project=project,
        prompt=prompt,
        a=CandidateSpec(f"Left {payload}", source="x"),
        b=CandidateSpec(f"Right\n\n```\n{payload}\n```", source="y"),
    )
    client.force_login(reviewer)
    html = client.get(_url(project)).content.decode()
    assert "Prompt" in html and "Left" in html
    assert_inert(html)


def test_home_lists_only_the_reviewers_projects(client, reviewer, project, other_project):
    client.force_login(reviewer)
    html = client.get("/").content.decode()
    assert project.name in html and other_project.name not in html


def test_a_project_that_shows_links_as_text_shows_no_clickable_link(client, reviewer, project):
    prompt = prompt_get_or_create(project=project, messages=[{"role": "user", "content": "See [here](https://a.example/p)"}])
    comparison_create(
        project=project, prompt=prompt,
        a=CandidateSpec("[Log in again](https://evil.example/login)", source="s1"),
        b=CandidateSpec("<https://evil.example/b>", source="s2"),
    )
    project.guidelines = "Read [the rules](//rules.example/)"
    project.links_as_text = True
    project.save()
    client.force_login(reviewer)
    html = client.get(_url(project)).content.decode()
    assert "[Log in again](https://evil.example/login)" in html
    assert "&lt;https://evil.example/b&gt;" in html
    assert not re.search(r"<a [^>]*href=\"(https:)?//", html)


def test_direction_controls_in_names_and_texts_are_shown_escaped(client, django_user_model, project):
    sneaky = django_user_model.objects.create_user("evil\u202egnp", password="x" * 12)
    project.reviewers.add(sneaky)
    prompt = prompt_get_or_create(project=project, messages=[{"role": "user", "content": "Is \u2067this\u2069 ok?"}])
    comparison_create(
        project=project, prompt=prompt,
        a=CandidateSpec("rm -rf \u202e/ #", source="s1"), b=CandidateSpec("fine", source="s2"),
    )
    client.force_login(sneaky)
    html = client.get(_url(project)).content.decode()
    for char in "\u202e\u2067\u2069":
        assert char not in html
        assert f"&lt;U+{ord(char):04X}&gt;</span>" in html


def _sides(html: str) -> list[str]:
    return re.findall(r'data-side="(?:left|right)">\s*<h2>.*?</h2>\s*<div class="md">(.*?)</div>', html, re.S)


def test_a_verdict_checked_for_a_hold_handed_out_again_is_not_kept(client, reviewer, project, other_project):
    """The page shows a pair; another tab asks in another project (the hold goes back); the page's
    verdict is then refused, and the page shows the same assignment handed out again. It used to
    show it with its sides drawn anew and the old verdict still checked, so Enter stored it."""
    make_comparisons(project, 1)
    make_comparisons(other_project, 1, prefix="o")
    other_project.reviewers.add(reviewer)
    client.force_login(reviewer)
    page = client.get(_url(project)).content.decode()
    first = _assignment_id(page)
    revision = re.search(r'name="revision" value="(\d+)"', page).group(1)
    client.get(_url(other_project))
    fragment = client.post(
        f"{_url(project)}{first}/judge/",
        {"choice": "left", "strength": "2", "rationale": "kinder", "revision": revision},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "released" in fragment
    assert _assignment_id(fragment) == first
    assert _sides(fragment) == _sides(page)
    assert re.search(r'name="revision" value="(\d+)"', fragment).group(1) == str(int(revision) + 1)
    assert not re.search(r'name="choice" value="\w+" checked', fragment)
    assert Judgment.objects.count() == 0
    # The old page's verdict, sent again, is refused: the hold it showed was handed out anew.
    again = client.post(
        f"{_url(project)}{first}/judge/", {"choice": "left", "revision": revision}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "handed out again" in again
    assert Judgment.objects.count() == 0
