from __future__ import annotations

from dataclasses import fields

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from prefs.api.stats import StatsQuery
from prefs.models import Judgment
from prefs.stats.flags import FlagThresholds
from tests.factories import SECRET_SOURCES, make_comparisons, make_reviewers

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged_project(project, django_user_model):
    """Two reviewers judge 12 comparisons; the first always takes the left side, quickly."""
    first, second = make_reviewers(django_user_model, project, 2)
    for k, comparison in enumerate(make_comparisons(project, 12)):
        left_is_a = k % 2 == 0
        Judgment.objects.create(
            comparison=comparison,
            reviewer=first,
            choice="A" if left_is_a else "B",
            left_is_a=left_is_a,
            ms_on_task=400,
        )
        Judgment.objects.create(
            comparison=comparison,
            reviewer=second,
            choice="A",
            left_is_a=k % 3 == 0,
            ms_on_task=15000,
        )
    return project, first, second


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize("name", ["api-project-stats", "api-project-leaderboard"])
def test_anonymous_callers_get_401(project, name):
    response = _client().get(reverse(name, args=[project.pk]))
    assert response.status_code == 401


@pytest.mark.parametrize("name", ["api-project-stats", "api-project-leaderboard"])
def test_a_reviewer_of_the_project_gets_403(project, reviewer, name):
    response = _client(reviewer).get(reverse(name, args=[project.pk]))
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


@pytest.mark.parametrize("name", ["api-project-stats", "api-project-leaderboard"])
def test_an_outsider_gets_403(project, outsider, name):
    assert _client(outsider).get(reverse(name, args=[project.pk])).status_code == 403


@pytest.mark.parametrize("name", ["api-project-stats", "api-project-leaderboard"])
def test_an_unknown_project_is_404_for_admins(admin_user, name):
    assert _client(admin_user).get(reverse(name, args=[999999])).status_code == 404


def test_admin_gets_agreement_bias_and_the_reviewer_table(judged_project, admin_user):
    project, first, second = judged_project
    body = _client(admin_user).get(reverse("api-project-stats", args=[project.pk])).json()
    assert body["project"] == project.pk
    assert body["judgments"] == 24
    assert body["agreement"]["units"] == 12
    assert body["agreement"]["pairs"][0]["n"] == 12
    assert body["agreement"]["pairs"][0]["username_a"] == first.username
    rows = {row["username"]: row for row in body["reviewers"]}
    assert rows[first.username]["position"]["share"] == 1.0
    assert {flag["code"] for flag in rows[first.username]["flags"]} == {
        "too_fast",
        "position_bias",
    }
    assert rows[second.username]["flags"] == []
    assert body["thresholds"]["min_median_ms"] == FlagThresholds().min_median_ms


def test_threshold_overrides_change_the_flags(judged_project, admin_user):
    project, first, _ = judged_project
    url = reverse("api-project-stats", args=[project.pk])
    body = _client(admin_user).get(url, {"min_median_ms": 100, "min_decisive": 20}).json()
    rows = {row["username"]: row for row in body["reviewers"]}
    assert rows[first.username]["flags"] == []
    assert body["thresholds"]["min_decisive"] == 20


def test_bad_threshold_is_a_400_naming_the_field(project, admin_user):
    url = reverse("api-project-stats", args=[project.pk])
    response = _client(admin_user).get(url, {"position_share": 3})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "position_share"


def test_every_flag_threshold_can_be_set_from_the_query():
    thresholds = {f.name for f in fields(FlagThresholds)}
    assert set(StatsQuery().fields) == thresholds | {"preference_set"}


def test_stats_of_one_preference_set_version(judged_project, admin_user, other_project):
    from prefs.services.snapshots import FreezeRule, preference_set_freeze

    project, _, _ = judged_project
    # The two reviewers agree on comparisons 0, 2, 4, … only; unanimous ones are kept.
    frozen = preference_set_freeze(project=project, rule=FreezeRule(min_agreement=1.0))
    url = reverse("api-project-stats", args=[project.pk])
    body = _client(admin_user).get(url, {"preference_set": frozen.pk}).json()
    assert (body["preference_set"], body["version"]) == (frozen.pk, 1)
    assert body["judgments"] == 2 * frozen.pair_count
    assert frozen.pair_count == 6
    # Every kept verdict is the same "A": no variation, so α is undefined rather than 1.
    assert body["agreement"]["krippendorff_alpha"] is None
    assert body["choices"] == {"A": 12}

    elsewhere = preference_set_freeze(project=other_project)
    response = _client(admin_user).get(url, {"preference_set": elsewhere.pk})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "preference_set"


def test_admin_gets_the_leaderboard_with_intervals_and_matrix(judged_project, admin_user):
    project, _, _ = judged_project
    url = reverse("api-project-leaderboard", args=[project.pk])
    body = _client(admin_user).get(url, {"seed": 3}).json()
    assert body["resamples"] == 1000
    assert body["seed"] == 3
    assert body["judgments"] == 24
    assert {row["source"] for row in body["sources"]} == set(SECRET_SOURCES)
    for row in body["sources"]:
        assert row["low"] <= row["score"] <= row["high"]
    assert body["matrix"]["sources"] == [row["source"] for row in body["sources"]]
    # Same seed, same intervals.
    again = _client(admin_user).get(url, {"seed": 3}).json()
    assert again["sources"] == body["sources"]


def test_leaderboard_refuses_fewer_than_1000_resamples(project, admin_user):
    url = reverse("api-project-leaderboard", args=[project.pk])
    response = _client(admin_user).get(url, {"resamples": 10})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "resamples"


def test_leaderboard_of_an_empty_project_is_empty(project, admin_user):
    body = _client(admin_user).get(reverse("api-project-leaderboard", args=[project.pk])).json()
    assert body["sources"] == []
    assert body["judgments"] == 0
