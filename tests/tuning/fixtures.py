"""Fixtures of the tuning and worker tests: a tiny random base model, a project ready to train.

Imported by tests/tuning/conftest.py and tests/workers/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.tuning.engine.conftest import build_tiny_model


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-base") / "model", seed=1))


@pytest.fixture(scope="session")
def other_tiny_source(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("other-base") / "model", seed=2))


@pytest.fixture
def media(settings, tmp_path):
    """Storage and job scratch space in a temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PREFLOOP_JOB_DIR = tmp_path / "jobs"
    settings.PREFLOOP_MODEL_CACHE = tmp_path / "models"
    return tmp_path


@pytest.fixture
def tuning_project(project, tiny_source, media):
    """The `project` fixture with a tiny base model, 12 judged train pairs, 3 held-out prompts."""
    from tests.tuning.factories import heldout_prompts, judged_pairs, tiny_base_model

    project.base_model = tiny_base_model(tiny_source)
    project.save(update_fields=["base_model"])
    judged_pairs(project, 12)
    heldout_prompts(project, 3)
    return project
