"""Stripe-Signature verification: stripe-python's HMAC check, over several secrets, inside a two-sided time window.

stripe-python's `WebhookSignature.verify_header` refuses only signatures older than the tolerance; a timestamp far
in the future passes, so a captured signature made for a future time would replay for as long as its date is ahead.
Here the timestamp must lie within the tolerance on both sides of now, and is parsed strictly first (one `t=`, digits
only); the HMAC comparison itself is stripe-python's, with every configured secret tried (any `v1=` may match).
"""

import time
from collections.abc import Sequence

import stripe


class SignatureError(Exception):
    """The delivery is not a fresh event signed by Stripe with one of our secrets."""


def signed_at(header: str) -> int:
    """The header's `t=` value: exactly one, digits only."""
    stamps = [part.partition("=")[2] for part in header.split(",") if part.partition("=")[0].strip() == "t"]
    if len(stamps) != 1 or not stamps[0].isascii() or not stamps[0].isdigit() or len(stamps[0]) > 12:
        raise SignatureError("malformed Stripe-Signature header: it needs exactly one numeric t=")
    return int(stamps[0])


def verify(
    *, payload: bytes, header: str | None, secrets: Sequence[str], tolerance: int, now: float | None = None
) -> None:
    """Return if `payload` is signed by one of `secrets` at a time within `tolerance` seconds of now; else raise."""
    if not secrets:
        raise SignatureError("no webhook secret is configured: every delivery is refused")
    if not header:
        raise SignatureError("no Stripe-Signature header")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureError("the body is not UTF-8") from exc
    timestamp = signed_at(header)
    skew = (time.time() if now is None else now) - timestamp
    if skew > tolerance:
        raise SignatureError(f"the signature is {int(skew)} s old (tolerance {tolerance} s)")
    if -skew > tolerance:
        raise SignatureError(f"the signature is dated {int(-skew)} s in the future (tolerance {tolerance} s)")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
            return
        except stripe.SignatureVerificationError:
            continue
    raise SignatureError("no v1 signature matches the body with any configured secret")
