"""Training jobs: the launch form's settings reach the engine; a run that learned nothing says so."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.tuning.factories import frozen_set
from tuning.engine.dpo import DPOConfig
from tuning.models import Job
from tuning.services.launch import job_launch
from tuning.services.params import params_clean
from tuning.services.runner import job_run
from tuning.services.training import dpo_config


def test_the_length_aware_settings_of_the_form_reach_the_engine():
    params, errors = params_clean(kind="dpo", raw={"loss_type": "simpo", "beta": 2.0, "simpo_gamma": 1.0, "length_alpha": -0.05})
    assert errors == []
    config = DPOConfig.from_value(dpo_config(params, n_rows=40, checkpoints=False))
    config.check()
    assert (config.loss_type, config.beta, config.simpo_gamma, config.length_alpha) == ("simpo", 2.0, 1.0, -0.05)


def test_a_job_queued_before_a_setting_existed_runs_with_its_default():
    params, _ = params_clean(kind="dpo", raw={})
    old = {key: value for key, value in params.items() if key not in ("simpo_gamma", "length_alpha")}
    config = dpo_config(old, n_rows=4, checkpoints=False)
    assert config["simpo_gamma"] == params["simpo_gamma"] and config["length_alpha"] == params["length_alpha"]


@pytest.mark.django_db(transaction=True)
def test_a_dpo_job_that_learned_nothing_ends_with_a_warning_on_its_page(tuning_project, admin_user, client):
    job = job_launch(
        kind="dpo",
        project=tuning_project,
        created_by=admin_user,
        preference_set_id=frozen_set(tuning_project).pk,
        # A learning rate of 1e-9 leaves the adapter where it started.
        params={"learning_rate": 1e-9, "epochs": 1, "batch_size": 4, "evaluate": False},
    )
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    warning = job.result["warning"]
    assert warning.startswith("training accuracy stayed at chance")
    assert f"warning: {warning}" in job.log_tail
    client.force_login(admin_user)
    page = client.get(reverse("tuning-job", args=[job.pk])).content.decode()
    assert "the adapter learned nothing measurable" in page


@pytest.mark.django_db(transaction=True)
def test_a_dpo_job_that_learned_shows_no_warning(tuning_project, admin_user):
    job = job_launch(
        kind="dpo",
        project=tuning_project,
        created_by=admin_user,
        preference_set_id=frozen_set(tuning_project).pk,
        params={"learning_rate": 1e-2, "epochs": 6, "batch_size": 4, "lora_r": 4, "evaluate": False},
    )
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.result["warning"] is None
    assert job.result["metrics"]["last_epoch/accuracy_low"] > 0.5
