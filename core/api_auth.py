"""API authentication: staff users by DRF token or session; tier pods and the gateway by the service credential."""

import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


@dataclass(frozen=True)
class ServicePrincipal:
    """The caller behind the shared service credential; not a Django user, so it passes no staff check."""

    service_name: str = "tier-node"
    is_authenticated: bool = True
    is_staff: bool = False
    pk: None = None

    def get_username(self) -> str:
        return f"service:{self.service_name}"


class ServiceTokenAuthentication(BaseAuthentication):
    """`Authorization: Service <token>` with the platform's shared service credential."""

    keyword = b"service"

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, str] | None:
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != self.keyword:
            return None
        if not hmac.compare_digest(parts[1], settings.PLATFORM_SERVICE_TOKEN.encode()):
            raise AuthenticationFailed("invalid service credential")
        name = request.META.get("HTTP_X_PERCOLATE_SERVICE", "tier-node")[:64]
        return ServicePrincipal(service_name=name), "service"

    def authenticate_header(self, request: Request) -> str:
        return "Service"


SERVICE_AUTHENTICATION = [ServiceTokenAuthentication]


class IsStaffUser(BasePermission):
    """Staff endpoints: an authenticated Django user with is_staff (services and ordinary users are refused)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and not isinstance(user, ServicePrincipal) and user.is_authenticated and user.is_staff)


class IsService(BasePermission):
    """Internal endpoints: only the service credential."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, ServicePrincipal)


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    """Documents the service credential in the OpenAPI schema."""

    target_class = ServiceTokenAuthentication
    name = "ServiceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Service <token>"}
