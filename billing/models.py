"""Subscriptions and Stripe billing events (spike schema plus a processing status per event)."""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from tenants.models import Tenant, Tier


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active"
    CANCELED = "canceled"
    PAST_DUE = "past_due"
    TRIALING = "trialing"


class ProcessingStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"


class Subscription(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="subscriptions", db_index=False)
    tier = models.CharField(max_length=10, choices=Tier.choices)
    status = models.CharField(max_length=20, choices=SubscriptionStatus.choices)
    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), auto_now=True)

    class Meta:
        db_table = "subscriptions"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=SubscriptionStatus.values), name="subscriptions_valid_status"
            ),
            models.CheckConstraint(condition=Q(tier__in=Tier.values), name="subscriptions_valid_tier"),
            models.CheckConstraint(
                condition=Q(current_period_end__gte=models.F("current_period_start"))
                | Q(current_period_start__isnull=True)
                | Q(current_period_end__isnull=True),
                name="subscriptions_period_ordered",
            ),
            # Doubles as the spike's idx_subscriptions_stripe: one row per Stripe subscription.
            models.UniqueConstraint(
                fields=["stripe_subscription_id"],
                condition=Q(stripe_subscription_id__isnull=False),
                name="idx_subscriptions_stripe",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant"], name="idx_subscriptions_tenant"),
            models.Index(fields=["status"], name="idx_subscriptions_status"),
            models.Index(fields=["created_at", "id"], name="idx_subscriptions_created"),  # newest-first lists
        ]

    def __str__(self) -> str:
        return f"{self.tier} {self.status}"


class BillingEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Nullable (the spike has NOT NULL): an event is stored before its handler resolves the tenant.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="billing_events", db_index=False
    )
    event_type = models.CharField(max_length=100)
    stripe_event_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    amount_cents = models.IntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD", db_default="USD")
    metadata = models.JSONField(null=True, blank=True)
    processing_status = models.CharField(
        max_length=20, choices=ProcessingStatus.choices, default=ProcessingStatus.RECEIVED
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "billing_events"
        constraints = [
            models.CheckConstraint(
                condition=Q(processing_status__in=ProcessingStatus.values), name="billing_events_valid_status"
            ),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="billing_events_currency_iso"),
        ]
        indexes = [
            models.Index(fields=["tenant"], name="idx_billing_events_tenant"),
            models.Index(fields=["event_type"], name="idx_billing_events_type"),
            models.Index(fields=["processing_status", "created_at"], name="idx_billing_events_processing"),
            models.Index(fields=["created_at", "id"], name="idx_billing_events_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.processing_status})"
