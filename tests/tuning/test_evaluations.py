"""The evaluation's verdict: after's win rate over each opponent, ties half, with an interval."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from prefs.models import Comparison, Prompt
from prefs.services.assignment import comparison_next_for
from prefs.services.comparisons import CandidateSpec, comparison_create
from prefs.services.judging import Verdict, judgment_record
from prefs.stats.winrate import win_rate
from tests.factories import make_reviewers
from tuning.models import Adapter, Evaluation, EvaluationPair
from tuning.services.evaluations import evaluation_rows, evaluation_summary
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluation(tuning_project, admin_user):
    after = Adapter.objects.create(base_model=tuning_project.base_model, project=tuning_project, name="v2", path="x")
    job = job_launch(kind="evaluate", project=tuning_project, created_by=admin_user, adapter_id=after.pk)
    evaluation = Evaluation.objects.get(job=job)
    for prompt in Prompt.objects.filter(project=tuning_project, split="heldout"):
        for arm in ("before", "base"):
            comparison = comparison_create(
                project=tuning_project, prompt=prompt,
                a=CandidateSpec(f"after answer {prompt.pk}", source="v2", adapter_id=after.pk),
                b=CandidateSpec(f"{arm} answer {prompt.pk}", source=arm),
                origin=Comparison.Origin.EVALUATION, required_judgments=4,
            )
            EvaluationPair.objects.create(
                evaluation=evaluation, prompt=prompt, arm=arm, comparison=comparison,
                after_candidate=comparison.candidate_a, other_candidate=comparison.candidate_b,
            )
    return evaluation


def _judge(reviewer, project, pick) -> None:
    """`pick(arm)` says what the reviewer thinks of after vs that opponent: after, other, tie, both_bad."""
    while (assignment := comparison_next_for(reviewer=reviewer, project=project)) is not None:
        comparison = assignment.comparison
        wanted = pick(comparison.evaluation_pair.arm) if hasattr(comparison, "evaluation_pair") else "tie"
        if wanted in ("after", "other"):
            after_left = assignment.left_is_a  # after is candidate A
            choice = "left" if (wanted == "after") == after_left else "right"
        else:
            choice = wanted
        judgment_record(reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice=choice))


def test_the_win_rate_counts_reviewers_blind_verdicts_whatever_side_they_saw(evaluation, tuning_project, django_user_model):
    alice, bob, carol, dan = make_reviewers(django_user_model, tuning_project, 4)
    _judge(alice, tuning_project, lambda arm: "after")
    _judge(bob, tuning_project, lambda arm: "after" if arm == "before" else "other")
    _judge(carol, tuning_project, lambda arm: "tie")
    _judge(dan, tuning_project, lambda arm: "both_bad")
    arms = {arm["arm"]: arm for arm in evaluation_summary(evaluation)["arms"]}
    # 3 held-out prompts: before gets 6 wins and 6 halves; base gets 3 wins, 3 losses, 6 halves.
    assert {k: v for k, v in arms["before"].items() if k != "lc"} == {
        "arm": "before", "label": "before (input adapter)", "pairs": 3, "identical": 0, **win_rate(wins=6, losses=0, ties=6)
    }
    assert arms["before"]["rate"] == 0.75
    assert arms["base"]["rate"] == 0.5 and arms["base"]["low"] < 0.5 < arms["base"]["high"]


def test_with_no_verdicts_yet_the_rate_is_unknown_and_the_interval_is_everything(evaluation):
    arms = evaluation_summary(evaluation)["arms"]
    assert [(a["arm"], a["rate"], a["low"], a["high"]) for a in arms] == [("before", None, 0.0, 1.0), ("base", None, 0.0, 1.0)]
    assert [a["lc"]["rate"] for a in arms] == [None, None]


def test_the_page_and_the_api_show_after_beside_each_opponent_per_prompt(evaluation, admin_user, tuning_project, reviewer):
    rows = evaluation_rows(evaluation)
    assert len(rows) == 3
    assert [o["arm"] for o in rows[0]["opponents"]] == ["before", "base"]
    client = APIClient()
    client.force_authenticate(admin_user)
    body = client.get(f"/api/v1/evaluations/{evaluation.pk}/").json()
    assert body["state"] == "queued" and len(body["pairs"]) == 3
    assert body["pairs"][0]["after"].startswith("after answer")
    from django.test import Client

    web = Client()
    web.force_login(admin_user)
    page = web.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert "after answer" in page and "before answer" in page and "Promote v2" in page
    # Reviewers never learn which side is the new adapter.
    next_pair = APIClient()
    next_pair.force_authenticate(reviewer)
    shown = next_pair.get(f"/api/v1/projects/{tuning_project.pk}/next/").json()
    assert "v2" not in str(shown) and "adapter" not in str(shown)


def test_the_length_controlled_win_rate_stands_beside_the_raw_one(evaluation, tuning_project, django_user_model):
    alice, bob = make_reviewers(django_user_model, tuning_project, 2)
    _judge(alice, tuning_project, lambda arm: "after")
    _judge(bob, tuning_project, lambda arm: "after" if arm == "before" else "tie")
    arms = {arm["arm"]: arm for arm in evaluation_summary(evaluation)["arms"]}
    assert arms["before"]["rate"] == 1.0 and arms["before"]["lc"]["rate"] > 0.9
    assert arms["base"]["lc"]["low"] <= arms["base"]["lc"]["rate"] <= arms["base"]["lc"]["high"]


def _page(admin_user, evaluation) -> str:
    from django.test import Client

    web = Client()
    web.force_login(admin_user)
    return web.get(f"/evaluations/{evaluation.pk}/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_adapter_that_answers_as_before_counts_as_ties_and_shows_no_measurable_change(tuning_project, admin_user, reviewer, tmp_path):
    from tuning.engine.adapters import new_adapter
    from tuning.models import Job, JobEvent
    from tuning.services.adapters import adapter_register
    from tuning.services.runner import job_run

    # A fresh adapter computes exactly what the base does: every answer matches before's.
    new_adapter(source=tuning_project.base_model.source, output_dir=tmp_path / "fresh", lora={"r": 4, "alpha": 8})
    fresh = adapter_register(folder=tmp_path / "fresh", base_model=tuning_project.base_model, project=tuning_project, name="v1")
    job = job_launch(kind="evaluate", project=tuning_project, created_by=admin_user, adapter_id=fresh.pk, params={"eval_max_new_tokens": 8})
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED
    evaluation = Evaluation.objects.get(job=job)
    assert not EvaluationPair.objects.filter(evaluation=evaluation).exists()
    assert not Comparison.objects.filter(project=tuning_project, origin=Comparison.Origin.EVALUATION).exists()
    (before,) = evaluation_summary(evaluation)["arms"]
    # 3 held-out prompts, each worth the project's overlap of verdicts, all ties.
    ties = 3 * tuning_project.overlap
    assert (before["arm"], before["identical"], before["rate"], before["ties"], before["n"]) == ("before", 3, 0.5, ties, ties)
    assert before["lc"]["rate"] == pytest.approx(0.5)
    assert evaluation.metrics["drift"]["mean_kl"] == 0.0
    # The tiny random model never stops within 8 tokens: every answer was cut off, and admins see it.
    assert evaluation.metrics["cut_off"] == {"after": 3, "before": 3}
    page = _page(admin_user, evaluation)
    assert "No measurable change" in page and "Promote v1 anyway" in page
    assert 'class="primary">Promote' not in page
    assert "Answers cut off by the length limit" in page
    client = APIClient()
    client.force_authenticate(admin_user)
    (arm,) = client.get(f"/api/v1/evaluations/{evaluation.pk}/").json()["win_rate"]
    assert (arm["identical"], arm["ties"], arm["lc"]["rate"]) == (3, ties, pytest.approx(0.5))
    # The job said which phase it was in, in order.
    phases = list(dict.fromkeys(
        JobEvent.objects.filter(job=job, kind="log").exclude(data__phase="").order_by("id").values_list("data__phase", flat=True)
    ))
    assert phases[0] == "load"
    job.refresh_from_db()
    assert job.phase == "drift"


@pytest.mark.django_db(transaction=True)
def test_answers_cut_off_by_the_limit_are_marked_for_admins_and_never_shown_to_reviewers(tuning_project, admin_user, reviewer):
    from tests.tuning.factories import frozen_set
    from tuning.models import Job
    from tuning.services.runner import job_run

    # A large learning rate moves the tiny model enough that before and after answer differently.
    dpo = job_launch(
        kind="dpo", project=tuning_project, created_by=admin_user, preference_set_id=frozen_set(tuning_project).pk,
        params={"max_steps": 4, "batch_size": 2, "learning_rate": 0.05, "eval_max_new_tokens": 8},
    )
    assert job_run(job_id=dpo.pk, worker="test") == Job.State.SUCCEEDED
    evaluate = Job.objects.get(source_job=dpo, kind=Job.Kind.EVALUATE)
    assert job_run(job_id=evaluate.pk, worker="test") == Job.State.SUCCEEDED
    evaluation = Evaluation.objects.get(job=evaluate)
    pair = EvaluationPair.objects.filter(evaluation=evaluation).select_related("after_candidate").first()
    assert pair.after_candidate.sampling["finish_reason"] == "length" and pair.after_candidate.sampling["tokens"] == 8
    rows = evaluation_rows(evaluation)
    assert rows[0]["after_cut_off"] == 8
    assert "Cut off at the 8-token limit" in _page(admin_user, evaluation)
    admin = APIClient()
    admin.force_authenticate(admin_user)
    assert admin.get(f"/api/v1/evaluations/{evaluation.pk}/").json()["pairs"][0]["after_cut_off"] == 8
    client = APIClient()
    client.force_authenticate(reviewer)
    shown = 0
    while (response := client.get(f"/api/v1/projects/{tuning_project.pk}/next/")).status_code == 200:
        body = str(response.json())
        assert "finish_reason" not in body and "cut off" not in body.lower() and "tokens" not in body
        client.post(f"/api/v1/assignments/{response.json()['assignment']}/judgment/", {"choice": "left"}, format="json")
        shown += 1
    assert shown >= 3


def test_each_phase_of_the_job_gets_its_share_of_the_bar_by_expected_time():
    from tuning.services.evaluations import evaluation_phases

    phases = evaluation_phases(prompts=8, arms=["before", "base"], max_new_tokens=384, rows=20)
    assert list(phases) == ["load", "generate-after", "generate-before", "generate-base", "accuracy", "drift-generate", "drift"]
    assert phases["load"][0] == 0.0 and phases["drift"][1] == pytest.approx(1.0)
    assert all(phases[a][1] == pytest.approx(phases[b][0]) for a, b in zip(list(phases)[:-1], list(phases)[1:], strict=True))

    def width(name, bar=phases):
        return bar[name][1] - bar[name][0]

    # Answering with room for 384 tokens is most of the job; with 16 tokens, drift is.
    assert width("generate-after") == pytest.approx(width("generate-before"))
    assert width("generate-after") > width("drift-generate") + width("drift")
    short = evaluation_phases(prompts=8, arms=["before"], max_new_tokens=16, rows=0)
    assert "accuracy" not in short and width("generate-after", short) < width("drift", short)


def _stored_evaluation(tuning_project, admin_user, arms=("before", "base")):
    """An evaluation whose job wrote its comparisons as the job does, one per prompt and arm."""
    from tuning.models import Job
    from tuning.services.evaluations import _store_pairs

    after = Adapter.objects.create(base_model=tuning_project.base_model, project=tuning_project, name="v2", path="x")
    job = job_launch(kind="evaluate", project=tuning_project, created_by=admin_user, adapter_id=after.pk)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING)
    job.refresh_from_db()
    evaluation = Evaluation.objects.select_related("after_adapter", "project").get(job=job)
    prompts = list(Prompt.objects.filter(project=tuning_project, split="heldout").order_by("id"))

    def samples(label):
        return [{"text": f"{label} answer {p.pk}", "tokens": 3, "finish_reason": "stop"} for p in prompts]

    for arm in arms:
        _store_pairs(evaluation, arm, prompts, samples("after"), samples(arm), job=job, other_label=arm,
                     other_adapter_id=None, sampling={})
    return evaluation, prompts


def test_no_reviewer_gets_two_comparisons_of_one_prompt_within_an_evaluation(tuning_project, admin_user, django_user_model):
    """The after text is in every opponent's comparison of a prompt: a reviewer shown two of them
    would see which text came back, and know the new adapter's. Each gets one per prompt."""
    evaluation, prompts = _stored_evaluation(tuning_project, admin_user)
    assert EvaluationPair.objects.filter(evaluation=evaluation).count() == 2 * len(prompts)
    reviewers = make_reviewers(django_user_model, tuning_project, 3, prefix="ev")
    given: dict[str, list[int]] = {}
    for reviewer in reviewers:
        while (assignment := comparison_next_for(reviewer=reviewer, project=tuning_project)) is not None:
            if assignment.comparison.origin == Comparison.Origin.EVALUATION:
                given.setdefault(reviewer.username, []).append(assignment.comparison.prompt_id)
            judgment_record(reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice="tie"))
    for prompts_seen in given.values():
        assert len(prompts_seen) == len(set(prompts_seen))
    # Each comparison still got its one verdict: the first two reviewers took one arm each.
    assert sorted(len(v) for v in given.values()) == [3, 3]
    assert not Comparison.objects.filter(project=tuning_project, origin="evaluation", open_slots__gt=0).exists()


