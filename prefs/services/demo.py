"""The demo: a project with users, prompts, pairs to review and labelled on-policy data.

The demo's guideline asks for something the default model does not do by itself: brief answers
(it writes 100-200 words to most everyday questions). The model's own answers to the training
prompts ship in ``demo/demo_samples.jsonl``; the simulated reviewer (``prefs.simulated_reviewer``)
labels every two of a prompt's answers by the guideline, and the decided pairs are stored as
imported labels, apart from people's judgments. So the first round ("Start the next round" on
the project's Rounds page) can train at once, and a newcomer judges its before/after pairs.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

from django.conf import settings
from django.db import transaction

from prefs.hashing import messages_hash, pair_hash
from prefs.models import Comparison, Judgment, Project, Prompt
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
from prefs.services.users import user_create_if_missing
from prefs.simulated_reviewer import simulated_verdict

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_PROJECT = "Demo: brief answers"
DEMO_GUIDELINES = """\
Pick the answer a busy reader would rather get.

- **Brief**: at most three sentences, about 60 words. A long answer loses to a short one that
  says enough; lists of tips and preambles ("Great question!") count against an answer.
- **Correct and kind**: a wrong or rude answer loses, however short.

Use *tie* when neither is better, *both bad* when you would send neither.
"""
# (user name, role, password): printed by the demo command, so a newcomer can log in.
DEMO_USERS = (
    ("admin", "admin", "prefloop-admin"),
    ("alice", "reviewer", "prefloop-review"),
    ("bob", "reviewer", "prefloop-review"),
    ("carol", "reviewer", "prefloop-review"),
)
DEFAULT_BASE_MODEL = ("SmolLM2-135M-Instruct", "smollm2-135m-instruct")
# Provenance of the shipped answers: the bare default model, as a round labels its own samples.
SAMPLES_SOURCE = f"base:{DEFAULT_BASE_MODEL[0]}"


def _rows(name: str) -> list[dict]:
    with open(DEMO_DIR / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def demo_labelled_pairs() -> list[dict]:
    """Every two of a prompt's shipped answers with the simulated reviewer's verdict.

    Ties are kept too: they record that the prompt has its on-policy data (so a round does not
    sample it again), and a freeze leaves them out of training as it does people's ties.
    """
    out = []
    for row in _rows("demo_samples.jsonl"):
        samples = row["samples"]
        for i, j in combinations(range(len(samples)), 2):
            verdict = simulated_verdict(samples[i]["text"], samples[j]["text"])
            out.append({"id": row["id"], "prompt": row["prompt"], "a": i, "b": j, "samples": samples, "sampling": row["sampling"], "choice": verdict})
    return out


def _seed_prompts(project: Project) -> dict[str, Prompt]:
    prompts = {}
    for row in _rows("demo_prompts.jsonl"):
        prompts[row["id"]] = prompt_get_or_create(
            project=project, messages=row["prompt"], split=row["split"], external_id=row["id"]
        )
    return prompts


def _seed_review_pairs(project: Project, prompts: dict[str, Prompt], known: set[str]) -> int:
    """Hand-written pairs for people to judge from the first minute (no labels)."""
    added = 0
    for row in _rows("demo_pairs.jsonl"):
        first, second = row["responses"]
        key = pair_hash(messages_hash(row["prompt"]), first["text"], second["text"])
        if key in known:
            continue
        comparison_create(
            project=project,
            prompt=prompts[row["id"]],
            a=CandidateSpec(first["text"], source=first["source"]),
            b=CandidateSpec(second["text"], source=second["source"]),
            origin=Comparison.Origin.DEMO,
        )
        added += 1
    return added


def _seed_labelled_pairs(project: Project, prompts: dict[str, Prompt], known: set[str]) -> int:
    """The on-policy pairs with the simulated reviewer's verdicts, as imported labels."""
    added = 0
    for pair in demo_labelled_pairs():
        a, b = pair["samples"][pair["a"]], pair["samples"][pair["b"]]
        key = pair_hash(messages_hash(pair["prompt"]), a["text"], b["text"])
        if key in known:
            continue
        specs = [
            CandidateSpec(
                sample["text"],
                source=SAMPLES_SOURCE,
                sampling={**pair["sampling"], "sample": number, "finish_reason": sample["finish_reason"], "demo": True},
            )
            for number, sample in ((pair["a"], a), (pair["b"], b))
        ]
        comparison = comparison_create(
            project=project,
            prompt=prompts[pair["id"]],
            a=specs[0],
            b=specs[1],
            origin=Comparison.Origin.SAMPLING,
            # Already labelled: reviewers are not asked to redo it (as an import of labelled rows).
            required_judgments=0,
        )
        Judgment.objects.create(comparison=comparison, imported=True, choice=pair["choice"], strength=2)
        added += 1
    return added


class DemoError(RuntimeError):
    pass


def demo_seed(*, allow_production: bool = False) -> dict:
    """Creates what is missing and leaves the rest; running it twice changes nothing.

    Existing users are never changed: an `admin` made for real keeps its own password, not the
    public demo one. With PREFLOOP_ENV=production it refuses unless allow_production is given.
    """
    from tuning.models import BaseModel

    if settings.PREFLOOP_ENV == "production" and not allow_production:
        raise DemoError(
            "PREFLOOP_ENV=production: the demo adds users with public passwords and demo data; "
            "pass --allow-production if that is really intended"
        )
    with transaction.atomic():
        base, _ = BaseModel.objects.get_or_create(
            name=DEFAULT_BASE_MODEL[0], defaults={"source": DEFAULT_BASE_MODEL[1]}
        )
        project, _ = Project.objects.get_or_create(
            name=DEMO_PROJECT,
            defaults={"guidelines": DEMO_GUIDELINES, "overlap": 2, "base_model": base},
        )
        created_users = []
        for username, role, password in DEMO_USERS:
            _, created = user_create_if_missing(
                username=username,
                role=role,
                password=password,
                project_ids=[project.pk] if role == "reviewer" else [],
                # The demo's passwords are public and printed; a deployment's stricter
                # validators must not stop the demo.
                check_password=False,
            )
            if created:
                created_users.append(username)
        prompts = _seed_prompts(project)
        known = set(Comparison.objects.filter(project=project).values_list("pair_hash", flat=True))
        added = _seed_review_pairs(project, prompts, known)
        labelled = _seed_labelled_pairs(project, prompts, known)
    return {
        "project": project,
        "added_comparisons": added,
        "labelled_pairs": labelled,
        "users": [(u, p) for u, _, p in DEMO_USERS],
        "created_users": created_users,
    }
