"""Models and adapters: what tuning jobs read and write."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BaseModel(models.Model):
    name = models.CharField(max_length=200, unique=True)
    # A local Hugging Face folder, a .gguf file, or the name of a packaged model
    # ("smollm2-135m-instruct"); tuning.engine resolves it.
    source = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Adapter(models.Model):
    """A LoRA adapter version with its lineage (parent, job, preference-set version)."""

    class Kind(models.TextChoices):
        # A policy adapter answers prompts; a reward adapter scores answers.
        POLICY = "policy"
        REWARD = "reward"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.POLICY)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="adapters")
    project = models.ForeignKey(
        "prefs.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="adapters"
    )
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # The job that trained it and the preference set it learnt from (None when imported).
    job = models.ForeignKey(
        "tuning.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="adapters"
    )
    preference_set = models.ForeignKey(
        "prefs.PreferenceSet",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="adapters",
    )
    # Folder in Django's storage (MEDIA_ROOT by default) holding adapter_config.json and weights.
    path = models.CharField(max_length=1000, blank=True, default="")
    # The engine's prefloop.json: base fingerprint, data hash, hyperparameters, final metrics.
    metadata = models.JSONField(default=dict, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class AdapterPromotion(models.Model):
    """A change of a project's active adapter; the history that a rollback walks back through."""

    project = models.ForeignKey(
        "prefs.Project", on_delete=models.CASCADE, related_name="adapter_promotions"
    )
    # None: back to the bare base model.
    adapter = models.ForeignKey(
        Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="promotions"
    )
    previous = models.ForeignKey(
        Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_rollback = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"AdapterPromotion {self.pk}"
