"""The reviewer's API: next comparison, judgment, skip. Thin doors onto the services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.access import get_project_for_user
from prefs.selectors import assignment_view
from prefs.services.assignment import AssignmentError, assignment_skip, comparison_next_for
from prefs.services.judging import (
    MAX_REVISION,
    RATIONALE_MAX_CHARS,
    SCREEN_CHOICES,
    Verdict,
    judgment_record,
)


class _Message(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class _Prompt(serializers.Serializer):
    messages = _Message(many=True)


class _Text(serializers.Serializer):
    text = serializers.CharField()


class NextSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    revision = serializers.IntegerField(
        help_text="Counts up each time this hold is handed out again (its sides stay); send it "
        "with the judgment or skip, and an answer to an older issue is refused with 409."
    )
    prompt = _Prompt()
    left = _Text()
    right = _Text()
    guidelines = serializers.CharField()
    expires_at = serializers.DateTimeField()


class VerdictSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=SCREEN_CHOICES)
    strength = serializers.IntegerField(min_value=1, max_value=3, default=2)
    rationale = serializers.CharField(
        allow_blank=True, required=False, default="", max_length=RATIONALE_MAX_CHARS,
        trim_whitespace=True,
    )
    revision = serializers.IntegerField(
        min_value=1, max_value=MAX_REVISION, allow_null=True, default=None,
        help_text="The `revision` of the next comparison this answers; optional.",
    )


class SkipSerializer(serializers.Serializer):
    revision = serializers.IntegerField(
        min_value=1, max_value=MAX_REVISION, allow_null=True, default=None,
        help_text="The `revision` of the next comparison this skips; optional.",
    )


def _plain_verdict(data) -> Verdict | None:
    """The verdict as clients nearly always send it, read without running VerdictSerializer.

    The serializer stays the definition (and gives the error messages): this accepts only what
    it accepts, with the same result, and answers None for anything else, which then goes
    through the serializer. Saves ~90 microseconds of a judgment request's CPU.
    """
    if type(data) is not dict:
        return None
    choice, strength, rationale = data.get("choice"), data.get("strength", 2), data.get("rationale", "")
    revision = data.get("revision")
    if type(choice) is not str or choice not in SCREEN_CHOICES:
        return None
    if revision is not None and (type(revision) is not int or not 1 <= revision <= MAX_REVISION):
        return None
    if type(strength) is not int or not 1 <= strength <= 3:
        return None
    if type(rationale) is not str or "\x00" in rationale:
        return None
    rationale = rationale.strip()
    if len(rationale) > RATIONALE_MAX_CHARS:
        return None
    try:
        rationale.encode("utf-8")  # lone surrogates, which the serializer refuses
    except UnicodeEncodeError:
        return None
    return Verdict(choice=choice, strength=strength, rationale=rationale, revision=revision)


class JudgmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=SCREEN_CHOICES)
    strength = serializers.IntegerField()
    rationale = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class AssignmentProblem(APIException):
    def __init__(self, exc: AssignmentError):
        self.status_code = exc.status
        super().__init__(detail=str(exc))


def _judgment_body(judgment, screen_choice: str) -> dict:
    return {
        "id": judgment.pk,
        "assignment": judgment.assignment_id,
        "choice": screen_choice,
        "strength": judgment.strength,
        "rationale": judgment.rationale,
        "created_at": judgment.created_at,
    }


def _screen_choice(judgment) -> str:
    if judgment.choice == "A":
        return "left" if judgment.left_is_a else "right"
    if judgment.choice == "B":
        return "right" if judgment.left_is_a else "left"
    return judgment.choice


class NextView(APIView):
    @extend_schema(
        operation_id="project_next",
        responses={200: NextSerializer, 204: OpenApiResponse(description="Nothing left for you.")},
    )
    def get(self, request, project_id: int):
        project = get_project_for_user(request.user, project_id)
        try:
            assignment = comparison_next_for(reviewer=request.user, project=project)
        except AssignmentError as exc:
            raise AssignmentProblem(exc) from exc
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # The view is already in NextSerializer's shape; the JSON renderer writes its
        # datetime as the serializer would.
        return Response(assignment_view(assignment))


class JudgmentView(APIView):
    @extend_schema(
        operation_id="assignment_judgment",
        request=VerdictSerializer,
        responses={201: JudgmentSerializer, 200: JudgmentSerializer},
    )
    def post(self, request, assignment_id: int):
        verdict = _plain_verdict(request.data)
        if verdict is None:
            incoming = VerdictSerializer(data=request.data)
            incoming.is_valid(raise_exception=True)
            verdict = Verdict(**incoming.validated_data)
        try:
            judgment, created = judgment_record(reviewer=request.user, assignment_id=assignment_id, verdict=verdict)
        except AssignmentError as exc:
            raise AssignmentProblem(exc) from exc
        body = _judgment_body(judgment, _screen_choice(judgment))
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SkipView(APIView):
    @extend_schema(operation_id="assignment_skip", request=SkipSerializer, responses={204: None})
    def post(self, request, assignment_id: int):
        # The body is optional: none, or {"revision": n}.
        incoming = SkipSerializer(data=request.data if isinstance(request.data, dict) else {})
        incoming.is_valid(raise_exception=True)
        try:
            assignment_skip(
                reviewer=request.user, assignment_id=assignment_id,
                revision=incoming.validated_data["revision"],
            )
        except AssignmentError as exc:
            raise AssignmentProblem(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
