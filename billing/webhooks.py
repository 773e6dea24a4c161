"""Stripe webhook events: verified, recorded once, then handed to billing.purchases.

The event row and everything the event changes commit together, so a crash
half-way leaves neither and Stripe's retry does the whole job; a replay of
a handled event finds its id and changes nothing. Stripe sends events in no
set order; a refund or dispute that comes before its payment's
checkout.session.completed first links its purchase, asking Stripe, outside
that transaction.
"""

from __future__ import annotations

import logging

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from . import purchases
from .models import StripeEvent

log = logging.getLogger(__name__)


def _session_completed(session) -> str:
    if session.get("payment_status") != "paid":
        purchases.purchase_payment_pending(session)
        return "checkout completed; payment still pending"
    purchases.purchase_fulfil(session)
    return "purchase credited"


def _async_succeeded(session) -> str:
    purchases.purchase_fulfil(session)
    return "purchase credited"


def _async_failed(session) -> str:
    purchases.purchase_payment_failed(session)
    return "payment failed"


def _charge_refunded(charge) -> str:
    return "refund applied" if purchases.purchase_refunded(charge) else "refund ignored"


def _dispute_created(dispute) -> str:
    return "wallet frozen" if purchases.purchase_disputed(dispute) else "dispute ignored"


# Events about a payment, not a session: their purchase may not know its payment
# intent yet, and is linked (asking Stripe) before the event is handled.
PAYMENT_EVENTS = {"charge.refunded", "charge.dispute.created"}

HANDLERS = {
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _async_succeeded,
    "checkout.session.async_payment_failed": _async_failed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


def stripe_event_receive(*, payload: bytes, signature: str | None) -> tuple[int, str]:
    """Verify and handle one delivery; returns (HTTP status, message for the log)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return 400, "Stripe webhooks are not configured on this studio."
    if not signature:
        return 400, "Missing Stripe-Signature header."
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as error:
        return 400, f"Signature check failed: {error.user_message or error}"
    except ValueError:
        return 400, "The payload is not a Stripe event."
    event = purchases.as_dict(event)
    handler = HANDLERS.get(event.get("type"))
    replay = StripeEvent.objects.filter(event_id=event["id"]).exists()
    if event.get("type") in PAYMENT_EVENTS and not replay:
        try:
            purchases.purchase_link_payment(event["data"]["object"].get("payment_intent") or "")
        except stripe.StripeError as error:
            # Not recorded: Stripe retries the event, and asks again then.
            log.warning("Stripe event %s waits: %s", event["id"], error)
            return 503, "Could not ask Stripe which purchase this payment is; retry later."
    try:
        with transaction.atomic():
            StripeEvent.objects.create(event_id=event["id"], type=event.get("type", ""))
            if handler is None:
                return 200, f"{event.get('type')} is not used"
            message = handler(event["data"]["object"])
    except IntegrityError:
        if StripeEvent.objects.filter(event_id=event["id"]).exists():
            return 200, "already handled"
        raise
    except purchases.PurchaseError as error:
        # Not recorded: Stripe retries, and a fixed pack or purchase then goes through.
        log.warning("Stripe event %s refused: %s", event["id"], error)
        return 400, str(error)
    return 200, message
