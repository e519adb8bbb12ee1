from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from prefs.models import Comparison, Judgment, Project, Prompt
from prefs.services.assignment import comparison_next_for
from prefs.services.demo import demo_labelled_pairs
from prefs.simulated_reviewer import simulated_verdict

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_ready_to_review():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    project = Project.objects.get()
    assert project.base_model.source == "smollm2-135m-instruct"
    # 24 hand-written pairs for people, plus the default model's own answers that the simulated
    # reviewer decided, as imported labels that nobody is asked to judge again.
    people = Comparison.objects.filter(origin="demo")
    labelled = Comparison.objects.filter(origin="sampling")
    assert people.count() == 24 and not people.filter(judgments__isnull=False).exists()
    # Every two of 4 answers for each of the 60 training prompts, ties included.
    assert labelled.count() == len(demo_labelled_pairs()) == 60 * 6
    decided = Judgment.objects.filter(comparison__in=labelled, choice__in=["A", "B"]).count()
    assert decided >= 100
    assert set(labelled.values_list("required_judgments", flat=True)) == {0}
    assert Judgment.objects.filter(comparison__in=labelled, imported=True, reviewer__isnull=True).count() == labelled.count()
    assert Prompt.objects.filter(split="train").count() == 60
    assert Prompt.objects.filter(split="heldout").count() == 24
    alice = authenticate(username="alice", password="prefloop-review")
    admin = authenticate(username="admin", password="prefloop-admin")
    assert alice is not None and not alice.is_staff
    assert admin is not None and admin.is_staff
    assert comparison_next_for(reviewer=alice, project=project) is not None
    assert "alice / prefloop-review" in out.getvalue()


def test_seed_demo_never_changes_an_existing_user(django_user_model):
    # An admin made for real, before anyone ran the demo on this database.
    django_user_model.objects.create_user("admin", password="a-real-admin-password", is_staff=True)
    django_user_model.objects.create_user("alice", password="alices-own-password")
    out = StringIO()
    call_command("seed_demo", stdout=out)

    assert authenticate(username="admin", password="prefloop-admin") is None
    assert authenticate(username="admin", password="a-real-admin-password") is not None
    assert authenticate(username="alice", password="alices-own-password") is not None
    # Neither role nor projects changed either; the new demo users are made as before.
    assert not django_user_model.objects.get(username="alice").is_superuser
    assert not Project.objects.get().reviewers.filter(username="alice").exists()
    assert authenticate(username="bob", password="prefloop-review") is not None
    assert "admin / prefloop-admin" not in out.getvalue()
    assert "admin (existed already; left as it was)" in out.getvalue()


def test_seed_demo_refuses_in_production_unless_told_it_is_intended(settings, django_user_model):
    settings.PREFLOOP_ENV = "production"
    with pytest.raises(CommandError, match="--allow-production"):
        call_command("seed_demo", stdout=StringIO())
    assert not django_user_model.objects.exists() and not Project.objects.exists()

    call_command("seed_demo", "--allow-production", stdout=StringIO())
    assert authenticate(username="alice", password="prefloop-review") is not None


def test_the_shipped_labels_are_the_simulated_reviewers_verdicts_on_the_stored_texts():
    call_command("seed_demo", stdout=StringIO())
    for comparison in Comparison.objects.filter(origin="sampling").select_related("candidate_a", "candidate_b")[:50]:
        verdict = simulated_verdict(comparison.candidate_a.text, comparison.candidate_b.text)
        assert comparison.judgments.get().choice == verdict
        # Both answers are the bare default model's own (on-policy for the first round).
        assert comparison.candidate_a.source == comparison.candidate_b.source == "base:SmolLM2-135M-Instruct"

