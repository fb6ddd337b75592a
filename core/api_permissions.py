"""The API's permission model: the admin's, per action.

A staff endpoint needs an active `is_staff` user (token or admin session) **and** the Django model permission the
admin would ask for the same operation: `view` to read (the admin also lets `change` read), `add` to create,
`change` to change state. Each view lists its actions in `action_permissions`; an action missing from the map is
refused (fail closed). Internal endpoints accept only the service credential (`IsService`, core.api_auth).
"""

from dataclasses import dataclass
from typing import Any, Literal

from django.db.models import Model
from rest_framework.request import Request

from core.api_auth import IsStaffUser

Kind = Literal["view", "add", "change", "delete"]


@dataclass(frozen=True)
class ModelPermission:
    app_label: str
    model_name: str
    kind: Kind

    @property
    def codenames(self) -> tuple[str, ...]:
        """The permissions that grant it, as `app.codename`; `view` is also granted by `change`, as in the admin."""
        kinds: tuple[str, ...] = ("view", "change") if self.kind == "view" else (self.kind,)
        return tuple(f"{self.app_label}.{kind}_{self.model_name}" for kind in kinds)

    def granted_to(self, user: Any) -> bool:
        return any(user.has_perm(codename) for codename in self.codenames)

    def __str__(self) -> str:
        return " or ".join(self.codenames)


def needs(model: type[Model], kind: Kind) -> ModelPermission:
    return ModelPermission(model._meta.app_label, model._meta.model_name or "", kind)


def view_action(view: Any, request: Request) -> str:
    """The key into `action_permissions`: a viewset's action, or an APIView's lower-case method."""
    return getattr(view, "action", None) or (request.method or "").lower()


class HasModelPermission(IsStaffUser):
    """Staff plus the model permission `view.action_permissions[action]` names (see the module docstring)."""

    message = "your account lacks the permission this operation needs"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        required = getattr(view, "action_permissions", {}).get(view_action(view, request))
        if required is None:
            return False
        if not required.granted_to(request.user):
            self.message = f"this operation needs the permission {required}"
            return False
        return True
