"""Freezing a project's judgments into an immutable, numbered preference set.

The rule is applied per comparison to the judgments it had when the freeze began (judgment ids
up to a cutoff, recorded on the set): majority (the single most common verdict; a split between
verdicts with equal counts decides nothing), then the minimum number of judgments and the
minimum share agreeing, then ties and both-bad verdicts kept or dropped. Everything streams:
judgments are read in comparison order with a server-side cursor and pairs are written in
batches (COPY on PostgreSQL), so memory does not grow with the project.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, fields
from itertools import groupby
from operator import itemgetter

from django.db import transaction
from django.db.models import Max

from prefs.hashing import canonical_json
from prefs.models import Choice, Judgment, PreferencePair, PreferenceSet, Project
from prefs.services.bulk import BulkTable, collector_paused

RULES = ("majority",)
SPLITS = ("train", "heldout", "all")
# Pairs written per INSERT, and judgments fetched per round trip.
BATCH = 5000


class PreferenceSetError(Exception):
    """A freeze request that cannot be honoured; `errors` lists {"field", "message"}."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class FreezeRule:
    """How judgments become pairs. Stored, with every default filled in, on each version."""

    # Aggregation: "majority" (the most common verdict, which must be unique).
    rule: str = "majority"
    # Comparisons with fewer considered judgments are dropped.
    min_judgments: int = 1
    # Share (0-1) of the considered judgments that must agree with the majority verdict.
    min_agreement: float = 0.0
    # Keep comparisons whose verdict is a tie (exported in both orders at half weight).
    include_ties: bool = False
    # Keep comparisons judged both bad (exported only as KTO negatives and in native).
    include_both_bad: bool = False
    # Count labels that arrived with imported data as votes.
    include_imported: bool = True
    # Weight = mean strength (1-3) of the agreeing verdicts / 3; otherwise every weight is 1.
    strength_as_weight: bool = True
    # Leave out judgments of reviewers flagged by the project's stats (reviewer table).
    exclude_flagged: bool = False
    # Which prompts' comparisons: "train" keeps held-out prompts out of training data.
    split: str = "train"

    @classmethod
    def from_data(cls, data: dict | None) -> FreezeRule:
        """A rule from request data; unknown keys and bad values raise PreferenceSetError."""
        data = dict(data or {})
        errors = []
        known = {f.name: f for f in fields(cls)}
        for key in sorted(set(data) - set(known)):
            errors.append({"field": key, "message": "is not a rule option"})
        values = {}
        for name, spec in known.items():
            if name not in data:
                continue
            value = data[name]
            default = spec.default
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                value = float(value) if ok else value
            else:
                ok = isinstance(value, str)
            if not ok:
                errors.append({"field": name, "message": f"must be a {type(default).__name__}"})
            else:
                values[name] = value
        if not errors:
            rule = cls(**values)
            errors = rule.problems()
            if not errors:
                return rule
        raise PreferenceSetError(errors)

    def problems(self) -> list[dict]:
        errors = []
        if self.rule not in RULES:
            errors.append({"field": "rule", "message": f"must be one of {', '.join(RULES)}"})
        if self.min_judgments < 1:
            errors.append({"field": "min_judgments", "message": "must be at least 1"})
        if not 0.0 <= self.min_agreement <= 1.0:
            errors.append({"field": "min_agreement", "message": "must lie between 0 and 1"})
        if self.split not in SPLITS:
            errors.append({"field": "split", "message": f"must be one of {', '.join(SPLITS)}"})
        return errors

    def as_dict(self) -> dict:
        return asdict(self)


def _flagged_reviewer_ids(project: Project) -> set[int]:
    from prefs.services.stats import flagged_reviewer_ids

    return set(flagged_reviewer_ids(project))


@dataclass
class _Outcome:
    kind: str
    chosen_id: int
    rejected_id: int
    chosen_hash: str
    rejected_hash: str
    weight: float
    agreement: float


