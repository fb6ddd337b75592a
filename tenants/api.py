"""REST API: staff endpoints for tenants and devices, and the internal endpoint tier pods report state to."""

import base64
import uuid
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api_auth import IsService
from tenants.audit import Actor
from tenants.device_services import device_register, device_revoke
from tenants.errors import Conflict, NotFound
from tenants.keys import tenant_data_key
from tenants.models import Device, SecurityMode, Tenant
from tenants.serializers import (
    DeviceIn,
    DeviceOut,
    ReasonIn,
    StateReportIn,
    TenantIn,
    TenantKeyOut,
    TenantOut,
    TenantStateOut,
)
from tenants.services import tenant_provision, tenant_reactivate, tenant_state_transition, tenant_suspend


def _valid(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TenantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TenantOut

    def get_queryset(self) -> QuerySet[Tenant]:
        qs = Tenant.objects.select_related("state")
        params = self.request.query_params
        for field in ("tier", "status"):
            if params.get(field):
                qs = qs.filter(**{field: params[field]})
        if params.get("email"):
            qs = qs.filter(email__startswith=params["email"].strip().lower())
        return qs

    @extend_schema(request=TenantIn, responses={201: TenantOut})
    def create(self, request: Request) -> Response:
        tenant = tenant_provision(**_valid(TenantIn, request), actor=Actor.from_request(request))
        return Response(TenantOut(self.get_queryset().get(pk=tenant.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonIn, responses=TenantOut)
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Response:
        tenant_suspend(tenant_id=pk, actor=Actor.from_request(request), **_valid(ReasonIn, request))
        return Response(TenantOut(self.get_queryset().get(pk=pk)).data)

    @extend_schema(request=None, responses=TenantOut)
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str) -> Response:
        tenant_reactivate(tenant_id=pk, actor=Actor.from_request(request))
        return Response(TenantOut(self.get_queryset().get(pk=pk)).data)

    @extend_schema(request=DeviceIn, responses={201: DeviceOut})
    @action(detail=True, methods=["post"])
    def devices(self, request: Request, pk: str) -> Response:
        device = device_register(tenant_id=pk, **_valid(DeviceIn, request), actor=Actor.from_request(request))
        return Response(DeviceOut(device).data, status=status.HTTP_201_CREATED)


class DeviceViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeviceOut
    queryset = Device.objects.all()

    @extend_schema(request=None, responses=DeviceOut)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        return Response(DeviceOut(device_revoke(device_id=pk, actor=Actor.from_request(request))).data)


class TenantStateReportView(APIView):
    """Tier pods report hot/warm/cold here with the generation they were given; a stale one gets 409."""

    permission_classes = [IsService]

    @extend_schema(request=StateReportIn, responses=TenantStateOut)
    def post(self, request: Request, tenant_id: str) -> Response:
        data = _valid(StateReportIn, request)
        state = tenant_state_transition(
            tenant_id=tenant_id,
            to_state=data["state"],
            generation=data["generation"],
            pod_id=data["pod_id"],
            actor=Actor.from_request(request),
        )
        return Response(TenantStateOut(state).data)


class TenantKeyView(APIView):
    """A tier pod fetches a loaded tenant's data key here (node_based tenants only; never logged, never cached)."""

    permission_classes = [IsService]

    @extend_schema(responses=TenantKeyOut)
    def get(self, request: Request, tenant_id: str) -> Response:
        tenant = Tenant.objects.filter(pk=tenant_id).only("security_mode").first() if _is_uuid(tenant_id) else None
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        if tenant.security_mode != SecurityMode.NODE_BASED:
            raise Conflict("mobile_only tenants have no key the platform hands out")
        key_id, key = tenant_data_key(tenant_id=tenant.pk, key_id=request.query_params.get("key_id") or None)
        return Response(
            {"key_id": key_id, "key": base64.b64encode(key).decode()}, headers={"Cache-Control": "no-store"}
        )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
