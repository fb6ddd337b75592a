"""What a verified body must be before it is stored: a Stripe event object the database can hold."""

import json
import re
from datetime import UTC, datetime
from typing import Any

from core.input_checks import json_problem

_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,200}\Z")
_EVENT_TYPE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+){1,5}\Z")


class NotAnEvent(ValueError):
    """The body parses, or not, but is not a Stripe event."""


def _refuse_constant(name: str) -> float:
    raise NotAnEvent(f"the body holds {name}, which JSON does not allow")


def parse_event(text: str) -> dict[str, Any]:
    """The event as a dict, checked for the fields the pipeline relies on and for what JSONB cannot store."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise NotAnEvent(f"the body is not JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict) or data.get("object") != "event":
        raise NotAnEvent("the body is not a Stripe event (object must be 'event')")
    if problem := json_problem(data):
        raise NotAnEvent(f"the event holds {problem}")
    if not isinstance(data.get("id"), str) or not _EVENT_ID.match(data["id"]):
        raise NotAnEvent("the event has no valid id (evt_…)")
    if not isinstance(data.get("type"), str) or not _EVENT_TYPE.match(data["type"]) or len(data["type"]) > 100:
        raise NotAnEvent("the event has no valid type")
    created = data.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 < created < 2**37:
        raise NotAnEvent("the event has no valid created time")
    obj = data.get("data")
    if not isinstance(obj, dict) or not isinstance(obj.get("object"), dict):
        raise NotAnEvent("the event has no data.object")
    return data


def data_object(payload: Any) -> dict[str, Any]:
    """`data.object` of a stored (already checked) event."""
    return dict(payload["data"]["object"]) if isinstance(payload, dict) else {}


def event_time(event: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(event["created"], tz=UTC)


def customer_of(obj: dict[str, Any]) -> str | None:
    """The Stripe customer id of a checkout session, subscription or invoice (the id, or an expanded object's)."""
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) and customer else None


def amount_of(event_type: str, obj: dict[str, Any]) -> tuple[int | None, str | None]:
    """(amount in cents, ISO currency) worth showing in the admin, when the object has them."""
    key = {"invoice.paid": "amount_paid", "invoice.payment_failed": "amount_due"}.get(event_type, "amount_total")
    amount, currency = obj.get(key), obj.get("currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or not -(2**31) <= amount < 2**31:
        amount = None
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        return amount, None
    return amount, currency.upper()
