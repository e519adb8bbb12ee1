"""The demo's first round on the default model: "Start the next round" freezes the shipped,
simulated-reviewer-labelled on-policy pairs and trains DPO from the bare SmolLM2 through a worker
on the embedded filesystem broker (as `scripts/demo` runs it), then its evaluation reaches the
queue as blind comparisons."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from prefs.models import Comparison, Judgment
from prefs.services.assignment import comparison_next_for
from prefs.services.demo import demo_seed
from prefs.services.judging import Verdict, judgment_record
from tests.workers.conftest import Worker, make_worker_env, wait_for
from tuning.models import Evaluation, EvaluationPair, Job
from tuning.services.rounds import round_start

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Seconds: the default model's first load dequantises its GGUF (about 20 s), then trains on CPU.
TIMEOUT_S = 900


def _judge_everything(project, reviewers) -> None:
    """Each demo reviewer prefers the helpful draft, as the demo's guidelines ask."""
    for reviewer in reviewers:
        while (assignment := comparison_next_for(reviewer=reviewer, project=project)) is not None:
            comparison = assignment.comparison
            helpful_is_a = "helpful" in comparison.candidate_a.source or "rude" in comparison.candidate_b.source
            left_is_helpful = assignment.left_is_a == helpful_is_a
            judgment_record(
                reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice="left" if left_is_helpful else "right")
            )


def test_the_demo_trains_the_bare_default_model_and_sends_the_evaluation_to_reviewers(
    django_user_model, settings, tmp_path
):
    seeded = demo_seed()
    project = seeded["project"]
    assert project.base_model.source == "smollm2-135m-instruct"
    reviewers = list(project.reviewers.order_by("username"))
    _judge_everything(project, reviewers)

    env = make_worker_env(
        settings, tmp_path, broker_url="filesystem://", model_cache=django_settings.PREFLOOP_MODEL_CACHE
    )
    worker = Worker(env, tmp_path / "worker.log").start()
    try:
        round_ = round_start(
            project=project, train_params={"max_steps": 2, "eval_max_prompts": 2, "eval_max_new_tokens": 24}
        )
        # Every training prompt has the model's own answers already: no sampling, straight to training.
        assert round_.generate_job is None
        job = round_.train_job
        # The set holds the decided on-policy pairs (ties stay out) and the people's verdicts on the
        # hand-written ones.
        decided = Judgment.objects.filter(comparison__project=project, imported=True, choice__in=["A", "B"]).count()
        assert round_.preference_set.pair_count == decided + 24
        wait_for(lambda: Job.objects.get(pk=job.pk).state in Job.FINAL_STATES, timeout=TIMEOUT_S, what="DPO", workers=[worker])
        job.refresh_from_db()
        assert job.state == Job.State.SUCCEEDED, job.error
        assert job.output_adapter.parent is None
        assert job.output_adapter.metadata["base_source"] == "smollm2-135m-instruct"

        evaluate = Job.objects.get(source_job=job)
        wait_for(
            lambda: Job.objects.get(pk=evaluate.pk).state in Job.FINAL_STATES, timeout=TIMEOUT_S, what="the evaluation",
            workers=[worker],
        )
        evaluate.refresh_from_db()
        assert evaluate.state == Job.State.SUCCEEDED, evaluate.error
        evaluation = Evaluation.objects.get(job=evaluate)
        assert evaluation.metrics["drift"]["mean_kl"] >= 0
        pairs = EvaluationPair.objects.filter(evaluation=evaluation)
        assert pairs.count() + evaluation.metrics["arms"]["before"]["identical"] == 2
        # Demo comparisons need two judgments each, so the same reviewers are offered them.
        for comparison in Comparison.objects.filter(evaluation_pair__in=pairs):
            assert comparison.origin == "evaluation"
            assert comparison.required_judgments == project.overlap
    finally:
        worker.stop()
