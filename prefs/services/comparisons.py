"""Creating prompts, candidates and comparisons (used by imports, the demo and evaluations)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from prefs.hashing import messages_hash, pair_hash, sha256_text
from prefs.models import Candidate, Comparison, Project, Prompt


@dataclass(frozen=True)
class CandidateSpec:
    """One response to put in a comparison, with its provenance (never shown to reviewers)."""

    text: str
    source: str = "imported"
    adapter_id: int | None = None
    sampling: dict = field(default_factory=dict)


def prompt_get_or_create(
    *,
    project: Project,
    messages: list[dict],
    split: str = Prompt.Split.TRAIN,
    tags: list[str] | None = None,
    external_id: str = "",
) -> Prompt:
    content_hash = messages_hash(messages)
    existing = None
    if external_id:
        existing = Prompt.objects.filter(project=project, external_id=external_id).first()
    if existing is None:
        existing = Prompt.objects.filter(project=project, content_hash=content_hash).first()
    if existing is not None:
        return existing
    return Prompt.objects.create(
        project=project,
        messages=messages,
        split=split,
        tags=tags or [],
        external_id=external_id,
        content_hash=content_hash,
    )


def comparison_create(
    *,
    project: Project,
    prompt: Prompt,
    a: CandidateSpec,
    b: CandidateSpec,
    origin: str = Comparison.Origin.MANUAL,
    required_judgments: int | None = None,
    gold_choice: str = "",
    group_key: str | None = None,
) -> Comparison:
    """Stores both candidates and the comparison between them, in one transaction.

    Comparisons given the same `group_key` share a text; a reviewer is given at most one of them.
    """
    # PostgreSQL text cannot hold NUL (0x00); a model can emit it (byte-fallback tokens), and one
    # such answer would fail the whole job's write. It means nothing in an answer: drop it.
    a_text, b_text = a.text.replace("\x00", ""), b.text.replace("\x00", "")
    with transaction.atomic():
        cand_a, cand_b = (
            Candidate.objects.create(
                prompt=prompt,
                text=text,
                source=spec.source,
                adapter_id=spec.adapter_id,
                sampling=spec.sampling,
                text_hash=sha256_text(text),
            )
            for spec, text in ((a, a_text), (b, b_text))
        )
        return Comparison.objects.create(
            project=project,
            prompt=prompt,
            candidate_a=cand_a,
            candidate_b=cand_b,
            origin=origin,
            required_judgments=project.overlap if required_judgments is None else required_judgments,
            gold_choice=gold_choice,
            group_key=group_key,
            pair_hash=pair_hash(prompt.content_hash, a_text, b_text),
        )
