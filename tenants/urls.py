from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import DeviceViewSet, TenantKeyView, TenantStateReportView, TenantViewSet

router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = [
    path("internal/tenants/<str:tenant_id>/state", TenantStateReportView.as_view(), name="internal-tenant-state"),
    path("internal/tenants/<str:tenant_id>/key", TenantKeyView.as_view(), name="internal-tenant-key"),
    *router.urls,
]
