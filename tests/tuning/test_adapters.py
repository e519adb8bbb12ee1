"""The adapter registry: only whole adapters are registered; promotion, rollback, lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from tuning.models import Adapter, AdapterPromotion
from tuning.services.adapters import (
    AdapterError,
    adapter_lineage,
    adapter_promote,
    adapter_register,
    adapter_rollback,
)

pytestmark = pytest.mark.django_db


def _folder(path: Path, *, weights: bool = True, fingerprint: str | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text('{"r": 8}')
    if weights:
        (path / "adapter_model.safetensors").write_bytes(b"0123456789")
    meta = {"base_source": "somewhere"}
    if fingerprint:
        meta["base_fingerprint"] = fingerprint
    (path / "prefloop.json").write_text(json.dumps(meta))
    return path


def _stored() -> list[str]:
    root = Path(default_storage.location) / "adapters"
    return sorted(p.name for p in root.rglob("*") if p.is_dir() and p.parent.parent == root) if root.exists() else []


def test_a_complete_adapter_is_stored_and_registered(tuning_project, tmp_path):
    adapter = adapter_register(
        folder=_folder(tmp_path / "out"), base_model=tuning_project.base_model, project=tuning_project, name="v1"
    )
    stored = Path(default_storage.path(adapter.path))
    assert sorted(p.name for p in stored.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", "prefloop.json"]
    assert adapter.size_bytes > 10 and adapter.metadata["base_source"] == "somewhere"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: _folder(p, weights=False), "no adapter weights"),
        (lambda p: p, "does not exist"),
        (lambda p: _folder(p.parent / ".out.partial-x1"), "staging folder"),
        (lambda p: _folder(p, fingerprint="gguf-sha256:another"), "another base model"),
    ],
)
def test_an_incomplete_or_foreign_adapter_is_never_registered(tuning_project, tmp_path, make, reason):
    folder = make(tmp_path / "out")
    with pytest.raises(AdapterError, match=reason):
        adapter_register(folder=folder, base_model=tuning_project.base_model, project=tuning_project, name="v1")
    assert not Adapter.objects.exists()
    assert _stored() == []


def test_a_failure_at_the_commit_point_leaves_neither_row_nor_files(tuning_project, tmp_path):
    def lost(_adapter):
        raise RuntimeError("the job was taken away")

    with pytest.raises(RuntimeError):
        adapter_register(
            folder=_folder(tmp_path / "out"), base_model=tuning_project.base_model, project=tuning_project,
            name="v1", before_commit=lost,
        )
    assert not Adapter.objects.exists()
    assert _stored() == []


def test_promote_records_history_and_rollback_walks_it_back(tuning_project, admin_user):
    base = tuning_project.base_model
    v1 = Adapter.objects.create(base_model=base, project=tuning_project, name="v1", path="a")
    v2 = Adapter.objects.create(base_model=base, project=tuning_project, name="v2", parent=v1, path="b")
    adapter_promote(project=tuning_project, adapter=v1, by=admin_user)
    adapter_promote(project=tuning_project, adapter=v2, by=admin_user)
    with pytest.raises(AdapterError, match="already active"):
        adapter_promote(project=tuning_project, adapter=v2)
    back = adapter_rollback(project=tuning_project, by=admin_user)
    assert back.adapter == v1 and back.previous == v2 and back.is_rollback
    tuning_project.refresh_from_db()
    assert tuning_project.active_adapter == v1
    assert AdapterPromotion.objects.count() == 3
    assert [(a.name, depth) for a, depth in adapter_lineage(project=tuning_project)] == [("v1", 0), ("v2", 1)]


def test_an_adapter_of_another_base_model_or_a_reward_model_cannot_be_promoted(tuning_project, other_tiny_source):
    from tests.tuning.factories import tiny_base_model

    foreign = Adapter.objects.create(base_model=tiny_base_model(other_tiny_source, name="other"), name="f", path="f")
    with pytest.raises(AdapterError, match="belongs to base model other"):
        adapter_promote(project=tuning_project, adapter=foreign)
    reward = Adapter.objects.create(base_model=tuning_project.base_model, project=tuning_project, name="rm", kind="reward", path="r")
    with pytest.raises(AdapterError, match="reward model"):
        adapter_promote(project=tuning_project, adapter=reward)
    with pytest.raises(AdapterError, match="Nothing to roll back"):
        adapter_rollback(project=tuning_project)
