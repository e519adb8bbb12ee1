"""Reads for the quality and ranking pages: judgments out of the database, numbers out of
`prefs.stats` (which never touches the database).

A response's ranking source is the name of the adapter that wrote it when there is one, else
the candidate's free source label.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce, Length

from prefs.models import Judgment, PreferencePair, PreferenceSet, Project
from prefs.stats.flags import FLAG_CODES, FlagThresholds, flagged_ids, reviewer_table
from prefs.stats.gold import gold_accuracy
from prefs.stats.records import Verdict
from prefs.stats.summary import leaderboard_summary, project_summary

_FIELDS = (
    "comparison_id",
    "reviewer_id",
    "choice",
    "left_is_a",
    "ms_on_task",
    "len_a",
    "len_b",
    "source_a",
    "source_b",
    "gold_choice",
    "created_at",
)


def verdicts_from(judgments: QuerySet[Judgment]) -> list[Verdict]:
    """Flatten judgments (any queryset of them) into the records `prefs.stats` reads."""
    rows = (
        judgments.order_by("created_at", "id")
        .annotate(
            len_a=Length("comparison__candidate_a__text"),
            len_b=Length("comparison__candidate_b__text"),
            source_a=Coalesce(
                "comparison__candidate_a__adapter__name", "comparison__candidate_a__source"
            ),
            source_b=Coalesce(
                "comparison__candidate_b__adapter__name", "comparison__candidate_b__source"
            ),
            gold_choice=F("comparison__gold_choice"),
        )
        .values_list(*_FIELDS)
    )
    return [Verdict(*row) for row in rows.iterator(chunk_size=5000)]


def project_judgments(*, project: Project, include_imported: bool = True) -> QuerySet[Judgment]:
    judgments = Judgment.objects.filter(comparison__project=project)
    if not include_imported:
        judgments = judgments.filter(reviewer__isnull=False)
    return judgments


def _usernames(ids) -> dict[int, str]:
    user_model = get_user_model()
    return dict(
        user_model.objects.filter(pk__in=list(ids)).values_list("pk", user_model.USERNAME_FIELD)
    )


def project_stats(
    *,
    project: Project,
    thresholds: FlagThresholds | None = None,
    judgments: QuerySet[Judgment] | None = None,
) -> dict:
    """Agreement, bias, throughput and the reviewer table with flags, for a project (or for
    the given judgments of it, e.g. those behind one preference-set version)."""
    if judgments is None:
        judgments = project_judgments(project=project)
    summary = project_summary(verdicts_from(judgments), thresholds=thresholds)
    names = _usernames(row["reviewer_id"] for row in summary["reviewers"])
    for row in summary["reviewers"]:
        row["username"] = names.get(row["reviewer_id"], "")
    for pair in summary["agreement"]["pairs"]:
        pair["username_a"] = names.get(pair["rater_a"], "")
        pair["username_b"] = names.get(pair["rater_b"], "")
    return {"project": project.pk, "preference_set": None, "version": None, **summary}


def project_leaderboard(
    *,
    project: Project,
    resamples: int = 1000,
    seed: int = 0,
    include_imported: bool = True,
    judgments: QuerySet[Judgment] | None = None,
) -> dict:
    """Bradley–Terry scores with bootstrap intervals per source, Elo, and the win-rate matrix."""
    if judgments is None:
        judgments = project_judgments(project=project, include_imported=include_imported)
    board = leaderboard_summary(verdicts_from(judgments), resamples=resamples, seed=seed)
    return {"project": project.pk, "include_imported": include_imported, **board}


def reviewer_gold_accuracy(*, project: Project) -> dict[int, dict]:
    """Each reviewer's accuracy on the project's gold comparisons (reviewer id → numbers)."""
    judgments = project_judgments(project=project, include_imported=False).exclude(
        comparison__gold_choice=""
    )
    return gold_accuracy(verdicts_from(judgments))


def flagged_reviewer_ids(
    project: Project,
    thresholds: FlagThresholds | None = None,
    *,
    codes=FLAG_CODES,
) -> set[int]:
    """Ids of the project's reviewers carrying any of the given flags (all flags by default),
    for excluding their judgments from a preference set."""
    human = project_judgments(project=project, include_imported=False)
    return flagged_ids(reviewer_table(verdicts_from(human), thresholds), codes=codes)


def preference_set_judgments(*, preference_set: PreferenceSet) -> QuerySet[Judgment]:
    """The judgments behind a frozen version's pairs: for each comparison it kept, those the
    freeze considered (ids up to its cutoff, less imported labels or flagged reviewers when its
    rule left them out). Comparisons the rule dropped are not included."""
    rule = preference_set.rule or {}
    judgments = Judgment.objects.filter(
        comparison__project_id=preference_set.project_id,
        id__lte=preference_set.last_judgment_id or 0,
        comparison_id__in=PreferencePair.objects.filter(preference_set=preference_set).values(
            "comparison_id"
        ),
    )
    if not rule.get("include_imported", True):
        judgments = judgments.filter(imported=False)
    flagged = (preference_set.counts or {}).get("flagged_reviewers") or []
    if flagged:
        judgments = judgments.exclude(reviewer_id__in=flagged)
    return judgments


def preference_set_stats(
    *, preference_set: PreferenceSet, thresholds: FlagThresholds | None = None
) -> dict:
    """Agreement, bias and the reviewer table over the judgments behind one version."""
    stats = project_stats(
        project=preference_set.project,
        thresholds=thresholds,
        judgments=preference_set_judgments(preference_set=preference_set),
    )
    return {**stats, "preference_set": preference_set.pk, "version": preference_set.version}
