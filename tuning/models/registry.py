"""Models and adapters: what tuning jobs read and write."""

from __future__ import annotations

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
    """A LoRA adapter version with its lineage."""

    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="adapters")
    project = models.ForeignKey(
        "prefs.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="adapters"
    )
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # Folder in Django's storage (MEDIA_ROOT by default) holding adapter_config.json and weights.
    path = models.CharField(max_length=1000, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name
