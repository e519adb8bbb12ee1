"""Rounds: generate -> judge -> freeze -> train -> evaluate -> promote, as one unit a project repeats."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Pairing(models.TextChoices):
    # Every two of a prompt's K answers: K*(K-1)/2 comparisons.
    ALL = "all", "all pairs"
    # Best against worst (then second best against second worst ...) by the active adapter's own
    # implicit reward: the comparisons where the adapter is most sure, for people to confirm or
    # correct. Needs an active adapter trained from a parent.
    REWARD_GAP = "reward_gap", "largest reward gap"


class RoundPolicy(models.Model):
    """How a project's rounds sample and when they train (one row per project, made on first use)."""

    project = models.OneToOneField("prefs.Project", on_delete=models.CASCADE, related_name="round_policy")
    # Answers sampled per training prompt that still needs data.
    samples = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(2), MaxValueValidator(4)]
    )
    pairing = models.CharField(max_length=16, choices=Pairing.choices, default=Pairing.ALL)
    # The round freezes and trains once its own comparisons have this many judgments.
    target_judgments = models.PositiveIntegerField(default=40, validators=[MinValueValidator(1)])
    # Most training prompts one round samples for.
    max_prompts = models.PositiveIntegerField(default=32, validators=[MinValueValidator(1)])

    def __str__(self) -> str:
        return f"RoundPolicy of project {self.project_id}"


class Round(models.Model):
    """One turn of the loop, from the project's active adapter at its start.

    Its state is read from its jobs (see tuning.selectors.round_state), so nothing has to keep a
    copy of it in step: sampling -> collecting -> training -> evaluating -> done (or failed).
    """

    project = models.ForeignKey("prefs.Project", on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    # The active adapter when the round started (None: the bare base model); training starts here.
    parent_adapter = models.ForeignKey(
        "tuning.Adapter", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The policy as it was at the start, so a later change of settings does not rewrite history.
    samples = models.PositiveSmallIntegerField()
    pairing = models.CharField(max_length=16, choices=Pairing.choices)
    target_judgments = models.PositiveIntegerField()
    # The job that sampled answers (None when every training prompt already had on-policy data).
    generate_job = models.OneToOneField(
        "tuning.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="generating_round"
    )
    preference_set = models.ForeignKey(
        "prefs.PreferenceSet", null=True, blank=True, on_delete=models.PROTECT, related_name="rounds"
    )
    train_job = models.OneToOneField(
        "tuning.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_round"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    frozen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="round_number_once")]

    def __str__(self) -> str:
        return f"Round {self.number} of project {self.project_id}"