def _decide(votes: list[tuple], rule: FreezeRule, counts: Counter) -> _Outcome | None:
    """The pair one comparison gives under `rule`, or None (with the reason counted)."""
    first = votes[0]
    _, _, _, _, _, cand_a, cand_b, _, hash_a, hash_b = first
    if len(votes) < rule.min_judgments:
        counts["dropped_too_few_judgments"] += 1
        return None
    tally = Counter(v[2] for v in votes)
    (winner, top), *rest = tally.most_common()
    if rest and rest[0][1] == top:
        counts["dropped_no_majority"] += 1
        return None
    agreement = top / len(votes)
    if agreement < rule.min_agreement:
        counts["dropped_low_agreement"] += 1
        return None
    if winner == Choice.TIE and not rule.include_ties:
        counts["dropped_ties"] += 1
        return None
    if winner == Choice.BOTH_BAD and not rule.include_both_bad:
        counts["dropped_both_bad"] += 1
        return None
    if rule.strength_as_weight:
        strengths = [v[3] for v in votes if v[2] == winner]
        weight = round(sum(strengths) / len(strengths) / 3, 6)
    else:
        weight = 1.0
    if winner == Choice.B:
        return _Outcome("preferred", cand_b, cand_a, hash_b, hash_a, weight, agreement)
    kind = {Choice.A: "preferred", Choice.TIE: "tie", Choice.BOTH_BAD: "both_bad"}[winner]
    return _Outcome(kind, cand_a, cand_b, hash_a, hash_b, weight, agreement)


def content_line(prompt_hash: str, chosen_hash: str, rejected_hash: str, kind: str, weight: float) -> bytes:
    """One pair's line of the canonical content the set's SHA-256 is taken over."""
    return (canonical_json([prompt_hash, chosen_hash, rejected_hash, kind, weight]) + "\n").encode()


