"""The demo: a project with users, prompts and candidate pairs, ready to review."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.db import transaction

from prefs.hashing import messages_hash, pair_hash
from prefs.models import Comparison, Project, Prompt
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
from prefs.services.users import user_create_if_missing

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_PROJECT = "Demo: a helpful, polite assistant"
DEMO_GUIDELINES = """\
Pick the response a thoughtful person would rather receive.

- **Correct first**: a wrong answer loses, however nicely it is written.
- **Helpful and kind**: answer the question; no lecturing, no rudeness.
- **Concise**: shorter wins when both are equally correct and kind.

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


def _rows(name: str) -> list[dict]:
    with open(DEMO_DIR / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


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

        added = 0
        known = set(Comparison.objects.filter(project=project).values_list("pair_hash", flat=True))
        for row in _rows("demo_pairs.jsonl"):
            first, second = row["responses"]
            key = pair_hash(messages_hash(row["prompt"]), first["text"], second["text"])
            if key in known:
                continue
            prompt = prompt_get_or_create(
                project=project, messages=row["prompt"], external_id=row["id"]
            )
            comparison_create(
                project=project,
                prompt=prompt,
                a=CandidateSpec(first["text"], source=first["source"]),
                b=CandidateSpec(second["text"], source=second["source"]),
                origin=Comparison.Origin.DEMO,
            )
            added += 1
        for row in _rows("demo_heldout.jsonl"):
            prompt_get_or_create(
                project=project,
                messages=row["prompt"],
                split=Prompt.Split.HELDOUT,
                external_id=row["id"],
            )
    return {
        "project": project,
        "added_comparisons": added,
        "users": [(u, p) for u, _, p in DEMO_USERS],
        "created_users": created_users,
    }
