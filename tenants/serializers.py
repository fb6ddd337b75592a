"""API shapes. Input serializers check type and shape (strictly, see api_fields); the services own every rule.

Choice fields are enums in the schema; bounds match the database columns, so anything past them is a 400.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api_fields import StrictCharField, StrictChoiceField, StrictIntegerField, StrictSerializer
from tenants.models import Device, DevicePlatform, SecurityMode, State, Tenant, TenantStatus, Tier

BIGINT_MAX = 2**63 - 1


class TenantStateOut(serializers.Serializer):
    state = serializers.ChoiceField(choices=State.choices)
    generation = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
    pod_id = serializers.CharField(allow_null=True)
    last_access_at = serializers.DateTimeField()


class TenantOut(serializers.ModelSerializer):
    email = serializers.EmailField(help_text="Normalised: NFKC, lower case, IDNA (ASCII) domain.")
    state = TenantStateOut(read_only=True, allow_null=True)

    class Meta:
        model = Tenant
        fields = ["id", "email", "tier", "status", "security_mode", "created_at", "updated_at", "state"]


@extend_schema_field({"type": "string", "format": "email", "maxLength": 255})
class EmailInField(StrictCharField):
    """An email in any spelling; `core.emails.normalize_email` (in the service) decides whether it is one."""


class TenantIn(StrictSerializer):
    email = EmailInField(
        max_length=255,
        help_text="Normalised (NFKC, lower case, IDNA domain) before the uniqueness check, so `u@éxample.com`, its "
        "NFD, fullwidth and `xn--` spellings are one tenant (409 on a second).",
    )
    tier = StrictChoiceField(choices=Tier.choices)
    security_mode = StrictChoiceField(choices=SecurityMode.choices, required=False, default=SecurityMode.NODE_BASED)


class TenantListQuery(serializers.Serializer):
    """The list's filters (query parameters)."""

    tier = StrictChoiceField(choices=Tier.choices, required=False)
    status = StrictChoiceField(choices=TenantStatus.choices, required=False)
    email = StrictCharField(
        max_length=255, required=False, help_text="Prefix of the (normalised) email, any letter case."
    )


class ReasonIn(StrictSerializer):
    reason = StrictCharField(max_length=500, required=False, default="", allow_blank=True)


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


KEY_HELP = (
    "32 raw bytes in base64 or base64url (padded or not), or a PEM SubjectPublicKeyInfo block. It must be a "
    "canonical encoding of a point of the prime-order subgroup, not of small order (docs/decisions.md)."
)


class DeviceIn(StrictSerializer):
    device_name = StrictCharField(max_length=255)
    platform = StrictChoiceField(choices=DevicePlatform.choices)
    public_key_signing = StrictCharField(max_length=1000, help_text="Ed25519. " + KEY_HELP)
    public_key_encryption = StrictCharField(max_length=1000, help_text="X25519. " + KEY_HELP)


class StateReportIn(StrictSerializer):
    state = StrictChoiceField(choices=State.choices)
    generation = StrictIntegerField(min_value=1, max_value=BIGINT_MAX)
    pod_id = StrictCharField(
        max_length=255, required=False, allow_null=True, allow_blank=True, default=None, help_text="Empty: no pod."
    )


class TenantKeyQuery(serializers.Serializer):
    """The key endpoint's query: an optional key id (a retired key, to open an old object)."""

    key_id = StrictCharField(max_length=64, required=False)


class TenantKeyOut(serializers.Serializer):
    key_id = serializers.CharField()
    key = serializers.CharField(help_text="base64 of the 32-byte data key")
