"""Operational endpoints: health and metrics."""

from django.urls import path

from config import ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
]
