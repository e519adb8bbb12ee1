from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from prefs.api.review import VerdictSerializer, _plain_verdict
from prefs.models import Judgment
from prefs.services.judging import RATIONALE_MAX_CHARS, Verdict
from tests.factories import SECRET_SOURCES, make_comparisons

pytestmark = pytest.mark.django_db


def _client(user=None, *, token=False) -> APIClient:
    client = APIClient()
    if user is not None:
        if token:
            key, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {key.key}")
        else:
            client.force_authenticate(user)
    return client


def test_next_gives_a_blind_pair_with_guidelines(reviewer, project):
    make_comparisons(project, 1)
    response = _client(reviewer, token=True).get(f"/api/v1/projects/{project.pk}/next/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"assignment", "revision", "prompt", "left", "right", "guidelines", "expires_at"}
    assert body["revision"] == 1
    assert body["prompt"]["messages"] == [{"role": "user", "content": "q question 0?"}]
    assert {body["left"]["text"], body["right"]["text"]} == {"q answer 0 one", "q answer 0 two"}
    assert body["guidelines"] == project.guidelines
    # Blindness: no provenance, no candidate or comparison ids.
    raw = response.content.decode()
    for secret in SECRET_SOURCES:
        assert secret not in raw
    assert "candidate" not in raw and "comparison" not in raw and "source" not in raw


def test_next_answers_204_when_nothing_is_left(reviewer, project):
    assert _client(reviewer).get(f"/api/v1/projects/{project.pk}/next/").status_code == 204


def test_judgment_then_repeat_stores_one_judgment(reviewer, project):
    make_comparisons(project, 2)
    client = _client(reviewer, token=True)
    assignment = client.get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"]
    url = f"/api/v1/assignments/{assignment}/judgment/"
    first = client.post(url, {"choice": "right", "strength": 1, "rationale": "shorter"}, format="json")
    assert first.status_code == 201
    assert first.json()["choice"] == "right" and first.json()["strength"] == 1
    repeat = client.post(url, {"choice": "right", "strength": 1}, format="json")
    assert repeat.status_code == 200 and repeat.json()["id"] == first.json()["id"]
    assert Judgment.objects.count() == 1
    # The next comparison is a different one.
    assert client.get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"] != assignment


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"choice": "middle"}, "choice"),
        ({"choice": "left", "strength": 7}, "strength"),
        ({"choice": "left", "strength": 0}, "strength"),
        ({}, "choice"),
    ],
)
def test_bad_judgments_get_400_naming_the_field(reviewer, project, payload, field):
    make_comparisons(project, 1)
    client = _client(reviewer)
    assignment = client.get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"]
    response = client.post(f"/api/v1/assignments/{assignment}/judgment/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body["detail"]
    assert [e["field"] for e in body["errors"]] == [field]
    assert Judgment.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"choice": "left"},
        {"choice": "right", "strength": 1, "rationale": "  shorter\n"},
        {"choice": "tie", "strength": 3, "rationale": ""},
        {"choice": "both_bad", "strength": 2, "rationale": "   ", "extra": 1},
        {"choice": "left", "rationale": "x" * RATIONALE_MAX_CHARS},
        {"choice": "left", "rationale": " " + "x" * RATIONALE_MAX_CHARS + " "},
        {"choice": "left", "rationale": "x" * (RATIONALE_MAX_CHARS + 1)},
        {"choice": "left", "rationale": "a\x00b"},
        {"choice": "left", "rationale": "a\ud800b"},
        {"choice": "left", "rationale": None},
        {"choice": "left", "rationale": 5},
        {"choice": "left", "strength": "2"},
        {"choice": "left", "strength": 2.0},
        {"choice": "left", "strength": True},
        {"choice": "left", "strength": None},
        {"choice": "left", "strength": 4},
        {"choice": "left", "revision": 3},
        {"choice": "left", "revision": None},
        {"choice": "left", "revision": "3"},
        {"choice": "left", "revision": 0},
        {"choice": "left", "revision": 2**63},
        {"choice": "left", "revision": True},
        {"choice": "LEFT"},
        {"choice": ["left"]},
        {"choice": None},
        {},
        ["left"],
        "left",
    ],
)
def test_the_quick_verdict_reading_agrees_with_the_serializer(payload):
    """The judgment endpoint reads common verdicts without the serializer, with the same outcome."""
    quick = _plain_verdict(payload)
    incoming = VerdictSerializer(data=payload)
    if quick is not None:
        assert incoming.is_valid(), incoming.errors
        assert quick == Verdict(**incoming.validated_data)
    elif isinstance(payload, dict) and payload.get("choice") == "left" and len(payload) == 1:
        pytest.fail("the plainest verdict should be read quickly")


