"""An admin closes the loop in the browser: import, freeze, export, train, read the verdict.

Chromium drives the live server; a real Celery worker (tests/workers/conftest.py) trains a DPO
adapter on a tiny random model against the same database and a Redis of the test's own, then
runs the evaluation. Screenshots of every page land under test-artifacts/e2e.
"""

from __future__ import annotations

import json
import re

import pytest

from prefs.models import Comparison, PreferenceSet
from tests.e2e.conftest import log_in
from tests.tuning.factories import POLITE, QUESTIONS, RUDE, tiny_base_model
from tests.tuning.fixtures import tiny_source  # noqa: F401
from tests.workers.conftest import redis_server, start_worker, worker_env  # noqa: F401
from tuning.models import Adapter, Evaluation, EvaluationPair, Job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Milliseconds: the worker's first job imports torch and friends on a busy 2-core machine.
JOB_MS = 300_000
TRAIN_ROWS = 12
HELDOUT_ROWS = 3


def _import_file(folder) -> str:
    lines = []
    for index in range(TRAIN_ROWS):
        lines.append(
            {
                "prompt": [{"role": "user", "content": f"{QUESTIONS[index % len(QUESTIONS)]} ({index})"}],
                "responses": [
                    {"text": POLITE[index % len(POLITE)], "source": "polite"},
                    {"text": RUDE[index % len(RUDE)], "source": "rude"},
                ],
                "preference": 0,
                "id": f"train-{index}",
            }
        )
    for index, question in enumerate(["How do I boil an egg?", "Say something kind.", "Name a colour."]):
        lines.append(
            {
                "prompt": [{"role": "user", "content": question}],
                "responses": [{"text": "Gently.", "source": "a"}, {"text": "Whatever.", "source": "b"}],
                "preference": None,
                "split": "heldout",
                "id": f"heldout-{index}",
            }
        )
    path = folder / "helpfulness.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_admin_imports_freezes_exports_trains_and_reads_the_before_after_page(
    page_factory, live_server, admin_user, project, tiny_source, start_worker, tmp_path  # noqa: F811
):
    project.base_model = tiny_base_model(tiny_source)
    project.save(update_fields=["base_model"])
    worker = start_worker()
    page, shoot = page_factory()
    log_in(page, live_server, "ada", "ada-password")
    shoot("home")

    # Import: upload, preview, confirm.
    page.goto(f"{live_server.url}/projects/{project.pk}/import/")
    shoot("import")
    page.set_input_files("#file", _import_file(tmp_path))
    page.select_option("#format", "native")
    page.get_by_role("button", name="Check and preview").click()
    page.wait_for_url(re.compile(r"/import/$"))
    assert page.get_by_text(f"{TRAIN_ROWS + HELDOUT_ROWS} good rows").is_visible()
    shoot("import-preview")
    assert not Comparison.objects.exists()  # nothing written before the confirmation
    page.get_by_role("button", name=f"Import {TRAIN_ROWS + HELDOUT_ROWS} rows").click()
    page.wait_for_url(re.compile(r"/sets/$"))
    assert page.get_by_text(f"Imported {TRAIN_ROWS + HELDOUT_ROWS} native rows").is_visible()
    shoot("imported")
    assert Comparison.objects.filter(project=project).count() == TRAIN_ROWS + HELDOUT_ROWS

    # Freeze a version with the imported labels.
    page.get_by_role("button", name="Freeze").click()
    page.wait_for_url(re.compile(r"/sets/\d+/$"))
    assert page.get_by_text(f"Froze version 1: {TRAIN_ROWS} pairs.").is_visible()
    shoot("frozen-set")
    frozen = PreferenceSet.objects.get(project=project)

    # Export it as TRL rows: the browser downloads the file, which holds the frozen pairs.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export trl", exact=True).click()
    exported = download_info.value.path().read_text()
    rows = [json.loads(line) for line in exported.splitlines() if line.strip()]
    pairs = [row for row in rows if "chosen" in row]
    assert len(pairs) == TRAIN_ROWS
    assert all(pair["chosen"].strip() in POLITE and pair["rejected"].strip() in RUDE for pair in pairs)

    # Launch DPO from the form. A large learning rate moves the tiny model enough that before
    # and after answer differently, so the evaluation has pairs to show.
    page.goto(f"{live_server.url}/jobs/new/dpo/?project={project.pk}")
    shoot("launch-form")
    page.select_option("select[name=preference_set]", str(frozen.pk))
    page.fill("input[name=max_steps]", "4")
    page.fill("input[name=batch_size]", "2")
    page.fill("input[name=learning_rate]", "0.05")
    page.locator("details.advanced summary").click()
    page.fill("input[name=eval_max_new_tokens]", "8")
    shoot("launch-form-filled")
    page.get_by_role("button", name="Queue the job").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get(kind=Job.Kind.DPO)
    shoot("job-queued")

    # Watch it: the live part of the page updates itself until the job is done.
    page.locator("#job-live .state-running, #job-live .state-succeeded").first.wait_for(timeout=JOB_MS)
    shoot("job-running")
    try:
        page.locator("#job-live .state-succeeded").wait_for(timeout=JOB_MS)
    except Exception:
        job.refresh_from_db()
        pytest.fail(f"the job did not succeed: {job.state} {job.error}\n{worker.tail()}")
    page.locator("#job-live polyline").first.wait_for()
    shoot("job-succeeded")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED and job.output_adapter is not None
    assert Adapter.objects.get(job=job).preference_set_id == frozen.pk

    # The before/after page: the evaluation runs, then shows both answers per held-out prompt.
    page.get_by_role("link", name="Evaluation", exact=True).click()
    page.wait_for_url(re.compile(r"/evaluations/\d+/$"))
    shoot("evaluation-running")
    page.get_by_role("heading", name="Answers per held-out prompt").wait_for(timeout=JOB_MS)
    # The page refreshes itself until the evaluation job has finished too (drift comes last).
    page.locator("#evaluation-live").get_by_text(re.compile(r"Evaluation job (queued|running)")).wait_for(
        state="detached", timeout=JOB_MS
    )
    page.get_by_text("Drift from the parent").wait_for()
    shoot("evaluation")
    evaluation = Evaluation.objects.get(source_job=job)
    assert evaluation.job.state == Job.State.SUCCEEDED, evaluation.job.error
    pairs_made = EvaluationPair.objects.filter(evaluation=evaluation).count()
    assert pairs_made >= 1
    assert page.locator("article.eval-row").count() >= 1
