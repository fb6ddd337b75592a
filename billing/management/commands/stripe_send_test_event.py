"""`manage.py stripe_send_test_event checkout|subscription|cancel|payment-failed|paid --email E [--tier T]`: send one
Stripe-shaped event, signed with the configured webhook secret as Stripe signs, to a running endpoint (local demo)."""

import hashlib
import time
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from billing import shapes
from core.commands import PlatformCommand
from core.emails import normalize_email

KINDS = ("checkout", "subscription", "cancel", "payment-failed", "paid")


def _price_for(tier: str) -> str:
    for price, price_tier in settings.STRIPE_PRICE_TIERS.items():
        if price_tier == tier:
            return str(price)
    raise CommandError(f"no price maps to tier {tier} in STRIPE_PRICE_TIERS")


def build(kind: str, email: str, tier: str, now: int) -> dict[str, Any]:
    """The event for `kind`; the customer and subscription ids follow from the email, so events of one demo match."""
    key = hashlib.sha256(email.encode()).hexdigest()[:14]
    customer, sub, event_id = f"cus_demo{key}", f"sub_demo{key}", f"evt_demo{key}{time.time_ns()}"
    if kind == "checkout":
        obj = shapes.checkout_session(
            session_id=f"cs_test_demo{key}", customer=customer, subscription=sub, email=email, created=now
        )
        return shapes.event("checkout.session.completed", obj, event_id=event_id, created=now)
    if kind in ("payment-failed", "paid"):
        obj = shapes.invoice(
            invoice_id=f"in_demo{key}{now}", customer=customer, subscription=sub, paid=kind == "paid", created=now
        )
        return shapes.event(f"invoice.{kind.replace('-', '_')}", obj, event_id=event_id, created=now)
    status = "canceled" if kind == "cancel" else "active"
    obj = shapes.subscription(
        subscription_id=sub,
        customer=customer,
        status=status,
        price=_price_for(tier),
        period_start=now,
        period_end=now + 30 * 86_400,
    )
    event_type = "customer.subscription.deleted" if kind == "cancel" else "customer.subscription.updated"
    return shapes.event(event_type, obj, event_id=event_id, created=now)


class Command(PlatformCommand):
    help = "Send a signed, Stripe-shaped test event to the webhook (checkout, subscription change, cancel, invoices)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("--email", required=True)
        parser.add_argument("--tier", default="B", choices=["A", "B", "C"], help="the subscription's tier (by price)")
        parser.add_argument("--url", default="http://127.0.0.1:8000/billing/stripe/webhook/")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.STRIPE_WEBHOOK_SECRETS:
            raise CommandError("no STRIPE_WEBHOOK_SECRETS configured (make run's bootstrap_local writes one)")
        event = build(options["kind"], normalize_email(options["email"]), options["tier"], int(time.time()))
        body = shapes.body(event)
        header = shapes.signature_header(body, settings.STRIPE_WEBHOOK_SECRETS[0])
        if not options["url"].startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http(s) URL, not {options['url']!r}")
        request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
            options["url"], data=body, headers={"Content-Type": "application/json", "Stripe-Signature": header}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                answer = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise CommandError(f"{exc.code} from the webhook: {exc.read().decode()[:300]}") from exc
        except OSError as exc:
            raise CommandError(f"could not reach {options['url']}: {exc}") from exc
        self.stdout.write(f"sent {event['type']} {event['id']}: {answer}")
