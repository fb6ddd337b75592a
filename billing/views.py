"""POST /billing/stripe/webhook/: verify, store once, answer at once; the worker processes (billing.processing)."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.intake import event_receive
from billing.payloads import NotAnEvent, parse_event
from billing.signature import SignatureError, verify


def _refuse(code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=400)


@csrf_exempt  # Stripe cannot send a CSRF token; the signature is what authenticates the request
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    limit = settings.STRIPE_WEBHOOK_MAX_BYTES
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refuse("too_large", f"the body is over {limit} bytes")
    try:
        verify(
            payload=body,
            header=request.headers.get("Stripe-Signature"),
            secrets=settings.STRIPE_WEBHOOK_SECRETS,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
        event = parse_event(body.decode("utf-8"))
    except SignatureError as exc:
        return _refuse("invalid_signature", str(exc))
    except NotAnEvent as exc:
        return _refuse("not_an_event", str(exc))
    event_receive(event=event)
    return JsonResponse({"received": True, "id": event["id"]})
