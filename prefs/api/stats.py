"""Admin API for quality and rankings: `stats` and `leaderboard` of a project.

Thin doors: parse the query, call the read in `prefs.services.stats`, return its numbers. The
serializers below describe the answers for the OpenAPI schema; the data is passed through as
computed.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.access import get_project_for_admin
from prefs.api.permissions import IsAdmin
from prefs.models import PreferenceSet
from prefs.services.stats import preference_set_stats, project_leaderboard, project_stats
from prefs.stats.flags import FlagThresholds

# Bootstrap resamples an admin may ask for: the floor for reported intervals is 1,000;
# 20,000 keeps a request under a few seconds even on a large project.
MIN_RESAMPLES = 1000
MAX_RESAMPLES = 20000


class _Share(serializers.Serializer):
    n = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    low = serializers.FloatField()
    high = serializers.FloatField()
    p_value = serializers.FloatField()


class _PositionBias(_Share):
    left = serializers.IntegerField()
    right = serializers.IntegerField()


class _LengthBias(_Share):
    longer = serializers.IntegerField()
    shorter = serializers.IntegerField()


class _KappaPair(serializers.Serializer):
    rater_a = serializers.IntegerField()
    rater_b = serializers.IntegerField()
    username_a = serializers.CharField()
    username_b = serializers.CharField()
    n = serializers.IntegerField()
    kappa = serializers.FloatField(allow_null=True)
    observed = serializers.FloatField()


class _Agreement(serializers.Serializer):
    fleiss_kappa = serializers.FloatField(allow_null=True)
    krippendorff_alpha = serializers.FloatField(allow_null=True)
    pairs = _KappaPair(many=True)
    min_overlap = serializers.IntegerField()
    units = serializers.IntegerField(help_text="Comparisons with two or more human judgments.")


class _Gold(serializers.Serializer):
    n = serializers.IntegerField()
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class _MajorityAgreement(serializers.Serializer):
    agreement = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()


class _Flag(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=["too_fast", "low_gold_accuracy", "position_bias", "low_agreement"]
    )
    message = serializers.CharField()


class _ReviewerRow(serializers.Serializer):
    reviewer_id = serializers.IntegerField()
    username = serializers.CharField()
    judgments = serializers.IntegerField()
    timed = serializers.IntegerField()
    median_ms = serializers.FloatField(allow_null=True)
    gold = _Gold(allow_null=True)
    position = _PositionBias()
    length = _LengthBias()
    agreement = _MajorityAgreement()
    flags = _Flag(many=True)


class _Day(serializers.Serializer):
    date = serializers.DateField()
    judgments = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    preference_set = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)
    judgments = serializers.IntegerField(help_text="Human judgments.")
    imported_labels = serializers.IntegerField()
    comparisons_judged = serializers.IntegerField()
    reviewers_active = serializers.IntegerField()
    choices = serializers.DictField(child=serializers.IntegerField())
    agreement = _Agreement()
    position_bias = _PositionBias()
    length_bias = _LengthBias()
    reviewers = _ReviewerRow(many=True)
    throughput = _Day(many=True)
    thresholds = serializers.DictField()


class _SourceRow(serializers.Serializer):
    source = serializers.CharField(help_text="Adapter name, or the candidates' source label.")
    score = serializers.FloatField(help_text="Bradley–Terry log-strength, mean zero.")
    low = serializers.FloatField()
    high = serializers.FloatField()
    rating = serializers.FloatField(help_text="The score on the Elo scale around 1000.")
    rating_low = serializers.FloatField()
    rating_high = serializers.FloatField()
    elo = serializers.FloatField(help_text="Online Elo in judgment order (secondary view).")
    games = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()


class _Matrix(serializers.Serializer):
    sources = serializers.ListField(child=serializers.CharField())
    rates = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="Row source's share of wins against the column source, ties as half.",
    )
    games = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))


class LeaderboardSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    include_imported = serializers.BooleanField()
    judgments = serializers.IntegerField()
    resamples = serializers.IntegerField()
    seed = serializers.IntegerField()
    confidence = serializers.FloatField()
    sources = _SourceRow(many=True)
    matrix = _Matrix()


class LeaderboardQuery(serializers.Serializer):
    resamples = serializers.IntegerField(
        min_value=MIN_RESAMPLES, max_value=MAX_RESAMPLES, default=MIN_RESAMPLES
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)
    imported = serializers.BooleanField(
        default=True, help_text="Count labels that came with imported data."
    )


class StatsQuery(serializers.Serializer):
    """Optional: one preference-set version to describe instead of the whole project, and
    overrides of the reviewer-flag thresholds, by their field names."""

    preference_set = serializers.IntegerField(
        required=False,
        help_text="Id of a frozen version of this project: statistics of the judgments behind "
        "its pairs.",
    )

    min_median_ms = serializers.IntegerField(min_value=0, required=False)
    min_timed = serializers.IntegerField(min_value=0, required=False)
    min_gold_accuracy = serializers.FloatField(min_value=0, max_value=1, required=False)
    min_gold = serializers.IntegerField(min_value=0, required=False)
    position_share = serializers.FloatField(min_value=0, max_value=1, required=False)
    position_p_value = serializers.FloatField(min_value=0, max_value=1, required=False)
    min_decisive = serializers.IntegerField(min_value=0, required=False)
    min_majority_agreement = serializers.FloatField(min_value=0, max_value=1, required=False)
    min_agreement_units = serializers.IntegerField(min_value=0, required=False)


class StatsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="project_stats", parameters=[StatsQuery], responses=StatsSerializer)
    def get(self, request, project_id: int):
        project = get_project_for_admin(request.user, project_id)
        query = StatsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = dict(query.validated_data)
        set_id = options.pop("preference_set", None)
        thresholds = FlagThresholds(**options)
        if set_id is None:
            return Response(project_stats(project=project, thresholds=thresholds))
        preference_set = PreferenceSet.objects.filter(project=project, pk=set_id).first()
        if preference_set is None:
            raise serializers.ValidationError(
                {"preference_set": [f"no preference set {set_id} in this project"]}
            )
        return Response(preference_set_stats(preference_set=preference_set, thresholds=thresholds))


class LeaderboardView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="project_leaderboard",
        parameters=[LeaderboardQuery],
        responses=LeaderboardSerializer,
    )
    def get(self, request, project_id: int):
        project = get_project_for_admin(request.user, project_id)
        query = LeaderboardQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        board = project_leaderboard(
            project=project,
            resamples=query.validated_data["resamples"],
            seed=query.validated_data["seed"],
            include_imported=query.validated_data["imported"],
        )
        return Response(board)
