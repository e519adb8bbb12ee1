"""The evaluation API: before/after pairs, automatic metrics, the human win rate with its interval."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.api.permissions import IsAdmin
from tuning.api.serializers import EvaluationSerializer
from tuning.models import Evaluation
from tuning.services.evaluations import evaluation_rows, evaluation_summary


class EvaluationDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="evaluations_retrieve", responses={200: EvaluationSerializer})
    def get(self, request, evaluation_id: int):
        evaluation = get_object_or_404(Evaluation.objects.select_related("job"), pk=evaluation_id)
        evaluation.win_rate = evaluation_summary(evaluation)["arms"]
        evaluation.pair_rows = [
            {
                "prompt": row["prompt"].pk,
                "messages": row["prompt"].messages,
                "after": row["after"],
                "after_cut_off": row["after_cut_off"],
                "opponents": row["opponents"],
            }
            for row in evaluation_rows(evaluation)
        ]
        return Response(EvaluationSerializer(evaluation).data)
