"""The rounds API: list a project's rounds, start the next one, train one now, read and set the policy."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.api.permissions import IsAdmin
from prefs.models import Project
from tuning.models import Pairing, Round
from tuning.selectors import rounds_timeline
from tuning.services.rounds import (
    MAX_ROUND_PROMPTS,
    MAX_TARGET_JUDGMENTS,
    RoundError,
    round_policy_get,
    round_policy_update,
    round_start,
    round_train,
)


class RoundProblem(APIException):
    def __init__(self, exc: RoundError):
        self.status_code = exc.status
        super().__init__(detail=str(exc))


def round_body(row: dict) -> dict:
    round_ = row["round"]
    win = row["win"]
    return {
        "id": round_.pk,
        "number": round_.number,
        "state": row["state"],
        "parent_adapter": round_.parent_adapter_id,
        "samples": round_.samples,
        "pairing": round_.pairing,
        "target_judgments": round_.target_judgments,
        "generate_job": round_.generate_job_id,
        "comparisons": row["comparisons"],
        "judgments": row["judgments"],
        "preference_set": round_.preference_set_id,
        "pairs": row["pairs"],
        "train_job": round_.train_job_id,
        "steps": row["steps"],
        "warning": row["warning"],
        "evaluation": row["evaluation"].pk if row["evaluation"] else None,
        "adapter": row["adapter"].pk if row["adapter"] else None,
        "win_rate": {k: win[k] for k in ("rate", "low", "high", "n", "wins", "losses", "ties")} if win else None,
        "drift_kl": row["drift"],
        "promoted": row["promoted"],
    }


def _row_for(round_: Round) -> dict:
    return next(row for row in rounds_timeline(round_.project) if row["round"].pk == round_.pk)


class PolicySerializer(serializers.Serializer):
    samples = serializers.IntegerField(min_value=2, max_value=4)
    pairing = serializers.ChoiceField(choices=Pairing.values)
    target_judgments = serializers.IntegerField(min_value=1, max_value=MAX_TARGET_JUDGMENTS)
    max_prompts = serializers.IntegerField(min_value=1, max_value=MAX_ROUND_PROMPTS)


def _round_fields() -> dict:
    return {
        "id": serializers.IntegerField(),
        "number": serializers.IntegerField(),
        # Plain text in the schema: a choice set named "state" would collide with the job's.
        "state": serializers.CharField(help_text="sampling, collecting, training, evaluating, judging, done or failed"),
        "train_job": serializers.IntegerField(allow_null=True),
        "evaluation": serializers.IntegerField(allow_null=True),
        "win_rate": serializers.DictField(allow_null=True),
    }


RoundSchema = inline_serializer("Round", _round_fields())
RoundListSchema = inline_serializer("RoundList", _round_fields(), many=True)


class ProjectRoundsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="rounds_list", responses={200: RoundListSchema})
    def get(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        return Response([round_body(row) for row in rounds_timeline(project)])

    @extend_schema(operation_id="rounds_start", request=None, responses={201: RoundSchema})
    def post(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        try:
            round_ = round_start(project=project, by=request.user)
        except RoundError as exc:
            raise RoundProblem(exc) from exc
        return Response(round_body(_row_for(round_)), status=201)


class RoundTrainView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="rounds_train", request=None, responses={201: RoundSchema})
    def post(self, request, round_id: int):
        round_ = get_object_or_404(Round, pk=round_id)
        try:
            round_train(round_=round_, by=request.user, force=True)
        except RoundError as exc:
            raise RoundProblem(exc) from exc
        round_.refresh_from_db()
        return Response(round_body(_row_for(round_)), status=201)


class RoundPolicyView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="rounds_policy", responses={200: PolicySerializer})
    def get(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        return Response(PolicySerializer(round_policy_get(project)).data)

    @extend_schema(operation_id="rounds_policy_update", request=PolicySerializer, responses={200: PolicySerializer})
    def put(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        serializer = PolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            policy = round_policy_update(project=project, **serializer.validated_data)
        except RoundError as exc:
            raise RoundProblem(exc) from exc
        return Response(PolicySerializer(policy).data)
