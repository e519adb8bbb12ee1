"""Gold comparisons: an admin records the known answer; reviewers are measured against it.

The assignment service mixes gold comparisons into queues at the project's gold rate; the
reviewer table (prefs.stats) reports each reviewer's accuracy on them.
"""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet

from prefs.models import Choice, Comparison, Project


class GoldError(ValueError):
    """A gold marking that cannot be honoured, with the reason."""


def comparison_set_gold(*, project: Project, comparison_id: int, choice: str) -> Comparison:
    """Marks a comparison of `project` as gold with the known answer, or clears it ("").

    `choice` is canonical (A, B, tie, both_bad): A and B name candidates, not screen sides.
    One conditional UPDATE, so it cannot touch a comparison of another project.
    """
    if choice not in ("", *Choice.values):
        raise GoldError(
            f"gold choice must be one of {', '.join(Choice.values)} or empty, got {choice!r}"
        )
    updated = Comparison.objects.filter(pk=comparison_id, project=project).update(
        gold_choice=choice
    )
    if not updated:
        raise GoldError(f"comparison {comparison_id} is not in project {project.pk}")
    return Comparison.objects.get(pk=comparison_id)


def gold_comparisons(*, project: Project, only_gold: bool = True) -> QuerySet[Comparison]:
    """The project's comparisons (gold ones only by default), with how many human judgments
    each has and how many of those gave the gold answer."""
    comparisons = Comparison.objects.filter(project=project)
    if only_gold:
        comparisons = comparisons.exclude(gold_choice="")
    human = Q(judgments__reviewer__isnull=False)
    return (
        comparisons.select_related("prompt", "candidate_a", "candidate_b")
        .annotate(
            human_judgments=Count("judgments", filter=human),
            right_judgments=Count(
                "judgments",
                filter=human & ~Q(gold_choice="") & Q(judgments__choice=F("gold_choice")),
            ),
        )
        .order_by("id")
    )