def test_malformed_json_is_refused_with_a_reason(reviewer, project):
    make_comparisons(project, 1)
    client = _client(reviewer)
    assignment = client.get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"]
    response = client.post(
        f"/api/v1/assignments/{assignment}/judgment/", "{nope", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_a_reviewer_cannot_judge_or_skip_another_reviewers_assignment(reviewer, project, django_user_model):
    make_comparisons(project, 1)
    assignment = _client(reviewer).get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"]
    colleague = django_user_model.objects.create_user("colleague", password="x" * 12)
    project.reviewers.add(colleague)
    stranger = _client(colleague)
    judged = stranger.post(f"/api/v1/assignments/{assignment}/judgment/", {"choice": "left"}, format="json")
    skipped = stranger.post(f"/api/v1/assignments/{assignment}/skip/")
    assert judged.status_code == 404 and skipped.status_code == 404
    assert Judgment.objects.count() == 0


def test_outsiders_and_anonymous_callers_get_nothing(outsider, project):
    make_comparisons(project, 1)
    assert _client(outsider).get(f"/api/v1/projects/{project.pk}/next/").status_code == 404
    anonymous = _client().get(f"/api/v1/projects/{project.pk}/next/")
    assert anonymous.status_code == 401
    assert _client().post("/api/v1/assignments/1/judgment/", {"choice": "left"}, format="json").status_code == 401


def test_skip_releases_and_is_not_offered_again(reviewer, project):
    make_comparisons(project, 1)
    client = _client(reviewer)
    assignment = client.get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"]
    assert client.post(f"/api/v1/assignments/{assignment}/skip/").status_code == 204
    assert client.get(f"/api/v1/projects/{project.pk}/next/").status_code == 204


def test_session_auth_requires_csrf(reviewer, project):
    make_comparisons(project, 1)
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="rita", password="rita-password")
    assignment = client.get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"]
    response = client.post(f"/api/v1/assignments/{assignment}/judgment/", {"choice": "left"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Judgment.objects.count() == 0


@pytest.fixture
def sides_drawn_alternately(monkeypatch):
    """Sides drawn in pairs of equal draws, alternating: with one draw in the other project in
    between, each draw for the first project comes out the other way than the last one there."""
    import itertools

    from prefs.services import assignment as assignment_service

    draws = itertools.cycle([0.25, 0.25, 0.75, 0.75])
    monkeypatch.setattr(assignment_service, "_rng", type("Alternate", (), {"random": lambda self: next(draws)})())


def _left_choice_stored(judgment) -> str:
    """The text a stored "left" verdict points at, read back from canonical A/B terms."""
    from prefs.models import Candidate

    comparison = judgment.comparison
    winner = comparison.candidate_a_id if judgment.choice == "A" else comparison.candidate_b_id
    return Candidate.objects.get(pk=winner).text


def test_a_hold_handed_out_again_keeps_its_sides_and_an_old_views_revision_gets_409(
    reviewer, project, other_project, sides_drawn_alternately
):
    """next on one project, next on another (which gives the first hold back), next on the first
    again: the same assignment comes back. It used to come back with its sides drawn anew, so a
    client that judged what it had been shown stored the other response as the winner."""
    make_comparisons(project, 1)
    make_comparisons(other_project, 1, prefix="o")
    other_project.reviewers.add(reviewer)
    client = _client(reviewer, token=True)
    first = client.get(f"/api/v1/projects/{project.pk}/next/").json()
    views = [first]
    for _round in range(6):
        assert client.get(f"/api/v1/projects/{other_project.pk}/next/").status_code == 200
        views.append(client.get(f"/api/v1/projects/{project.pk}/next/").json())
    assert {view["assignment"] for view in views} == {first["assignment"]}
    assert {(view["left"]["text"], view["right"]["text"]) for view in views} == {
        (first["left"]["text"], first["right"]["text"])
    }
    assert [view["revision"] for view in views] == list(range(first["revision"], first["revision"] + 7))

    url = f"/api/v1/assignments/{first['assignment']}/judgment/"
    stale = client.post(url, {"choice": "left", "revision": first["revision"]}, format="json")
    assert stale.status_code == 409
    assert "handed out again" in stale.json()["detail"]
    stale_skip = client.post(f"/api/v1/assignments/{first['assignment']}/skip/", {"revision": first["revision"]}, format="json")
    assert stale_skip.status_code == 409
    assert not Judgment.objects.exists()
    # The current revision, or none at all: "left" is the text the client was shown on the left.
    answer = client.post(url, {"choice": "left", "revision": views[-1]["revision"]}, format="json")
    assert answer.status_code == 201
    assert _left_choice_stored(Judgment.objects.get()) == first["left"]["text"]


def test_a_client_that_sends_no_revision_judges_the_sides_it_was_shown(
    reviewer, project, other_project, sides_drawn_alternately
):
    make_comparisons(project, 1)
    make_comparisons(other_project, 1, prefix="o")
    other_project.reviewers.add(reviewer)
    client = _client(reviewer, token=True)
    first = client.get(f"/api/v1/projects/{project.pk}/next/").json()
    client.get(f"/api/v1/projects/{other_project.pk}/next/")
    client.get(f"/api/v1/projects/{project.pk}/next/")
    answer = client.post(f"/api/v1/assignments/{first['assignment']}/judgment/", {"choice": "left"}, format="json")
    assert answer.status_code == 201
    assert _left_choice_stored(Judgment.objects.get()) == first["left"]["text"]
