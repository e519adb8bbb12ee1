"""Frozen preference sets: immutable, numbered versions of a project's aggregated judgments.

A version stores its pairs (which candidate won, with what weight, from which judgments), so
judgments recorded after the freeze never change it. Pairs point at prompts and candidates with
RESTRICT: a prompt or candidate a version uses cannot be deleted on its own, only together with
the whole project.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from prefs.models.collection import Candidate, Comparison, Project, Prompt


class PreferenceSet(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="preference_sets")
    # 1, 2, 3 … per project, in freeze order.
    version = models.PositiveIntegerField()
    # The full rule with every default filled in (see prefs.services.snapshots.FreezeRule).
    rule = models.JSONField()
    # What the rule kept and dropped, and why.
    counts = models.JSONField(default=dict)
    # Against the project's previous version: {"previous": id, "previous_version": n,
    # "added": n, "removed": n, "flipped": n}; empty for the first version.
    diff = models.JSONField(default=dict)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pair_count = models.PositiveIntegerField(default=0)
    # SHA-256 of the canonical content: one line per pair, in set order, of the canonical JSON
    # [prompt hash, chosen text hash, rejected text hash, kind, weight].
    sha256 = models.CharField(max_length=64)
    # Lineage: no judgment with a larger id was considered (each pair also lists its own).
    last_judgment_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "version"], name="preference_set_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.version}"

    def save(self, *args, **kwargs):
        # A version is written once; changing it would silently change what trained a model.
        # (The freeze service fills in counts with one QuerySet.update before it commits.)
        if self.pk is not None:
            raise ValueError("A preference set is immutable once frozen.")
        super().save(*args, **kwargs)


class PreferencePair(models.Model):
    class Kind(models.TextChoices):
        # `chosen` beat `rejected`.
        PREFERRED = "preferred"
        # Kept tie: order of chosen/rejected carries no meaning.
        TIE = "tie"
        # Kept both-bad: both responses are negatives (KTO).
        BOTH_BAD = "both_bad"

    # Indexed by pair_set_order below, whose first column it is.
    preference_set = models.ForeignKey(
        PreferenceSet, on_delete=models.CASCADE, related_name="pairs", db_index=False
    )
    # RESTRICT is Django's (its deletions check these columns, through their indexes). The
    # database keeps no foreign-key constraint on them: each one checked and share-locked the
    # referenced row at commit, which made freezing 10^6 pairs spend most of its time in
    # COMMIT. The freeze writes only ids it has just read in the same transaction.
    comparison = models.ForeignKey(
        Comparison, on_delete=models.RESTRICT, related_name="+", db_constraint=False
    )
    prompt = models.ForeignKey(Prompt, on_delete=models.RESTRICT, related_name="+", db_constraint=False)
    chosen = models.ForeignKey(Candidate, on_delete=models.RESTRICT, related_name="+", db_constraint=False)
    rejected = models.ForeignKey(
        Candidate, on_delete=models.RESTRICT, related_name="+", db_constraint=False
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PREFERRED)
    # Training weight in (0, 1]: mean strength of the winning verdicts / 3, or 1.0.
    weight = models.FloatField(default=1.0)
    # Share of the considered judgments that agreed with the outcome, and how many there were.
    agreement = models.FloatField(default=1.0)
    votes = models.PositiveSmallIntegerField(default=1)
    # Lineage: the judgments this pair was aggregated from.
    judgment_ids = models.JSONField(default=list)

    class Meta:
        ordering = ["id"]
        # Exports and diffs stream a set's pairs in id order (which is comparison order).
        indexes = [models.Index(fields=["preference_set", "id"], name="pair_set_order")]

    def __str__(self) -> str:
        return f"Pair {self.pk} ({self.kind})"
