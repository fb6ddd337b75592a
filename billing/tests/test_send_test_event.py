"""`stripe_send_test_event` against the running endpoint: a checkout creates a tenant, a subscription change asks
for its move, a bad secret is one readable line."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.subscriptions import desired_tier
from billing.tests.helpers import asked_tier
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def send(live_server: Any, *args: str) -> str:
    out = StringIO()
    call_command("stripe_send_test_event", *args, "--url", f"{live_server.url}/billing/stripe/webhook/", stdout=out)
    return out.getvalue()


def test_checkout_then_subscription_change(live_server: Any) -> None:
    assert "checkout.session.completed" in send(live_server, "checkout", "--email", "Demo@Example.com")
    tenant = Tenant.objects.get(email="demo@example.com")
    assert tenant.tier == "C"
    send(live_server, "subscription", "--email", "demo@example.com", "--tier", "A")
    assert (asked_tier(tenant), desired_tier(tenant)) == ("A", "A")
    send(live_server, "cancel", "--email", "demo@example.com", "--tier", "A")
    assert desired_tier(tenant) == "C"  # (the move to A rolled back here: this test runs no tier pods)


def test_refusals_and_failures_are_one_line(live_server: Any, settings: Any) -> None:
    settings.STRIPE_WEBHOOK_MAX_BYTES = 100
    with pytest.raises(CommandError, match=r"^400 from the webhook: .*too_large"):
        send(live_server, "checkout", "--email", "x@example.com")
    with pytest.raises(CommandError, match=r"^could not reach http://127\.0\.0\.1:9/"):
        call_command("stripe_send_test_event", "checkout", "--email", "x@example.com", "--url", "http://127.0.0.1:9/")
    settings.STRIPE_WEBHOOK_SECRETS = []
    with pytest.raises(CommandError, match="no STRIPE_WEBHOOK_SECRETS"):
        send(live_server, "checkout", "--email", "x@example.com")
    assert not Tenant.objects.exists()
