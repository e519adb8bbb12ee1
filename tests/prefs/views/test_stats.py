from __future__ import annotations

import re

import pytest
from django.urls import reverse

from prefs.models import Judgment
from tests.factories import make_comparisons, make_reviewers

pytestmark = pytest.mark.django_db

PAGES = ["prefs-stats-dashboard", "prefs-stats-reviewers", "prefs-stats-leaderboard"]


@pytest.fixture
def judged_project(project, django_user_model):
    """Three reviewers on 20 comparisons: 'rev0' always takes the left side in 0.4 s."""
    people = make_reviewers(django_user_model, project, 3)
    for k, comparison in enumerate(make_comparisons(project, 20)):
        for n, person in enumerate(people):
            left_is_a = (k + n) % 2 == 0
            if n == 0:
                choice, ms = ("A" if left_is_a else "B"), 400
            else:
                choice, ms = ("A" if k % 4 else "B"), 20000
            Judgment.objects.create(
                comparison=comparison,
                reviewer=person,
                choice=choice,
                left_is_a=left_is_a,
                ms_on_task=ms,
            )
    return project


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, project, name):
    url = reverse(name, args=[project.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
def test_a_reviewer_of_the_project_gets_404(client, project, reviewer, name):
    client.force_login(reviewer)
    assert client.get(reverse(name, args=[project.pk])).status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_an_outsider_gets_404(client, project, outsider, name):
    client.force_login(outsider)
    assert client.get(reverse(name, args=[project.pk])).status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_admin_sees_an_empty_project_without_errors(client, project, admin_user, name):
    client.force_login(admin_user)
    response = client.get(reverse(name, args=[project.pk]))
    assert response.status_code == 200
    assert project.name in response.content.decode()


@pytest.mark.parametrize("name", PAGES)
def test_pages_load_nothing_from_elsewhere(client, judged_project, admin_user, name):
    client.force_login(admin_user)
    html = client.get(reverse(name, args=[judged_project.pk])).content.decode()
    # Every script and stylesheet comes from this site's static files.
    for attribute in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not attribute.startswith(("http:", "https:", "//")), attribute
    assert "<svg" in html


def test_dashboard_shows_agreement_bias_and_the_flag_count(client, judged_project, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("prefs-stats-dashboard", args=[judged_project.pk]))
    html = response.content.decode()
    stats = response.context["stats"]
    assert stats["judgments"] == 60
    assert response.context["flagged"] == 1
    assert "Krippendorff" in html and "Fleiss" in html
    assert f"{stats['agreement']['krippendorff_alpha']:.2f}" in html
    # The throughput chart has one bar for the one day all judgments were made.
    assert html.count("judgments</title></rect>") == 1
    # The pairwise κ heat map has a cell per ordered pair of the three reviewers.
    assert "Cohen&#x27;s kappa for each pair of reviewers" in html


def test_reviewer_table_marks_the_left_picker_with_its_flags(client, judged_project, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("prefs-stats-reviewers", args=[judged_project.pk]))
    html = response.content.decode()
    rows = re.findall(r'<tr class="flagged">\s*<th scope="row">(\w+)</th>', html)
    assert rows == ["rev0"]
    assert "position_bias" in html and "too_fast" in html
    assert "How flags are decided" in html


def test_leaderboard_shows_ratings_intervals_and_the_matrix(client, judged_project, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("prefs-stats-leaderboard", args=[judged_project.pk]))
    html = response.content.decode()
    board = response.context["board"]
    assert board["judgments"] == 60
    assert board["resamples"] == 1000
    assert [row["source"] for row in board["sources"]][0] in html
    assert "95% bootstrap intervals" in html
    # The matrix: two sources, so two coloured cells with a share and two diagonal cells.
    assert html.count("comparisons</title><rect") == 2


def test_leaderboard_can_leave_imported_labels_out(client, project, admin_user):
    comparison = make_comparisons(project, 1)[0]
    Judgment.objects.create(comparison=comparison, choice="A", imported=True)
    client.force_login(admin_user)
    url = reverse("prefs-stats-leaderboard", args=[project.pk])
    assert client.get(url).context["board"]["judgments"] == 1
    human_only = client.get(url, {"imported": "0"})
    assert human_only.context["board"]["judgments"] == 0
    assert "No comparisons between two different sources" in human_only.content.decode()


def test_source_names_are_escaped_in_the_charts(client, project, admin_user):
    from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create

    prompt = prompt_get_or_create(project=project, messages=[{"role": "user", "content": "Hi"}])
    comparison = comparison_create(
        project=project,
        prompt=prompt,
        a=CandidateSpec("one", source="<script>alert(1)</script>"),
        b=CandidateSpec("two", source="plain"),
    )
    Judgment.objects.create(comparison=comparison, choice="A", imported=True)
    client.force_login(admin_user)
    html = client.get(reverse("prefs-stats-leaderboard", args=[project.pk])).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)" in html


def test_admins_find_the_stats_pages_from_the_project_list(client, project, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("home")).content.decode()
    assert reverse("prefs-stats-dashboard", args=[project.pk]) in html
    assert reverse("prefs-stats-leaderboard", args=[project.pk]) in html


def test_dashboard_describes_one_preference_set_version(client, judged_project, admin_user):
    from prefs.services.snapshots import FreezeRule, preference_set_freeze

    frozen = preference_set_freeze(project=judged_project, rule=FreezeRule(min_agreement=1.0))
    client.force_login(admin_user)
    url = reverse("prefs-stats-dashboard", args=[judged_project.pk])
    whole = client.get(url)
    assert f"Behind preference set v{frozen.version}" in whole.content.decode()
    one = client.get(url, {"preference_set": frozen.pk})
    assert one.context["stats"]["version"] == frozen.version
    assert one.context["stats"]["judgments"] < whole.context["stats"]["judgments"]
    assert client.get(url, {"preference_set": 999999}).status_code == 404
    assert client.get(url, {"preference_set": "x"}).status_code == 404


@pytest.mark.parametrize("method", ["get", "post"])
def test_gold_page_is_for_admins_only(client, project, reviewer, outsider, method):
    url = reverse("prefs-stats-gold", args=[project.pk])
    response = getattr(client, method)(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    for person in (reviewer, outsider):
        client.force_login(person)
        assert getattr(client, method)(url).status_code == 404


def test_admin_marks_a_comparison_gold_and_sees_how_reviewers_did(
    client, judged_project, admin_user
):
    comparison = judged_project.comparisons.order_by("id")[1]
    client.force_login(admin_user)
    url = reverse("prefs-stats-gold", args=[judged_project.pk])
    listing = client.get(url, {"show": "all"}).content.decode()
    assert comparison.candidate_a.text in listing

    response = client.post(
        f"{url}?show=all", {"comparison": comparison.pk, "gold_choice": "B"}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"{url}?show=all"
    assert f"Comparison {comparison.pk} is gold now" in response.content.decode()
    comparison.refresh_from_db()
    assert comparison.gold_choice == "B"

    # rev0 picked the left side (B on this odd comparison); the other two said A.
    gold_page = client.get(url)
    (row,) = gold_page.context["page"].object_list
    assert (row.right_judgments, row.human_judgments) == (1, 3)
    stats = client.get(reverse("prefs-stats-reviewers", args=[judged_project.pk])).context
    gold = {r["username"]: r["gold"] for r in stats["stats"]["reviewers"]}
    assert gold["rev0"]["accuracy"] == 1.0 and gold["rev1"]["accuracy"] == 0.0


def test_a_bad_gold_choice_is_reported_and_changes_nothing(client, judged_project, admin_user):
    comparison = judged_project.comparisons.first()
    client.force_login(admin_user)
    url = reverse("prefs-stats-gold", args=[judged_project.pk])
    response = client.post(url, {"comparison": comparison.pk, "gold_choice": "left"}, follow=True)
    assert "Nothing changed: gold choice must be one of" in response.content.decode()
    comparison.refresh_from_db()
    assert comparison.gold_choice == ""