def preference_set_freeze(
    *, project: Project, rule: FreezeRule | None = None, created_by=None
) -> PreferenceSet:
    """Freezes the project's current judgments under `rule` as its next version."""
    rule = rule or FreezeRule()
    problems = rule.problems()
    if problems:
        raise PreferenceSetError(problems)
    flagged: set[int] = set()
    if rule.exclude_flagged:
        flagged = _flagged_reviewer_ids(project)
    # Like an import, a freeze keeps batches of plain tuples alive; see collector_paused.
    with collector_paused(), transaction.atomic():
        # Versions are numbered under the project's row lock, so two freezes cannot both
        # take the same number (the unique constraint would reject the second).
        Project.objects.select_for_update().filter(pk=project.pk).first()
        project_judgments = Judgment.objects.filter(comparison__project=project)
        cutoff = project_judgments.aggregate(last=Max("id"))["last"]
        previous = PreferenceSet.objects.filter(project=project).order_by("-version").first()
        preference_set = PreferenceSet.objects.create(
            project=project,
            version=previous.version + 1 if previous else 1,
            rule=rule.as_dict(),
            previous=previous,
            last_judgment_id=cutoff,
            created_by=created_by,
            sha256="",
        )
        considered = project_judgments.filter(id__lte=cutoff or 0)
        counts: Counter = Counter()
        if rule.split != "all":
            counts["judgments_excluded_split"] = considered.exclude(
                comparison__prompt__split=rule.split
            ).count()
            considered = considered.filter(comparison__prompt__split=rule.split)
        if not rule.include_imported:
            counts["judgments_excluded_imported"] = considered.filter(imported=True).count()
            considered = considered.filter(imported=False)
        if flagged:
            counts["judgments_excluded_flagged"] = considered.filter(reviewer_id__in=flagged).count()
            considered = considered.exclude(reviewer_id__in=flagged)
        votes = (
            considered.order_by("comparison_id", "id")
            .values_list(
                "id",
                "comparison_id",
                "choice",
                "strength",
                "comparison__prompt_id",
                "comparison__candidate_a_id",
                "comparison__candidate_b_id",
                "comparison__prompt__content_hash",
                "comparison__candidate_a__text_hash",
                "comparison__candidate_b__text_hash",
            )
            .iterator(chunk_size=BATCH)
        )
        pairs = BulkTable(
            PreferencePair,
            ("preference_set_id", "comparison_id", "prompt_id", "chosen_id", "rejected_id", "kind",
             "weight", "agreement", "votes", "judgment_ids"),
        )
        diff = _Diff(previous)
        digest = hashlib.sha256()
        batch: list[tuple] = []
        for comparison_id, group in groupby(votes, key=itemgetter(1)):
            group = list(group)
            counts["comparisons"] += 1
            counts["judgments_considered"] += len(group)
            outcome = _decide(group, rule, counts)
            if outcome is None:
                continue
            counts[outcome.kind] += 1
            diff.see(comparison_id, outcome.kind, outcome.chosen_id)
            digest.update(
                content_line(group[0][7], outcome.chosen_hash, outcome.rejected_hash, outcome.kind,
                             outcome.weight)
            )
            batch.append(
                (
                    preference_set.pk,
                    comparison_id,
                    group[0][4],
                    outcome.chosen_id,
                    outcome.rejected_id,
                    outcome.kind,
                    outcome.weight,
                    round(outcome.agreement, 6),
                    len(group),
                    json.dumps([v[0] for v in group]),
                )
            )
            if len(batch) >= BATCH:
                pairs.insert(batch)
                batch.clear()
        pairs.insert(batch)
        pair_count = counts["preferred"] + counts["tie"] + counts["both_bad"]
        summary = {
            "pairs": pair_count,
            "preferred": counts["preferred"],
            "ties": counts["tie"],
            "both_bad": counts["both_bad"],
            "comparisons": counts["comparisons"],
            "judgments_considered": counts["judgments_considered"],
            "dropped": {
                key.removeprefix("dropped_"): counts[key]
                for key in (
                    "dropped_too_few_judgments",
                    "dropped_no_majority",
                    "dropped_low_agreement",
                    "dropped_ties",
                    "dropped_both_bad",
                )
            },
            "judgments_excluded": {
                key.removeprefix("judgments_excluded_"): counts[key]
                for key in (
                    "judgments_excluded_split",
                    "judgments_excluded_imported",
                    "judgments_excluded_flagged",
                )
            },
        }
        if rule.exclude_flagged:
            summary["flagged_reviewers"] = sorted(flagged)
        PreferenceSet.objects.filter(pk=preference_set.pk).update(
            counts=summary, diff=diff.result(), pair_count=pair_count, sha256=digest.hexdigest()
        )
    preference_set.refresh_from_db()
    return preference_set


class _Diff:
    """Pairs added, removed and flipped against the previous version, found by walking both
    in comparison order (each version's pairs are written in that order)."""

    def __init__(self, previous: PreferenceSet | None):
        self.previous = previous
        self.added = self.removed = self.flipped = 0
        self._rows = (
            PreferencePair.objects.filter(preference_set=previous)
            .order_by("id")
            .values_list("comparison_id", "kind", "chosen_id")
            .iterator(chunk_size=BATCH)
            if previous
            else iter(())
        )
        self._current = next(self._rows, None)

    def see(self, comparison_id: int, kind: str, chosen_id: int) -> None:
        while self._current is not None and self._current[0] < comparison_id:
            self.removed += 1
            self._current = next(self._rows, None)
        if self._current is not None and self._current[0] == comparison_id:
            if (self._current[1], self._current[2]) != (kind, chosen_id):
                self.flipped += 1
            self._current = next(self._rows, None)
        else:
            self.added += 1

    def result(self) -> dict:
        if self.previous is None:
            return {}
        while self._current is not None:
            self.removed += 1
            self._current = next(self._rows, None)
        return {
            "previous": self.previous.pk,
            "previous_version": self.previous.version,
            "added": self.added,
            "removed": self.removed,
            "flipped": self.flipped,
        }
