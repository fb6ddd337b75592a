"""The webhook's front door: Stripe's signature scheme (signed by stripe-python), both-way time window, secret
rotation, fail-closed, malformed and oversized bodies: each refusal is a 400 with a JSON error and stores nothing."""

import time
from typing import Any

import pytest
import stripe
from django.test import Client

from billing import shapes
from billing.models import BillingEvent
from billing.tests.conftest import OLD_SECRET, SECRET, URL, Customer, deliver

pytestmark = pytest.mark.django_db


def signed_post(client: Client, payload: bytes, header: str, **extra: Any) -> Any:
    return client.post(URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header, **extra)


def assert_refused(response: Any, error: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error
    assert not BillingEvent.objects.exists()


def test_signed_event_is_stored_and_answered(client: Client) -> None:
    evt = Customer().subscription("created", price="price_unmapped")
    response = deliver(client, evt)
    assert response.status_code == 200
    assert response.json()["id"] == evt["id"]
    row = BillingEvent.objects.get(stripe_event_id=evt["id"])
    assert row.payload == evt
    assert row.event_type == "customer.subscription.created"
    assert row.stripe_customer_id == evt["data"]["object"]["customer"]


def test_wrong_secret_is_refused(client: Client) -> None:
    assert_refused(deliver(client, Customer().checkout(), secret="whsec_someone_else"), "invalid_signature")


def test_body_changed_after_signing_is_refused(client: Client) -> None:
    payload = shapes.body(Customer().checkout())
    header = shapes.signature_header(payload, SECRET)
    assert_refused(signed_post(client, payload.replace(b"example.com", b"evil.example"), header), "invalid_signature")


def test_rotated_secret_and_its_successor_both_verify(client: Client, settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [SECRET, OLD_SECRET]
    assert deliver(client, Customer().checkout(), secret=OLD_SECRET).status_code == 200
    assert deliver(client, Customer().checkout(), secret=SECRET).status_code == 200
    settings.STRIPE_WEBHOOK_SECRETS = [SECRET]  # the roll is over: the old secret no longer verifies
    response = deliver(client, Customer().checkout(), secret=OLD_SECRET)
    assert response.status_code == 400
    assert BillingEvent.objects.count() == 2


def test_any_v1_signature_may_match(client: Client) -> None:
    """During a roll Stripe sends one v1 per secret; ours may be any of them."""
    payload = shapes.body(Customer().checkout())
    now = int(time.time())
    ours = shapes.signature_header(payload, SECRET, timestamp=now).split(",")[1]
    theirs = shapes.signature_header(payload, "whsec_other", timestamp=now).split(",")[1]
    assert signed_post(client, payload, f"t={now},{theirs},{ours},v0=deadbeef").status_code == 200


@pytest.mark.parametrize("offset", [-301, -3600, 301, 3600, 10**9])
def test_timestamps_outside_the_window_are_refused_both_ways(client: Client, offset: int) -> None:
    evt = Customer().checkout()
    assert_refused(deliver(client, evt, timestamp=int(time.time()) + offset), "invalid_signature")


def test_stripe_python_alone_would_accept_a_future_signature() -> None:
    """Why the window is checked here: stripe-python only refuses old signatures."""
    payload = shapes.body(Customer().checkout()).decode()
    future = shapes.signature_header(payload.encode(), SECRET, timestamp=int(time.time()) + 86_400)
    assert stripe.WebhookSignature.verify_header(payload, future, SECRET, tolerance=300)


@pytest.mark.parametrize("offset", [-290, 0, 290])
def test_timestamps_inside_the_window_pass(client: Client, offset: int) -> None:
    assert deliver(client, Customer().checkout(), timestamp=int(time.time()) + offset).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=00",
        "t=abc,v1=00",
        "t=-5,v1=00",
        "t=\uff11\uff12\uff13,v1=00",  # fullwidth digits: int() would take them
        "t={now},t={now},v1={sig}",  # two timestamps: which one was signed?
        "v1={sig}",  # no timestamp
        "t={now}",  # no signature
        "t={now},v0={sig}",  # not the v1 scheme
        "t={now},v1=",
    ],
)
def test_malformed_headers_are_refused(client: Client, header: str) -> None:
    payload = shapes.body(Customer().checkout())
    now = int(time.time())
    sig = shapes.signature_header(payload, SECRET, timestamp=now).split("v1=")[1]
    assert_refused(signed_post(client, payload, header.format(now=now, sig=sig)), "invalid_signature")


def test_no_header_is_refused(client: Client) -> None:
    response = client.post(URL, shapes.body(Customer().checkout()), content_type="application/json")
    assert_refused(response, "invalid_signature")


@pytest.mark.parametrize("secrets", [[], [""], ["   "]])
def test_without_a_secret_everything_is_refused(client: Client, settings: Any, secrets: list[str]) -> None:
    """Fail closed: no configured secret verifies nothing, whatever the delivery is signed with."""
    settings.STRIPE_WEBHOOK_SECRETS = [s for s in secrets if s.strip()]
    for secret in (SECRET, "", " "):
        evt = Customer().checkout()
        payload = shapes.body(evt)
        header = stripe.WebhookSignature.generate_signature_header(payload.decode(), secret)
        assert_refused(signed_post(client, payload, header), "invalid_signature")


def test_no_request_input_can_skip_or_choose_the_secret(client: Client, staff_api: Any) -> None:
    """Query parameters, headers and staff credentials change nothing: only the signature authenticates."""
    payload = shapes.body(Customer().checkout())
    header = shapes.signature_header(payload, "whsec_attacker")
    for url in (f"{URL}?secret=whsec_attacker", f"{URL}?debug=1&skip_verification=1"):
        response = client.post(
            url,
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
            HTTP_X_STRIPE_WEBHOOK_SECRET="whsec_attacker",
            HTTP_X_SKIP_VERIFICATION="1",
        )
        assert_refused(response, "invalid_signature")
    staff = staff_api.post(URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert_refused(staff, "invalid_signature")


EVENT = b'{"object": "event", "id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": '


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'"event"',
        b'{"object": "customer", "id": "cus_1"}',
        b'{"object": "event", "id": "evt_1", "type": "invoice.paid", "created": 1, "data": {}}',
        b'{"object": "event", "id": "nope", "type": "invoice.paid", "created": 1, "data": {"object": {}}}',
        b'{"object": "event", "id": "evt_1", "type": "x", "created": 1, "data": {"object": {}}}',
        b'{"object": "event", "id": "evt_1", "type": "invoice.paid", "created": "1", "data": {"object": {}}}',
        EVENT + b'{"a": NaN}}}',
        EVENT + b'{"a": "\\u0000"}}}',
        EVENT + b'{"\\ud800": 1}}}',
        EVENT + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_bodies_that_are_not_stripe_events_are_refused(client: Client, settings: Any, body: bytes) -> None:
    settings.STRIPE_WEBHOOK_MAX_BYTES = 256 * 1024
    assert_refused(signed_post(client, body, shapes.signature_header(body, SECRET)), "not_an_event")


def test_a_body_that_is_not_utf8_is_refused(client: Client) -> None:
    body = b'{"object": "event", "id": "evt_\xff"}'
    header = f"t={int(time.time())},v1=00"
    assert_refused(signed_post(client, body, header), "invalid_signature")


def test_an_oversized_body_is_refused(client: Client, settings: Any) -> None:
    settings.STRIPE_WEBHOOK_MAX_BYTES = 4096
    evt = Customer().checkout()
    evt["data"]["object"]["metadata"] = {"padding": "x" * 5000}
    assert_refused(deliver(client, evt), "too_large")
