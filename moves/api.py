"""Tier moves over the API: `POST /api/tenants/{id}/move/` (202 with the move) and `GET /api/moves/{id}/`.

Staff with the admin's permission for the same operation (moving a tenant is changing it, as the admin's "Move to
tier…" action; reading a move needs the move's view permission), or the service credential (billing and other
platform services); every other caller is refused with the JSON error.
"""

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_auth import ServicePrincipal, ServiceTokenAuthentication
from core.api_permissions import HasModelPermission, needs
from core.audit import Actor
from core.errors import NotFound
from moves.models import Move
from moves.serializers import MoveIn, MoveOut
from moves.services import tenant_move
from tenants.models import Tenant


class StaffOrService(HasModelPermission):
    """The service credential, or staff with the action's model permission."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, ServicePrincipal) or super().has_permission(request, view)


class MoveApiView(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication, ServiceTokenAuthentication]
    permission_classes = [StaffOrService]


class TenantMoveView(MoveApiView):
    action_permissions = {"post": needs(Tenant, "change")}

    @extend_schema(
        request=MoveIn,
        responses={
            202: MoveOut,
            409: OpenApiResponse(description="Another move, an archive or a restore runs; or the tenant is deleted."),
        },
    )
    def post(self, request: Request, tenant_id: uuid.UUID) -> Response:
        """Start a move of the tenant to another tier (the same tier answers with a finished no-op move; a repeat
        while the move to that tier runs answers with the same move)."""
        data = MoveIn(data=request.data)
        data.is_valid(raise_exception=True)
        move = tenant_move(tenant_id=tenant_id, actor=Actor.from_request(request), **data.validated_data)
        return Response(MoveOut(move).data, status=status.HTTP_202_ACCEPTED)


class MoveView(MoveApiView):
    action_permissions = {"get": needs(Move, "view")}

    @extend_schema(responses={200: MoveOut})
    def get(self, request: Request, move_id: uuid.UUID) -> Response:
        move = Move.objects.filter(pk=move_id).first()
        if move is None:
            raise NotFound(f"move {move_id} does not exist")
        return Response(MoveOut(move).data)
