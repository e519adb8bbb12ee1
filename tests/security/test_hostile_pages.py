"""Hostile text stays text on every page that shows it.

Each case puts one payload of tests/hostile.py everywhere a user (or an imported file) can put
text — project name and guidelines, prompts, responses, source labels, rationales, adapter and
base-model names, adapter metadata, job errors and logs, import files — then opens every page
that shows those and audits the HTML (`assert_inert`): no script but ours, no event handlers,
no javascript:/data: URLs, no element that loads or runs something.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from django.test import Client

from prefs.models import Comparison, Prompt
from prefs.services.assignment import comparison_next_for
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
from prefs.services.gold import comparison_set_gold
from prefs.services.judging import Verdict, judgment_record
from prefs.services.snapshots import preference_set_freeze
from tests.hostile import XSS_PAYLOADS, assert_inert
from tests.security.conftest import build_adapter
from tuning.models import Evaluation, EvaluationPair, Job
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db

# Every hostile text starts with this, so the test can tell the pages showed them at all.
MARK = "HOSTILE"

# Our own markup these pages may hold: forms, stylesheets, meta; charts are inline SVG drawn by
# prefs.charts / tuning.charts (they escape every text; an injected <svg> would still be caught
# by its event handler, and its <script> by the script rule).
PAGE_TAGS = {"form", "link", "meta"}
CHART_TAGS = PAGE_TAGS | {"svg"}
# Django's admin shows its own icons (<img>, <svg>) and loads its translations from /admin/jsi18n/.
DJANGO_ADMIN_TAGS = PAGE_TAGS | {"img", "svg"}


def _hostile_world(payload: str, project, reviewer, admin_user):
    """Everything a user can write, written as `payload`."""
    project.name = f"{MARK} Project {payload}"[:200]
    project.guidelines = f"{MARK} Guidelines {payload}"
    project.save(update_fields=["name", "guidelines"])
    comparisons = []
    for index in range(3):
        prompt = prompt_get_or_create(
            project=project,
            messages=[
                {"role": "system", "content": f"{MARK} System {index} {payload}"},
                {"role": "user", "content": f"{MARK} Prompt {index} {payload}"},
            ],
            external_id=f"hostile-{index}",
        )
        comparisons.append(
            comparison_create(
                project=project,
                prompt=prompt,
                a=CandidateSpec(f"{MARK} Left {index} {payload}", source=f"{MARK} src-a {payload}"[:200]),
                b=CandidateSpec(f"Right {index}\n\n```\n{payload}\n```", source=f"{MARK} src-b {payload}"[:200]),
            )
        )
    # The reviewer judges two of them with a hostile rationale; the third stays in the queue.
    for _ in range(2):
        assignment = comparison_next_for(reviewer=reviewer, project=project)
        judgment_record(
            reviewer=reviewer,
            assignment_id=assignment.pk,
            verdict=Verdict(choice="left", strength=3, rationale=f"{MARK} Because {payload}"),
        )
    comparison_set_gold(project=project, comparison_id=comparisons[0].pk, choice="A")
    first = preference_set_freeze(project=project)
    second_prompt = prompt_get_or_create(project=project, messages=[{"role": "user", "content": f"{MARK} Later {payload}"}])
    later = comparison_create(
        project=project, prompt=second_prompt,
        a=CandidateSpec(f"Later left {payload}", source="x"), b=CandidateSpec(f"Later right {payload}", source="y"),
    )
    assignment = comparison_next_for(reviewer=reviewer, project=project)
    if assignment is not None and assignment.comparison_id == later.pk:
        judgment_record(reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice="right"))
    # A second version, so the set page shows a diff against the first.
    second = preference_set_freeze(project=project)

    job = job_launch(kind="dpo", project=project, created_by=admin_user, preference_set_id=first.pk)
    Job.objects.filter(pk=job.pk).update(
        state=Job.State.FAILED, error=f"{MARK} Failed: {payload}", log_tail=f"{MARK} log line {payload}\nanother {payload}"
    )
    adapter = build_adapter(project, name=f"{MARK} adapter {payload}"[:200])
    adapter.metadata = {"note": payload, payload[:40]: 1}
    adapter.save(update_fields=["metadata"])
    evaluate = job_launch(kind="evaluate", project=project, created_by=admin_user, adapter_id=adapter.pk)
    evaluation = Evaluation.objects.get(job=evaluate)
    evaluation.metrics = {"note": payload}
    evaluation.save(update_fields=["metrics"])
    for prompt in Prompt.objects.filter(project=project, split=Prompt.Split.HELDOUT):
        comparison = comparison_create(
            project=project,
            prompt=prompt,
            a=CandidateSpec(f"{MARK} After {payload}", source=adapter.name, adapter_id=adapter.pk),
            b=CandidateSpec(f"{MARK} Before {payload}", source="before"),
            origin=Comparison.Origin.EVALUATION,
        )
        EvaluationPair.objects.create(
            evaluation=evaluation, prompt=prompt, arm=EvaluationPair.Arm.BEFORE, comparison=comparison,
            after_candidate=comparison.candidate_a, other_candidate=comparison.candidate_b,
        )
    project.base_model.__class__.objects.filter(pk=project.base_model_id).update(name=f"{MARK} base {payload}"[:200])
    return {"set": second, "job": job, "adapter": adapter, "evaluation": evaluation, "comparison": comparisons[0]}


def _native_line(payload: str, index: int) -> str:
    return json.dumps(
        {
            "prompt": [{"role": "user", "content": f"{MARK} Imported {index} {payload}"}],
            "responses": [{"text": f"{MARK} One {payload}", "source": f"s1 {payload}"}, {"text": f"Two {payload}", "source": "s2"}],
            "preference": 0,
            "id": f"{payload}-{index}",
        }
    )


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_every_page_that_shows_user_text_renders_it_inert(payload, tuning_project, reviewer, admin_user):
    made = _hostile_world(payload, tuning_project, reviewer, admin_user)
    project = tuning_project
    as_admin, as_reviewer = Client(), Client()
    as_admin.force_login(admin_user)
    as_reviewer.force_login(reviewer)

    pages: list[tuple[str, Client, str, set[str]]] = [
        ("home (reviewer)", as_reviewer, "/", PAGE_TAGS),
        ("home (admin)", as_admin, "/", PAGE_TAGS),
        ("project settings", as_admin, f"/projects/{project.pk}/settings/", PAGE_TAGS),
        ("review page", as_reviewer, f"/projects/{project.pk}/review/", PAGE_TAGS),
        ("stats dashboard", as_admin, f"/projects/{project.pk}/stats/", CHART_TAGS),
        ("stats of a version", as_admin, f"/projects/{project.pk}/stats/?preference_set={made['set'].pk}", CHART_TAGS),
        ("reviewer table", as_admin, f"/projects/{project.pk}/stats/reviewers/", CHART_TAGS),
        ("leaderboard", as_admin, f"/projects/{project.pk}/stats/leaderboard/", CHART_TAGS),
        ("gold page", as_admin, f"/projects/{project.pk}/stats/gold/?show=all", PAGE_TAGS),
        ("import page", as_admin, f"/projects/{project.pk}/import/", PAGE_TAGS),
        ("preference sets", as_admin, f"/projects/{project.pk}/sets/", PAGE_TAGS),
        ("preference set samples and diff", as_admin, f"/sets/{made['set'].pk}/", PAGE_TAGS),
        ("job list", as_admin, "/jobs/", PAGE_TAGS),
        ("job list of the project", as_admin, f"/jobs/?project={project.pk}", PAGE_TAGS),
        ("job page", as_admin, f"/jobs/{made['job'].pk}/", CHART_TAGS),
        ("job live fragment", as_admin, f"/jobs/{made['job'].pk}/live/", CHART_TAGS),
        ("launch form", as_admin, f"/jobs/new/dpo/?project={project.pk}", PAGE_TAGS),
        ("adapter registry", as_admin, "/adapters/", PAGE_TAGS),
        ("adapter page", as_admin, f"/adapters/{made['adapter'].pk}/", PAGE_TAGS),
        ("evaluation before/after", as_admin, f"/evaluations/{made['evaluation'].pk}/", CHART_TAGS),
        ("evaluation live fragment", as_admin, f"/evaluations/{made['evaluation'].pk}/live/", CHART_TAGS),
        ("django admin: projects", as_admin, "/admin/prefs/project/", DJANGO_ADMIN_TAGS),
        ("django admin: a comparison", as_admin, f"/admin/prefs/comparison/{made['comparison'].pk}/change/", DJANGO_ADMIN_TAGS),
        ("django admin: judgments", as_admin, "/admin/prefs/judgment/", DJANGO_ADMIN_TAGS),
    ]
    problems = {}
    shown = 0
    for label, client, url, allowed in pages:
        sources = ("/static/", "/admin/jsi18n/") if url.startswith("/admin/") else ("/static/",)
        response = client.get(url)
        assert response.status_code == 200, f"{label}: {url} answered {response.status_code}"
        html = response.content.decode()
        shown += MARK in html
        try:
            assert_inert(html, allowed_tags=allowed, script_sources=sources)
        except AssertionError as exc:
            problems[label] = str(exc)
    assert problems == {}, json.dumps(problems, indent=1)
    # The hostile text is on these pages: the audit looked at something.
    assert shown >= len(pages) - 4, f"only {shown} of {len(pages)} pages show the hostile text"

    # Forms that echo what was typed: a rejected verdict brings the rationale back (htmx).
    assignment = comparison_next_for(reviewer=reviewer, project=project)
    echoed = as_reviewer.post(
        f"/projects/{project.pk}/review/{assignment.pk}/judge/",
        {"choice": "sideways", "strength": "2", "rationale": f"Typed {payload}"},
        HTTP_HX_REQUEST="true",
    )
    assert echoed.status_code == 200 and b"Typed" in echoed.content
    assert_inert(echoed.content.decode(), allowed_tags=PAGE_TAGS)

    # The import preview shows the first rows of a hostile file, and a bad line's reason.
    upload = io.BytesIO("\n".join(_native_line(payload, i) for i in range(3)).encode())
    upload.name = f"{payload[:20]}.jsonl"
    preview = as_admin.post(f"/projects/{project.pk}/import/", {"file": upload, "format": "native"})
    assert preview.status_code == 200, preview.content[:500]
    assert_inert(preview.content.decode(), allowed_tags=PAGE_TAGS)
    bad = io.BytesIO(
        (_native_line(payload, 0) + "\n" + json.dumps({"prompt": [{"role": payload, "content": "x"}], "responses": payload}))
        .encode()
    )
    bad.name = "bad.jsonl"
    refused = as_admin.post(f"/projects/{project.pk}/import/", {"file": bad, "format": "native"})
    assert refused.status_code == 400
    # The reason names line 2 and the field, and quotes the bad value as text.
    assert re.search(r"<td>2</td>\s*<td>prompt\[0\]\.role</td>", refused.content.decode())
    assert_inert(refused.content.decode(), allowed_tags=PAGE_TAGS)


def test_login_never_redirects_off_site(client, reviewer):
    """`next` is a classic open-redirect hole; only paths on this site are followed."""
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)", "/\\evil.example"):
        answer = client.post(
            f"/login/?next={target}", {"username": "rita", "password": "rita-password", "next": target}
        )
        assert answer.status_code == 302
        assert answer["Location"] == "/", (target, answer["Location"])
        client.logout()
