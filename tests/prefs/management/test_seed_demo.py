from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from prefs.models import Comparison, Project, Prompt
from prefs.services.assignment import comparison_next_for

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_ready_to_review():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    project = Project.objects.get()
    assert project.base_model.source == "smollm2-135m-instruct"
    assert Comparison.objects.count() == 24
    assert Prompt.objects.filter(split="heldout").count() == 8
    alice = authenticate(username="alice", password="prefloop-review")
    admin = authenticate(username="admin", password="prefloop-admin")
    assert alice is not None and not alice.is_staff
    assert admin is not None and admin.is_staff
    assert comparison_next_for(reviewer=alice, project=project) is not None
    assert "alice / prefloop-review" in out.getvalue()
