"""API shapes for tier moves (strict input, as every API body: unknown fields are refused)."""

from rest_framework import serializers

from core.api_fields import StrictCharField, StrictChoiceField, StrictSerializer
from moves.models import Move
from tenants.models import Tier


class MoveIn(StrictSerializer):
    tier = StrictChoiceField(choices=Tier.choices)
    reason = StrictCharField(max_length=500, required=False, default="", allow_blank=True)


class MoveOut(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Move
        fields = [
            "id",
            "tenant_id",
            "from_tier",
            "to_tier",
            "reason",
            "requested_by",
            "status",
            "step",
            "failed_step",
            "error",
            "old_generation",
            "new_generation",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
        ]
        read_only_fields = fields
