"""Operational endpoints: health and metrics."""

from django.urls import path

from config import metrics, ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
]
