from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import DeviceViewSet, TenantKeyView, TenantStateReportView, TenantViewSet

# Path converters, not regexes: ids are UUIDs, so `/api/tenants/0.5/` reaches the JSON catch-all (404).
router = SimpleRouter(use_regex_path=False)
router.register("tenants", TenantViewSet, basename="tenant")
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = [
    path("internal/tenants/<uuid:tenant_id>/state", TenantStateReportView.as_view(), name="internal-tenant-state"),
    path("internal/tenants/<uuid:tenant_id>/key", TenantKeyView.as_view(), name="internal-tenant-key"),
    *router.urls,
]
