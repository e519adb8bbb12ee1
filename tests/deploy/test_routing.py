"""Jobs go to the queue of workers whose cards can hold their base model (PREFLOOP_JOB_QUEUES).

The message itself landing in the mapped Redis queue is shown in tests/config/test_metrics.py
(queue depth per queue after real dispatches); here, the choice and the setting's strictness.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_map
from tuning.models import BaseModel, Job
from tuning.services.jobs import job_queue


def test_the_setting_reads_name_queue_pairs(monkeypatch):
    monkeypatch.setenv("QUEUES", " Qwen2.5-7B=gpu-48g , Llama-3.1-8B=gpu-80g,")
    assert env_map("QUEUES", {}) == {"Qwen2.5-7B": "gpu-48g", "Llama-3.1-8B": "gpu-80g"}
    monkeypatch.setenv("QUEUES", "")
    assert env_map("QUEUES", {}) == {}


@pytest.mark.parametrize("raw", ["Qwen2.5-7B", "=gpu-80g", "Qwen2.5-7B=", "a=b,c"])
def test_a_malformed_entry_stops_the_start_naming_it(monkeypatch, raw):
    monkeypatch.setenv("QUEUES", raw)
    with pytest.raises(ImproperlyConfigured, match="QUEUES must be key=value pairs"):
        env_map("QUEUES", {})


@pytest.mark.django_db
def test_a_listed_base_model_goes_to_its_queue_and_the_rest_to_gpu(project, settings):
    settings.PREFLOOP_JOB_QUEUES = {"Llama-3.1-8B": "gpu-80g"}
    big = Job.objects.create(kind="dpo", project=project, base_model=BaseModel.objects.create(name="Llama-3.1-8B", source="/x"))
    small = Job.objects.create(kind="dpo", project=project, base_model=BaseModel.objects.create(name="SmolLM2-135M", source="/y"))
    assert job_queue(job_id=big.pk) == "gpu-80g"
    assert job_queue(job_id=small.pk) == "gpu"
