"""Running jobs in-process (the service behind the worker's task), on a tiny random model."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from tests.tuning.factories import frozen_set
from tuning.models import Adapter, Job, JobEvent
from tuning.services.launch import job_launch
from tuning.services.runner import job_run

pytestmark = pytest.mark.django_db(transaction=True)


def _dpo(project, admin_user, **params):
    preference_set = frozen_set(project)
    return job_launch(
        kind="dpo",
        project=project,
        created_by=admin_user,
        preference_set_id=preference_set.pk,
        adapter_id=None,
        params={"max_steps": 4, "batch_size": 2, "evaluate": False, **params},
    )


def test_a_dpo_job_trains_and_registers_a_complete_adapter(tuning_project, admin_user):
    job = _dpo(tuning_project, admin_user)
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert job.progress == 1.0
    adapter = job.output_adapter
    assert adapter is not None and adapter.job_id == job.pk
    assert adapter.preference_set_id == job.preference_set_id and adapter.parent is None
    folder = Path(default_storage.path(adapter.path))
    assert (folder / "adapter_config.json").is_file()
    assert (folder / "adapter_model.safetensors").is_file()
    assert adapter.metadata["base_fingerprint"]
    steps = [e.data["step"] for e in JobEvent.objects.filter(job=job, kind="metrics", data__phase="train")]
    assert steps == [1, 2, 3, 4]
    states = [e.data["state"] for e in JobEvent.objects.filter(job=job, kind="state")]
    assert states == ["queued", "running", "succeeded"]


def test_a_second_delivery_of_the_same_job_does_nothing(tuning_project, admin_user):
    job = _dpo(tuning_project, admin_user)
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED
    assert job_run(job_id=job.pk, worker="test") == "skipped"
    assert Adapter.objects.filter(job=job).count() == 1


def test_a_successful_dpo_job_starts_an_evaluation_whose_pairs_reach_reviewers(tuning_project, admin_user, reviewer):
    from prefs.services.assignment import comparison_next_for
    from prefs.services.judging import Verdict, judgment_record
    from tuning.models import Evaluation, EvaluationPair

    # A large learning rate moves the tiny model enough that before and after answer differently.
    job = _dpo(tuning_project, admin_user, evaluate=True, eval_max_new_tokens=8, learning_rate=0.05)
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    evaluate = Job.objects.get(source_job=job, kind=Job.Kind.EVALUATE)
    assert evaluate.state == Job.State.QUEUED
    evaluation = Evaluation.objects.get(job=evaluate)
    assert evaluation.after_adapter == job.output_adapter and evaluation.before_adapter is None
    assert job_run(job_id=evaluate.pk, worker="test") == Job.State.SUCCEEDED
    evaluation.refresh_from_db()
    assert evaluation.metrics["prompts"] == 3
    assert "mean_kl" in evaluation.metrics["drift"]
    pairs = EvaluationPair.objects.filter(evaluation=evaluation)
    assert pairs.count() == 3
    # The reviewer's queue holds the training comparisons too; evaluation ones are among them.
    seen = set()
    while (assignment := comparison_next_for(reviewer=reviewer, project=tuning_project)) is not None:
        seen.add(assignment.comparison_id)
        judgment_record(reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice="left"))
    assert set(pairs.values_list("comparison_id", flat=True)) <= seen


def test_a_generate_job_puts_answer_pairs_into_the_review_queue(tuning_project, admin_user):
    from prefs.models import Comparison

    job = job_launch(
        kind="generate", project=tuning_project, created_by=admin_user,
        params={"opponent": "same", "split": "heldout", "max_new_tokens": 8, "temperature": 1.0},
    )
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    made = Comparison.objects.filter(project=tuning_project, origin="sampling")
    assert made.count() == job.result["comparisons"] == 3 - job.result["identical"]
    assert all(c.prompt.split == "heldout" for c in made)
    assert all(c.candidate_a.sampling["job"] == job.pk for c in made)


def test_a_reward_model_job_registers_a_reward_adapter(tuning_project, admin_user):
    job = job_launch(
        kind="reward_model", project=tuning_project, created_by=admin_user,
        preference_set_id=frozen_set(tuning_project).pk, params={"max_steps": 2, "batch_size": 2},
    )
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert job.output_adapter.kind == Adapter.Kind.REWARD
    assert not Job.objects.filter(source_job=job).exists()  # reward models are not before/after evaluated


def test_rejection_sampling_distils_the_best_answers_into_a_child_adapter(tuning_project, admin_user):
    parent = _dpo(tuning_project, admin_user, learning_rate=0.05)
    assert job_run(job_id=parent.pk, worker="test") == Job.State.SUCCEEDED
    parent.refresh_from_db()
    job = job_launch(
        kind="rejection_sampling", project=tuning_project, created_by=admin_user, adapter_id=parent.output_adapter_id,
        params={"n": 2, "max_prompts": 3, "max_new_tokens": 8, "epochs": 1, "batch_size": 2, "evaluate": False},
    )
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert job.result["samples"] == 6 and job.result["kept"] == 3
    assert job.output_adapter.parent_id == parent.output_adapter_id


def test_a_job_whose_engine_refuses_the_input_fails_with_the_engines_reason(tuning_project, admin_user):
    from tuning.models import BaseModel

    job = _dpo(tuning_project, admin_user)
    # The base model's folder disappeared after the launch was checked.
    BaseModel.objects.filter(pk=tuning_project.base_model_id).update(source="/nowhere/model")
    assert job_run(job_id=job.pk, worker="test") == Job.State.FAILED
    job.refresh_from_db()
    assert "not found" in job.error and job.finished_at is not None
    assert not Adapter.objects.filter(job=job).exists()


def test_a_worker_told_to_spread_the_model_over_its_cards_trains_dpo_on_them(tuning_project, admin_user, settings):
    # PREFLOOP_TRAIN_DEVICE=auto: one model over all of the host's cards; without CUDA, the CPU.
    settings.PREFLOOP_TRAIN_DEVICE = "auto"
    job = _dpo(tuning_project, admin_user)
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert job.result["processes"] == 1
    assert job.output_adapter.metadata["device"] == "cpu"
