"""Shapes of the tuning API: they validate what comes in and describe what goes out."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tuning.models import Adapter, Evaluation, Job, JobEvent
from tuning.selectors import job_evaluation_id


class LaunchSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Job.Kind.values)
    project = serializers.IntegerField(min_value=1)
    preference_set = serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None)
    adapter = serializers.IntegerField(
        min_value=1, allow_null=True, required=False, default=None,
        help_text="Adapter to start from (dpo, rejection_sampling, generate) or to evaluate "
        "(evaluate); null: the project's bare base model.",
    )
    params = serializers.DictField(
        required=False, default=dict,
        help_text="Hyperparameters of the kind; omitted ones take their defaults (see the launch form).",
    )


class JobSerializer(serializers.ModelSerializer):
    adapter = serializers.IntegerField(source="input_adapter_id", allow_null=True)
    evaluation = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "state", "project", "base_model", "adapter", "preference_set", "params",
            "progress", "phase", "step", "total_steps", "eta_s", "heartbeat_at", "created_at",
            "started_at", "finished_at", "attempts", "max_attempts", "cancel_requested", "error",
            "log_tail", "result", "output_adapter", "evaluation", "source_job", "url",
        ]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_evaluation(self, job: Job) -> int | None:
        return job_evaluation_id(job)

    # A path on this site (not an absolute URI: the API does not know the public host name).
    @extend_schema_field(serializers.CharField())
    def get_url(self, job: Job) -> str:
        return reverse("tuning-job", args=[job.pk])


class JobEventSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(help_text="metrics, log or state.")

    class Meta:
        model = JobEvent
        fields = ["id", "attempt", "kind", "data", "created_at"]


class JobEventsSerializer(serializers.Serializer):
    events = JobEventSerializer(many=True)
    last = serializers.IntegerField(allow_null=True, help_text="Pass as ?after= to get only newer events.")
    state = serializers.CharField()


class AdapterSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(help_text="policy (answers prompts) or reward (scores answers).")
    download = serializers.SerializerMethodField()
    active_in = serializers.SerializerMethodField()

    class Meta:
        model = Adapter
        fields = [
            "id", "name", "kind", "base_model", "project", "parent", "job", "preference_set",
            "metadata", "size_bytes", "created_at", "download", "active_in",
        ]

    @extend_schema_field(serializers.CharField(help_text="Path of the zip download on this site."))
    def get_download(self, adapter: Adapter) -> str:
        return reverse("tuning-adapter-download", args=[adapter.pk])

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_active_in(self, adapter: Adapter) -> list[int]:
        """Projects whose active adapter this is (the view passes the map in the context)."""
        return self.context.get("active", {}).get(adapter.pk, [])


class _AdapterRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class AdapterDetailSerializer(AdapterSerializer):
    ancestors = _AdapterRef(many=True, read_only=True, help_text="Parent first, then its parent ...")
    children = _AdapterRef(many=True, read_only=True, source="child_list")

    class Meta(AdapterSerializer.Meta):
        fields = [*AdapterSerializer.Meta.fields, "ancestors", "children"]


class PromoteSerializer(serializers.Serializer):
    project = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="The project whose active adapter changes (default: the adapter's project).",
    )


class PromotionSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    active_adapter = serializers.IntegerField(allow_null=True)
    previous = serializers.IntegerField(allow_null=True)
    is_rollback = serializers.BooleanField()


class _Interval(serializers.Serializer):
    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField()
    high = serializers.FloatField()


class _WinRate(serializers.Serializer):
    arm = serializers.CharField(help_text="before, base or system_prompt: who 'after' faced.")
    label = serializers.CharField()
    pairs = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="Share of verdicts for after; ties (and both-bad) count half.")
    low = serializers.FloatField(help_text="95% Wilson interval, low end.")
    high = serializers.FloatField()
    n = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField(help_text="Ties and both-bad verdicts, plus the ties identical answers count for.")
    identical = serializers.IntegerField(help_text="Pairs whose two answers were identical: not sent, counted as ties.")
    lc = _Interval(help_text="Length-controlled win rate (AlpacaEval 2's regression on the length difference), 95% bootstrap interval.")


class _Opponent(serializers.Serializer):
    arm = serializers.CharField()
    text = serializers.CharField()
    cut_off = serializers.IntegerField(allow_null=True, help_text="The token limit that cut this answer off; null when it ended by itself.")
    comparison = serializers.IntegerField()
    verdicts = serializers.DictField(child=serializers.IntegerField())


class _EvalRow(serializers.Serializer):
    prompt = serializers.IntegerField()
    messages = serializers.ListField(child=serializers.DictField())
    after = serializers.CharField()
    after_cut_off = serializers.IntegerField(allow_null=True, help_text="The token limit that cut after's answer off; null when it ended by itself.")
    opponents = _Opponent(many=True)


class EvaluationSerializer(serializers.ModelSerializer):
    state = serializers.CharField(source="job.state")
    win_rate = _WinRate(many=True)
    pairs = _EvalRow(many=True, source="pair_rows")

    class Meta:
        model = Evaluation
        fields = [
            "id", "project", "job", "source_job", "state", "base_model", "before_adapter",
            "after_adapter", "metrics", "win_rate", "pairs", "created_at",
        ]