def test_any_one_measured_difference_is_a_measurable_change():
    from tuning.services.evaluations import evaluation_shows_no_change

    still = {"drift": {"mean_kl": 0.001}, "heldout_prompts_preference": {"accuracy": 0.52, "low": 0.4, "high": 0.64, "n": 60}}
    unjudged = [{"arm": "before", "n": 0, "low": 0.0, "high": 1.0}]
    assert evaluation_shows_no_change(metrics=still, arms=unjudged)
    # Held-out accuracy clear of chance, reviewers clear of chance, or the answers moved: a change.
    learned = {**still, "heldout_prompts_preference": {"accuracy": 0.7, "low": 0.57, "high": 0.8, "n": 60}}
    assert not evaluation_shows_no_change(metrics=learned, arms=unjudged)
    assert not evaluation_shows_no_change(metrics=still, arms=[{"arm": "before", "n": 40, "low": 0.56, "high": 0.83}])
    assert not evaluation_shows_no_change(metrics={**still, "drift": {"mean_kl": 0.05}}, arms=unjudged)
    # An accuracy written before it carried its interval: the interval is computed from n.
    old = {**still, "heldout_prompts_preference": {"accuracy": 0.9, "n": 50}}
    assert not evaluation_shows_no_change(metrics=old, arms=unjudged)
    # Nothing to say before the job has measured drift.
    assert not evaluation_shows_no_change(metrics={}, arms=unjudged)
