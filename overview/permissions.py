"""Who may see the overview: active staff who may view tenants (the same rule for the page and the WebSocket)."""

from typing import Any

PERMISSION = "tenants.view_tenant"


def may_view(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.is_staff and user.has_perm(PERMISSION))
