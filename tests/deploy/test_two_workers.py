"""Scale-out on one machine: two worker processes consume one queue and share its jobs.

This is the path several GPU hosts take in production (docs/deploy.md), minus the GPUs: two
real `celery worker` processes against one Redis and one database, ten real jobs (`generate` on
a tiny random model) queued through the same service the API uses. Every job must run exactly
once: none lost, none run by both workers, even though the dispatcher resends messages that
wait long (so duplicates do reach the workers, and the conditional claim must turn them away).
"""

from __future__ import annotations

import json
import re

import pytest

from prefs.models import Candidate, Prompt
from tests.workers.conftest import wait_for
from tuning.models import Job, JobEvent
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 10
# Seconds: each worker's first job imports torch and friends, slow on a busy 2-core machine.
ALL_DONE_S = 420


def _log_entries(worker) -> list[dict]:
    entries = []
    for line in worker.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries


def _ready(worker) -> bool:
    return worker.log.exists() and re.search(r"ready\.", worker.log.read_text(errors="replace")) is not None


def test_two_workers_on_one_queue_share_ten_jobs_none_run_twice_none_lost(tuning_project, admin_user, start_worker, worker_env):
    # JSON logs, so each worker's lines can be read back with the job id they belong to.
    worker_env["LOG_FORMAT"] = "json"
    workers = [start_worker(), start_worker()]
    wait_for(lambda: all(_ready(w) for w in workers), timeout=120, what="both workers to be ready", workers=workers)

    prompts = list(Prompt.objects.filter(project=tuning_project, split=Prompt.Split.HELDOUT).order_by("id"))
    jobs = [
        job_launch(
            kind="generate",
            project=tuning_project,
            created_by=admin_user,
            params={"prompt_ids": [prompts[i % len(prompts)].pk], "max_new_tokens": 4, "seed": i},
        )
        for i in range(JOBS)
    ]
    ids = {job.pk for job in jobs}

    def all_final():
        return Job.objects.filter(pk__in=ids, state__in=Job.FINAL_STATES).count() == JOBS

    wait_for(all_final, timeout=ALL_DONE_S, what=f"all {JOBS} jobs to finish", workers=workers, every=1.0)

    # None lost: every job succeeded, in its first and only run.
    finished = list(Job.objects.filter(pk__in=ids).order_by("id"))
    assert [(j.state, j.attempts) for j in finished] == [("succeeded", 1)] * JOBS, [
        (j.pk, j.state, j.attempts, j.error, j.log_tail[-1500:]) for j in finished if j.state != "succeeded"
    ]
    for job in finished:
        states = list(JobEvent.objects.filter(job=job, kind="state").order_by("id").values_list("data__state", flat=True))
        assert states == ["queued", "running", "succeeded"], (job.pk, states)
        # Its comparisons were written once: two candidates per comparison it reports.
        assert Candidate.objects.filter(sampling__job=job.pk).count() == 2 * job.result["comparisons"], job.pk

    # None run twice, and both took a share: each job's run is in exactly one worker's log.
    ran = []
    for worker in workers:
        entries = _log_entries(worker)
        ran.append({e["job_id"] for e in entries if e.get("job_id") is not None and "attempt 1 of" in e["message"]})
    assert ran[0] | ran[1] == ids
    assert not ran[0] & ran[1], f"run by both workers: {sorted(ran[0] & ran[1])}"
    assert ran[0] and ran[1], f"one worker ran everything: {[sorted(r) for r in ran]}"
    assert len({j.worker for j in finished}) >= 2
