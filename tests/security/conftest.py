"""Fixtures of the security tests: a fresh cache, and a world with one of everything."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.tuning.fixtures import media, tiny_source, tuning_project  # noqa: F401


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """PBKDF2 at Django's default cost takes ~0.5 s per user on this machine; the matrix makes
    three users per case. Log-in behaviour does not depend on the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """A cache of the test's own: throttle counters (login, API) start at zero and never leak
    into other tests, nor into the Redis that CI shares with the broker."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"security-{uuid.uuid4().hex}",
        }
    }


@dataclass
class World:
    """One of every object a URL can name, seen from the reviewer of `project`."""

    project: object
    other_project: object
    assignment: object
    preference_set: object
    job: object
    adapter: object
    evaluation: object
    round: object
    admin_user: object
    reviewer: object
    outsider: object


def build_adapter(project, name: str = "v1-dpo"):
    """A registered adapter whose files exist in storage (enough to list, show and download)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from tuning.models import Adapter

    folder = f"adapters/test/{name}"
    default_storage.save(f"{folder}/adapter_config.json", ContentFile(b'{"r": 16}'))
    default_storage.save(f"{folder}/adapter_model.safetensors", ContentFile(b"weights"))
    return Adapter.objects.create(base_model=project.base_model, project=project, name=name, path=folder)


@pytest.fixture
def world(tuning_project, other_project, admin_user, reviewer, outsider) -> World:  # noqa: F811
    from prefs.services.assignment import comparison_next_for
    from tests.factories import make_comparisons
    from tests.tuning.factories import frozen_set
    from tuning.models import Evaluation, Round
    from tuning.services.launch import job_launch

    make_comparisons(tuning_project, 3, prefix="world")
    make_comparisons(other_project, 2, prefix="elsewhere")
    assignment = comparison_next_for(reviewer=reviewer, project=tuning_project)
    preference_set = frozen_set(tuning_project)
    job = job_launch(kind="dpo", project=tuning_project, created_by=admin_user, preference_set_id=preference_set.pk)
    adapter = build_adapter(tuning_project)
    evaluation = Evaluation.objects.get(
        job=job_launch(kind="evaluate", project=tuning_project, created_by=admin_user, adapter_id=adapter.pk)
    )
    round_ = Round.objects.create(project=tuning_project, number=1, samples=2, pairing="all", target_judgments=40)
    return World(
        project=tuning_project,
        other_project=other_project,
        assignment=assignment,
        preference_set=preference_set,
        job=job,
        adapter=adapter,
        evaluation=evaluation,
        round=round_,
        admin_user=admin_user,
        reviewer=reviewer,
        outsider=outsider,
    )
