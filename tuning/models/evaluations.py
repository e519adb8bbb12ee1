"""Evaluations: before/after outputs on held-out prompts, the blind comparisons they became."""

from __future__ import annotations

from django.db import models


class Evaluation(models.Model):
    """One adapter judged against the one it came from, by metrics and by blind reviews."""

    project = models.ForeignKey("prefs.Project", on_delete=models.CASCADE, related_name="evaluations")
    # The evaluate job that produces the outputs and metrics.
    job = models.OneToOneField("tuning.Job", on_delete=models.CASCADE, related_name="evaluation")
    # The training job whose success started this evaluation (None when launched by hand).
    source_job = models.ForeignKey(
        "tuning.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluations"
    )
    base_model = models.ForeignKey("tuning.BaseModel", on_delete=models.PROTECT, related_name="+")
    # None: the bare base model.
    before_adapter = models.ForeignKey(
        "tuning.Adapter", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    after_adapter = models.ForeignKey(
        "tuning.Adapter", on_delete=models.PROTECT, related_name="evaluations"
    )
    # Automatic figures written by the job: held-out preference accuracy, reward margins,
    # drift (mean per-token KL to the parent) and whether it passed the warning threshold.
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Evaluation {self.pk}"


class EvaluationPair(models.Model):
    """One held-out prompt answered by the new adapter and by one opponent, as a comparison."""

    class Arm(models.TextChoices):
        # The input adapter (the usual before/after question).
        BEFORE = "before", "before (input adapter)"
        # The bare base model: did tuning beat doing nothing at all?
        BASE = "base", "bare base model"
        # The input adapter with an admin-written system prompt: the cheaper fix to rule out.
        SYSTEM_PROMPT = "system_prompt", "input adapter + system prompt"

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey("prefs.Prompt", on_delete=models.CASCADE, related_name="+")
    arm = models.CharField(max_length=16, choices=Arm.choices)
    comparison = models.OneToOneField(
        "prefs.Comparison", on_delete=models.CASCADE, related_name="evaluation_pair"
    )
    after_candidate = models.ForeignKey("prefs.Candidate", on_delete=models.CASCADE, related_name="+")
    other_candidate = models.ForeignKey("prefs.Candidate", on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "prompt", "arm"], name="evaluation_pair_once"
            )
        ]

    def __str__(self) -> str:
        return f"EvaluationPair {self.pk} ({self.arm})"
