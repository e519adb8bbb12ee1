"""A job whose artifact folder is read-only or full fails with the reason, leaving nothing.

A real worker (tests/workers/conftest.py) trains a tiny DPO job while its MEDIA_ROOT — where
adapters are stored — is a read-only tmpfs, then a full one (a few KiB), then an ordinary
folder again. The first two jobs must fail saying why, with no adapter registered and no
partial folder left behind; the third must succeed, showing the folder was the only cause.

Mounting needs root with CAP_SYS_ADMIN (as in CI); elsewhere the test skips with that reason.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.tuning.factories import frozen_set
from tests.workers.conftest import wait_for
from tuning.models import Adapter, Job
from tuning.services.adapters import adapter_folder_check
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db(transaction=True)

# Seconds: the worker's first job imports torch and friends.
FIRST_JOB_S = 240


def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root with CAP_SYS_ADMIN: {done.stderr.strip()}")


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _finished(job: Job) -> bool:
    job.refresh_from_db()
    return job.state in Job.FINAL_STATES


def _leftovers(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*")] if folder.exists() else []


def test_a_read_only_or_full_artifact_folder_fails_the_job_with_the_reason_and_leaves_nothing(
    tuning_project, admin_user, start_worker, worker_env
):
    media = Path(worker_env["MEDIA_ROOT"])
    preference_set = frozen_set(tuning_project)
    worker = start_worker()

    def train() -> Job:
        job = job_launch(
            kind="dpo", project=tuning_project, created_by=admin_user, preference_set_id=preference_set.pk,
            params={"batch_size": 2, "max_steps": 2, "evaluate": False},
        )
        wait_for(lambda: _finished(job), timeout=FIRST_JOB_S, what=f"job {job.pk} to finish", workers=[worker])
        return job

    try:
        _mount_tmpfs(media, "ro,size=1m")
        read_only = train()
    finally:
        _unmount(media)
    assert read_only.state == Job.State.FAILED
    assert read_only.error == (
        f"AdapterError: Could not store the adapter in {media / 'adapters' / str(tuning_project.base_model_id)}: "
        "the artifact folder is read-only (Read-only file system); nothing was registered."
    ), read_only.error

    try:
        # Two pages of 4 KiB: room for folders, not for the adapter's weights.
        _mount_tmpfs(media, "size=8k")
        full = train()
        left_in_full = _leftovers(media)
    finally:
        _unmount(media)
    assert full.state == Job.State.FAILED
    assert full.error == (
        f"AdapterError: Could not store the adapter in {media / 'adapters' / str(tuning_project.base_model_id)}: "
        "the artifact folder is full (No space left on device); nothing was registered."
    ), full.error
    # The half-copied adapter was removed: at most the empty folders above it remain.
    assert not any("partial" in name or name.endswith((".safetensors", ".json")) for name in left_in_full), left_in_full

    assert not Adapter.objects.exists()
    healthy = train()
    assert healthy.state == Job.State.SUCCEEDED, healthy.error
    adapter = Adapter.objects.get()
    assert adapter.job_id == healthy.pk
    adapter_folder_check(media / adapter.path, base_model=adapter.base_model)
