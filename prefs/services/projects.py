"""Creating projects (admins do, through the API or the Django admin)."""

from __future__ import annotations

from prefs.models import Project


def project_create(
    *,
    name: str,
    guidelines: str = "",
    overlap: int = 1,
    hold_timeout_s: int = 900,
    gold_rate: float = 0.0,
) -> Project:
    return Project.objects.create(
        name=name.strip(),
        guidelines=guidelines,
        overlap=overlap,
        hold_timeout_s=hold_timeout_s,
        gold_rate=gold_rate,
    )
