"""Tuning jobs and their events: the database is the record of every job, not the broker."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Job(models.Model):
    """One unit of GPU work: training, generation, evaluation.

    States move `queued -> running -> succeeded | failed | cancelled`; a running job whose worker
    died goes back to `queued` when retries remain. Every change of state is a conditional UPDATE
    in tuning.services.jobs, so two workers (or a worker and the reaper) never both own a job.
    """

    class Kind(models.TextChoices):
        DPO = "dpo", "DPO"
        REJECTION_SAMPLING = "rejection_sampling", "Rejection sampling"
        GENERATE = "generate", "Generate comparisons"
        EVALUATE = "evaluate", "Evaluate"
        REWARD_MODEL = "reward_model", "Reward model"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)
    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=24, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    project = models.ForeignKey("prefs.Project", on_delete=models.CASCADE, related_name="jobs")
    base_model = models.ForeignKey(
        "tuning.BaseModel", on_delete=models.PROTECT, related_name="jobs"
    )
    # The adapter the job starts from (None: the bare base model).
    input_adapter = models.ForeignKey(
        "tuning.Adapter", null=True, blank=True, on_delete=models.PROTECT, related_name="input_of_jobs"
    )
    preference_set = models.ForeignKey(
        "prefs.PreferenceSet", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    # Validated hyperparameters with every default filled in (tuning.services.params).
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The job that started this one (an evaluation after a DPO run).
    source_job = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="followups"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written by the worker every few seconds while it runs the job; a running job whose
    # heartbeat is older than PREFLOOP_JOB_STALE_S has lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # The outbox: a job is queued in the database first and sent to the broker after commit.
    # `dispatched_at` stays null until a send succeeded, so a dispatcher loop can resend what a
    # broker outage swallowed; a message sent twice is harmless (claiming is conditional).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)

    # Runs started so far; a claim increments it, and every later write of that run is
    # conditional on it, so a worker that lost its job cannot write over the next run.
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=2)
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")

    phase = models.CharField(max_length=32, blank=True, default="")
    progress = models.FloatField(default=0.0)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(null=True, blank=True)
    eta_s = models.FloatField(null=True, blank=True)
    log_tail = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    output_adapter = models.ForeignKey(
        "tuning.Adapter", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "heartbeat_at"], name="job_state_heartbeat"),
            models.Index(fields=["state", "dispatched_at"], name="job_state_dispatch"),
            models.Index(fields=["project", "-created_at"], name="job_project_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0, progress__lte=1.0), name="job_progress_0_1"
            )
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.kind}, {self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES


class JobEvent(models.Model):
    """A metrics step, a log line or a change of state, in the order the job produced them."""

    class Kind(models.TextChoices):
        METRICS = "metrics"
        LOG = "log"
        STATE = "state"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    attempt = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"], name="jobevent_job_id")]

    def __str__(self) -> str:
        return f"JobEvent {self.pk} ({self.kind})"
