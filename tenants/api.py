"""REST API: staff endpoints for tenants and devices, and the internal endpoints tier pods call.

Every view here follows one pattern (docs/decisions.md, "API"): staff views take the default authentication
(token, admin session) and `HasModelPermission` with an `action_permissions` entry per action; internal views take
`SERVICE_AUTHENTICATION` and `IsService`; ids in paths are UUIDs (`<uuid:...>` / `lookup_value_converter`); input
goes through a strict serializer; lists use the default keyset pagination; errors are PlatformErrors.
"""

import base64
import uuid
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_auth import SERVICE_AUTHENTICATION, IsService
from core.api_permissions import HasModelPermission, needs
from core.audit import Actor
from core.emails import normalize_email_prefix
from core.errors import Conflict, NotFound
from tenants.device_services import device_register, device_revoke
from tenants.keys import tenant_data_key
from tenants.models import Device, SecurityMode, Tenant
from tenants.serializers import (
    DeviceIn,
    DeviceOut,
    ReasonIn,
    StateReportIn,
    TenantIn,
    TenantKeyOut,
    TenantKeyQuery,
    TenantListQuery,
    TenantOut,
    TenantStateOut,
)
from tenants.services import tenant_provision, tenant_reactivate, tenant_state_transition, tenant_suspend


def _valid(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _conflict(description: str) -> OpenApiResponse:
    return OpenApiResponse(description=description)  # the body schema (Error) is added by core.api_schema


class TenantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TenantOut
    lookup_value_converter = "uuid"
    permission_classes = [HasModelPermission]
    action_permissions = {
        "list": needs(Tenant, "view"),
        "retrieve": needs(Tenant, "view"),
        "create": needs(Tenant, "add"),
        "suspend": needs(Tenant, "change"),
        "reactivate": needs(Tenant, "change"),
        "devices": needs(Device, "add"),
    }

    def get_queryset(self) -> QuerySet[Tenant]:
        qs = Tenant.objects.select_related("state")
        if self.action != "list":
            return qs
        # A plain dict: DRF reads an empty non-required form value as absent, the schema calls it invalid.
        filters = _valid(TenantListQuery, dict(self.request.query_params.items()))
        for field in ("tier", "status"):
            if field in filters:
                qs = qs.filter(**{field: filters[field]})
        if filters.get("email"):
            qs = qs.filter(email__startswith=normalize_email_prefix(filters["email"]))
        return qs

    @extend_schema(parameters=[TenantListQuery])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=TenantIn, responses={201: TenantOut, 409: _conflict("A tenant with this email exists.")})
    def create(self, request: Request) -> Response:
        tenant = tenant_provision(**_valid(TenantIn, request.data), actor=Actor.from_request(request))
        return Response(TenantOut(self.get_queryset().get(pk=tenant.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonIn, responses={200: TenantOut, 409: _conflict("The tenant is deleted.")})
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: uuid.UUID) -> Response:
        tenant_suspend(tenant_id=pk, actor=Actor.from_request(request), **_valid(ReasonIn, request.data))
        return Response(TenantOut(self.get_queryset().get(pk=pk)).data)

    @extend_schema(request=None, responses={200: TenantOut, 409: _conflict("The tenant is deleted.")})
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: uuid.UUID) -> Response:
        tenant_reactivate(tenant_id=pk, actor=Actor.from_request(request))
        return Response(TenantOut(self.get_queryset().get(pk=pk)).data)

    @extend_schema(
        request=DeviceIn,
        responses={201: DeviceOut, 409: _conflict("The tenant is not active, or the signing key is registered.")},
    )
    @action(detail=True, methods=["post"])
    def devices(self, request: Request, pk: uuid.UUID) -> Response:
        device = device_register(tenant_id=pk, **_valid(DeviceIn, request.data), actor=Actor.from_request(request))
        return Response(DeviceOut(device).data, status=status.HTTP_201_CREATED)


class DeviceViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeviceOut
    queryset = Device.objects.all()
    lookup_value_converter = "uuid"
    permission_classes = [HasModelPermission]
    action_permissions = {"retrieve": needs(Device, "view"), "revoke": needs(Device, "change")}

    @extend_schema(request=None, responses=DeviceOut)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: uuid.UUID) -> Response:
        return Response(DeviceOut(device_revoke(device_id=pk, actor=Actor.from_request(request))).data)


class InternalView(APIView):
    """Base of the internal endpoints: the service credential is the only scheme they accept."""

    authentication_classes = SERVICE_AUTHENTICATION
    permission_classes = [IsService]


class TenantStateReportView(InternalView):
    """Tier pods report hot/warm/cold here with the generation they were given; a stale one gets 409."""

    @extend_schema(
        request=StateReportIn,
        responses={200: TenantStateOut, 409: _conflict("Stale generation or a forbidden transition.")},
    )
    def post(self, request: Request, tenant_id: uuid.UUID) -> Response:
        data = _valid(StateReportIn, request.data)
        state = tenant_state_transition(
            tenant_id=tenant_id,
            to_state=data["state"],
            generation=data["generation"],
            pod_id=data["pod_id"],
            actor=Actor.from_request(request),
        )
        return Response(TenantStateOut(state).data)


class TenantKeyView(InternalView):
    """A tier pod fetches a loaded tenant's data key here (node_based tenants only; never logged, never cached)."""

    @extend_schema(
        parameters=[TenantKeyQuery],
        responses={200: TenantKeyOut, 409: _conflict("A mobile_only tenant, or a key the master key cannot open.")},
    )
    def get(self, request: Request, tenant_id: uuid.UUID) -> Response:
        key_id = _valid(TenantKeyQuery, dict(request.query_params.items())).get("key_id")
        tenant = Tenant.objects.filter(pk=tenant_id).only("security_mode").first()
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        if tenant.security_mode != SecurityMode.NODE_BASED:
            raise Conflict("mobile_only tenants have no key the platform hands out")
        key_id, key = tenant_data_key(tenant_id=tenant.pk, key_id=key_id)
        return Response(
            {"key_id": key_id, "key": base64.b64encode(key).decode()}, headers={"Cache-Control": "no-store"}
        )
