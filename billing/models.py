"""Subscriptions and Stripe billing events (spike schema plus a processing status per event)."""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from tenants.models import Tenant, Tier


class SubscriptionStatus(models.TextChoices):
    """Stripe's subscription statuses, all of them: the row mirrors Stripe's object."""

    ACTIVE = "active"
    CANCELED = "canceled"
    PAST_DUE = "past_due"
    TRIALING = "trialing"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    UNPAID = "unpaid"
    PAUSED = "paused"


class ProcessingStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    IGNORED = "ignored"  # a type no handler acts on: stored, never retried


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
    stripe_price_id = models.CharField(max_length=255, null=True, blank=True)
    # Order guards: the `created` time of the newest Stripe event applied to the subscription fields and to the
    # payment (dunning) fields; an older event changes nothing.
    stripe_state_at = models.DateTimeField(null=True, blank=True)
    invoice_state_at = models.DateTimeField(null=True, blank=True)
    payment_failed_at = models.DateTimeField(null=True, blank=True)  # first unpaid failure; None when in good standing
    dunned_at = models.DateTimeField(null=True, blank=True)  # grace ran out: downgraded or suspended
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
            models.Index(
                fields=["stripe_customer_id"],
                condition=Q(stripe_customer_id__isnull=False),
                name="idx_subscriptions_customer",
            ),
            models.Index(
                fields=["payment_failed_at"],
                condition=Q(payment_failed_at__isnull=False, dunned_at__isnull=True),
                name="idx_subscriptions_dunning",
            ),
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
    failures = models.PositiveIntegerField(default=0, db_default=0)  # failed attempts, ever: a counter for alerts
    last_error = models.TextField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    payload = models.JSONField(null=True, blank=True)  # the verified event as Stripe sent it
    stripe_created = models.DateTimeField(null=True, blank=True)  # the event's `created`
    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # when the sweep may run it again

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
            models.Index(fields=["stripe_created"], name="idx_billing_events_stripe_time"),
            # The sweep and "events waiting for this customer's checkout": only unfinished rows are indexed.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(processing_status__in=["received", "failed"]),
                name="idx_billing_events_pending",
            ),
            models.Index(
                fields=["stripe_customer_id"],
                condition=Q(processing_status__in=["received", "failed"]),
                name="idx_billing_events_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.processing_status})"


class StripeReconciliation(models.Model):
    """One `stripe_reconcile` run: the window of Stripe's event list it walked; a finished run's `until` is where the
    next run starts, so a gap longer than Stripe's retry window is always inside some run's window."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    since = models.DateTimeField()
    until = models.DateTimeField()
    listed = models.PositiveIntegerField(default=0)
    fed = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(db_default=Now(), editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "stripe_reconciliations"
        indexes = [models.Index(fields=["finished_at"], name="idx_stripe_recon_finished")]

    def __str__(self) -> str:
        return f"{self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M}"
