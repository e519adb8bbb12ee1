"""A client revokes its own API token: DELETE /api/v1/auth/token/."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.services.users import token_revoke


class TokenView(APIView):
    @extend_schema(
        summary="Revoke the caller's API token",
        description="Deletes the signed-in user's API tokens; the key used for this request stops working at once.",
        request=None,
        responses={204: OpenApiResponse(description="revoked (also when there was none)")},
    )
    def delete(self, request):
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
