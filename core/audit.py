"""Who did something, and the one function that writes an audit row.

The audit table stays the `tenants` app's model (`tenants.AuditLog`, table `audit_log`: its migrations, permissions
and admin live there). This module reaches it through Django's app registry, as Django reaches the user model, so
`core` imports no app of the platform and every app can import `core`.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db.models import Model
from django.http import HttpRequest

AUDIT_LOG_MODEL = "tenants.AuditLog"


@dataclass(frozen=True)
class Actor:
    """The person, service or task behind a change: recorded on every audit row."""

    label: str
    user_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> "Actor":
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False) and getattr(user, "pk", None):
            label, user_id = f"user:{user.get_username()}", user.pk
        else:
            label, user_id = f"service:{getattr(user, 'service_name', 'anonymous')}", None
        return cls(
            label=label,
            user_id=user_id,
            ip_address=request.META.get("REMOTE_ADDR") or None,
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:1000] or None,
        )

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(label=name)


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields whose value changed."""
    return {key: [before.get(key), value] for key, value in after.items() if before.get(key) != value}


def audit_write(
    *,
    actor: Actor,
    action: str,
    tenant: Model | None,
    resource_type: str | None = None,
    resource_id: uuid.UUID | None = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Write one audit row (in the caller's transaction)."""
    audit_log = apps.get_model(AUDIT_LOG_MODEL)
    return audit_log.objects.create(
        tenant=tenant,
        user_id=actor.user_id,
        actor=actor.label,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        metadata=metadata or {},
        ip_address=actor.ip_address,
        user_agent=actor.user_agent,
    )
