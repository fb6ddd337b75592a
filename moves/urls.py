from django.urls import path

from moves.api import MoveView, TenantMoveView

urlpatterns = [
    path("tenants/<uuid:tenant_id>/move/", TenantMoveView.as_view(), name="tenant-move"),
    path("moves/<uuid:move_id>/", MoveView.as_view(), name="move-detail"),
]
