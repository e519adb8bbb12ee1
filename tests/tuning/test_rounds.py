"""Rounds on a tiny random model: sample on-policy, judge, freeze, train, evaluate, timeline."""

from __future__ import annotations

import pytest

from prefs.models import Comparison, Prompt
from prefs.services.assignment import comparison_next_for
from prefs.services.comparisons import prompt_get_or_create
from prefs.services.judging import Verdict, judgment_record
from tuning.models import Evaluation, Job, Round
from tuning.selectors import rounds_timeline
from tuning.services.rounds import (
    RoundError,
    prompts_needing_data,
    round_judgments,
    round_policy_update,
    round_start,
    round_train,
    rounds_train_ready,
)
from tuning.services.runner import job_run
from tuning.services.sampling import pair_indices

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"max_steps": 2, "batch_size": 2, "eval_max_prompts": 2, "eval_max_new_tokens": 8}


def _fresh_prompts(project, n: int) -> list[Prompt]:
    return [
        prompt_get_or_create(project=project, messages=[{"role": "user", "content": f"Fresh question {i}?"}], external_id=f"fresh-{i}")
        for i in range(n)
    ]


def _judge_all(project, reviewer) -> int:
    judged = 0
    while (assignment := comparison_next_for(reviewer=reviewer, project=project)) is not None:
        judgment_record(reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice="left"))
        judged += 1
    return judged


def test_all_pairs_of_k_answers_and_reward_gap_pairs_best_with_worst():
    assert pair_indices(3, "all") == [(0, 1), (0, 2), (1, 2)]
    assert len(pair_indices(4, "all")) == 6
    # Scores 0.2, 0.9, -0.5, 0.1: best (1) meets worst (2), then 0 meets 3.
    assert pair_indices(4, "reward_gap", [0.2, 0.9, -0.5, 0.1]) == [(1, 2), (0, 3)]


def test_a_round_samples_k_answers_for_prompts_without_on_policy_data_and_pairs_them_all(tuning_project, admin_user):
    _fresh_prompts(tuning_project, 2)
    round_policy_update(project=tuning_project, samples=3, pairing="all", target_judgments=4, max_prompts=50)
    needing = prompts_needing_data(tuning_project).count()
    # The fixture's 12 imported pairs are not the base model's own answers: every train prompt needs data.
    assert needing == Prompt.objects.filter(project=tuning_project, split="train").count() == 14

    round_ = round_start(project=tuning_project, by=admin_user)
    assert round_.number == 1 and round_.generate_job is not None and round_.train_job is None
    params = round_.generate_job.params
    assert params["samples"] == 3 and params["pairing"] == "all" and len(params["prompt_ids"]) == 14
    with pytest.raises(RoundError, match="has not trained yet"):
        round_start(project=tuning_project, by=admin_user)

    assert job_run(job_id=round_.generate_job_id, worker="test") == Job.State.SUCCEEDED
    made = Comparison.objects.filter(origin="sampling", candidate_a__sampling__job=round_.generate_job_id)
    identical = round_.generate_job.__class__.objects.get(pk=round_.generate_job_id).result["identical"]
    assert made.count() == 14 * 3 - identical
    # Every answer came from the round's starting policy (the bare base model here).
    assert not made.filter(candidate_a__adapter__isnull=False).exists()
    assert prompts_needing_data(tuning_project).count() == 0
    assert rounds_timeline(tuning_project)[0]["state"] == "collecting"


def test_a_round_trains_itself_once_its_comparisons_reach_the_target(tuning_project, admin_user, reviewer):
    round_policy_update(project=tuning_project, samples=2, pairing="all", target_judgments=3, max_prompts=3)
    tuning_project.overlap = 1
    tuning_project.save(update_fields=["overlap"])
    round_ = round_start(project=tuning_project, by=admin_user)
    job_run(job_id=round_.generate_job_id, worker="test")
    with pytest.raises(RoundError, match="of its 3 judgments"):
        round_train(round_=round_)
    assert rounds_train_ready() == []

    _judge_all(tuning_project, reviewer)
    assert round_judgments(round_) >= 3
    assert rounds_train_ready() == [round_.pk]
    round_.refresh_from_db()
    assert round_.preference_set is not None and round_.train_job.kind == Job.Kind.DPO
    assert round_.train_job.input_adapter_id is None
    # The set is the project's judgments, the round's sampled pairs among them.
    from prefs.models import PreferencePair

    sampled = PreferencePair.objects.filter(preference_set=round_.preference_set, comparison__origin="sampling")
    assert sampled.count() >= 3
    assert rounds_timeline(tuning_project)[0]["state"] == "training"


def test_when_every_prompt_has_data_starting_a_round_freezes_trains_and_evaluates_from_the_active_adapter(
    tuning_project, admin_user
):
    from tests.tuning.factories import judged_pairs

    # The fixture's pairs count as the bare model's on-policy data once they are sampled pairs.
    Comparison.objects.filter(project=tuning_project).update(origin="sampling")
    judged_pairs(tuning_project, 0)
    round_ = round_start(project=tuning_project, by=admin_user, train_params=FAST)
    assert round_.generate_job is None and round_.train_job is not None
    # A second round would train the same data from the same adapter again: refused until this one is done.
    with pytest.raises(RoundError, match="round 1 is still training"):
        round_start(project=tuning_project, by=admin_user)
    assert job_run(job_id=round_.train_job_id, worker="test") == Job.State.SUCCEEDED
    evaluation = Evaluation.objects.get(source_job=round_.train_job)
    assert rounds_timeline(tuning_project)[0]["state"] == "evaluating"
    assert job_run(job_id=evaluation.job_id, worker="test") == Job.State.SUCCEEDED

    row = rounds_timeline(tuning_project)[0]
    assert row["state"] == "judging"
    assert row["steps"] == 2 and row["pairs"] == 12
    assert row["drift"] is not None and row["adapter"] == evaluation.after_adapter
    assert row["promoted"] is False


def test_a_round_refuses_to_train_on_a_set_with_nothing_to_learn(tuning_project, admin_user):
    Comparison.objects.filter(project=tuning_project).update(origin="sampling")
    from prefs.models import Judgment

    Judgment.objects.filter(comparison__project=tuning_project).update(choice="tie")
    with pytest.raises(RoundError, match="no pairs to learn from"):
        round_start(project=tuning_project, by=admin_user)
    # The refusal takes the round back with it: the next try is round 1 again.
    assert not Round.objects.filter(project=tuning_project).exists()


def test_pairing_by_reward_gap_needs_an_adapter_with_a_parent(tuning_project, admin_user):
    round_policy_update(project=tuning_project, samples=4, pairing="reward_gap", target_judgments=4, max_prompts=4)
    with pytest.raises(RoundError, match="reward gap"):
        round_start(project=tuning_project, by=admin_user)
