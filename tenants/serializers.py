"""API shapes. Input serializers check only the shape; the services own every business rule."""

from rest_framework import serializers

from tenants.models import Device, Tenant


class TenantStateOut(serializers.Serializer):
    state = serializers.CharField()
    generation = serializers.IntegerField()
    pod_id = serializers.CharField(allow_null=True)
    last_access_at = serializers.DateTimeField()


class TenantOut(serializers.ModelSerializer):
    state = TenantStateOut(read_only=True)

    class Meta:
        model = Tenant
        fields = ["id", "email", "tier", "status", "security_mode", "created_at", "updated_at", "state"]


class TenantIn(serializers.Serializer):
    email = serializers.CharField(max_length=255)
    tier = serializers.CharField(max_length=10)
    security_mode = serializers.CharField(max_length=20, required=False, default="node_based")


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class DeviceOut(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = [
            "id",
            "tenant_id",
            "device_name",
            "platform",
            "public_key_signing",
            "public_key_encryption",
            "last_seen_at",
            "revoked_at",
            "created_at",
        ]


class DeviceIn(serializers.Serializer):
    device_name = serializers.CharField(max_length=255)
    platform = serializers.CharField(max_length=50)
    public_key_signing = serializers.CharField()
    public_key_encryption = serializers.CharField()


class StateReportIn(serializers.Serializer):
    state = serializers.CharField(max_length=10)
    generation = serializers.IntegerField(min_value=1)
    pod_id = serializers.CharField(max_length=255, required=False, allow_null=True, default=None)


class TenantKeyOut(serializers.Serializer):
    key_id = serializers.CharField()
    key = serializers.CharField(help_text="base64 of the 32-byte data key")
