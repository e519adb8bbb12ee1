"""Creating and changing projects (admins do, through the pages, the API or the Django admin)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from prefs.models import Project


def project_create(
    *,
    name: str,
    guidelines: str = "",
    overlap: int = 1,
    hold_timeout_s: int = 900,
    gold_rate: float = 0.0,
    links_as_text: bool = False,
    base_model=None,
    reviewers: Iterable = (),
) -> Project:
    with transaction.atomic():
        project = Project.objects.create(
            name=name.strip(),
            guidelines=guidelines,
            overlap=overlap,
            hold_timeout_s=hold_timeout_s,
            gold_rate=gold_rate,
            links_as_text=links_as_text,
            base_model=base_model,
        )
        project.reviewers.set(list(reviewers))
    return project


def project_update(*, project: Project, reviewers: Iterable | None = None, **fields) -> Project:
    """Changes settings; `overlap` applies to comparisons created from now on."""
    allowed = {"name", "guidelines", "overlap", "hold_timeout_s", "gold_rate", "links_as_text", "base_model"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"not a project setting: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        for key, value in fields.items():
            setattr(project, key, value.strip() if key == "name" else value)
        project.save(update_fields=list(fields) or None)
        if reviewers is not None:
            project.reviewers.set(list(reviewers))
    return project
