"""Credit packs bought through Stripe Checkout: start, fulfil, refund, dispute.

`purchase_fulfil` is the only way a payment becomes credits. The webhook and
the success page both call it; the ledger key `purchase:<id>` makes the
second call (and every replay) a no-op. Refunds and disputes are recorded on
the purchase whenever Stripe delivers them, before or after the payment is
credited, and crediting applies what is recorded: event order does not
matter. Stripe calls happen outside any database transaction.
"""

from __future__ import annotations

import logging
import time

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import alerts
from .models import CreditPack, LedgerEntry, Purchase, Wallet
from .services import Refusal, credit_wallet, wallet_for

log = logging.getLogger(__name__)


class PurchaseError(Exception):
    """A Stripe object we cannot turn into credits; the message says why."""


def as_dict(stripe_object) -> dict:
    """StripeObjects are not dicts; handlers read plain dicts either way."""
    if hasattr(stripe_object, "to_dict"):
        return stripe_object.to_dict()
    return dict(stripe_object)


def stripe_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


# Seconds per request. The SDK's default (80 s) outlasts gunicorn's 60 s; three
# tries of this (the SDK retries a timeout twice) end before it.
STRIPE_TIMEOUT = 10.0


def stripe_client() -> stripe.StripeClient:
    if not stripe_enabled():
        raise Refusal("Card payments are not set up on this studio.", "invalid")
    options = {}
    if settings.STRIPE_API_BASE:
        options["base_addresses"] = {"api": settings.STRIPE_API_BASE}
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        # Connection failures, timeouts and Stripe's 5xx: retried with the same
        # idempotency key, so a request Stripe did carry out is not repeated.
        max_network_retries=2,
        http_client=stripe.new_default_http_client(timeout=STRIPE_TIMEOUT),
        **options,
    )


# An answer that is not JSON (a proxy's error page, a cut-off body) is the one
# failure the SDK does not retry. Stripe may have made the session anyway, so
# the retry sends the same idempotency key and gets that same session back.
CHECKOUT_ATTEMPTS = 3
CHECKOUT_RETRY_PAUSE = 0.5  # seconds, times the attempt number

STRIPE_UNAVAILABLE = (
    "Stripe, the card payment service, did not answer properly, so the payment could not "
    "start. Nothing was charged: please try again in a few minutes."
)
STRIPE_MISCONFIGURED = (
    "Card payments are not working on this studio right now, so the payment could not "
    "start. Nothing was charged: please tell whoever runs the studio."
)


def purchase_start(*, team, pack: CreditPack, buyer, success_url: str, cancel_url: str) -> str:
    """Open a Checkout Session for one pack and return the address to send the buyer to.

    Refuses in words when Stripe cannot be used; the SDK's own text goes to the log.
    """
    client = stripe_client()
    purchase = Purchase.objects.create(
        wallet=wallet_for(team),
        pack=pack,
        buyer=buyer,
        credits=pack.credits,
        amount=pack.price,
        currency=pack.currency,
    )
    metadata = {"pack": str(pack.pk), "purchase": str(purchase.pk), "team": str(team.pk)}
    params = {
        "mode": "payment",
        "client_reference_id": str(team.pk),
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": pack.currency,
                    "unit_amount": pack.price,
                    "product_data": {"name": f"{pack.name}: {pack.credits:,} credits"},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": f"{success_url}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": cancel_url,
    }
    # One key per purchase: every retry of it, the SDK's or ours, is the same session.
    options = {"idempotency_key": f"checkout-purchase-{purchase.pk}"}
    for attempt in range(1, CHECKOUT_ATTEMPTS + 1):
        try:
            session = client.v1.checkout.sessions.create(params=params, options=options)
            break
        except stripe.APIError as error:
            log.warning("Checkout for purchase %s, attempt %s: %s", purchase.pk, attempt, error)
            if attempt == CHECKOUT_ATTEMPTS:
                raise Refusal(STRIPE_UNAVAILABLE, "unavailable") from error
            time.sleep(CHECKOUT_RETRY_PAUSE * attempt)
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            # Drops and timeouts the SDK has retried already; more would outlast the
            # request. Stripe asking us to slow down is not helped by asking again.
            log.warning("Checkout for purchase %s: %s", purchase.pk, error)
            raise Refusal(STRIPE_UNAVAILABLE, "unavailable") from error
        except stripe.StripeError as error:
            log.error("Stripe refused the checkout for purchase %s: %s", purchase.pk, error)
            raise Refusal(STRIPE_MISCONFIGURED, "unavailable") from error
    Purchase.objects.filter(pk=purchase.pk).update(session_id=session.id)
    return session.url


def checkout_session_fetch(session_id: str) -> dict:
    return as_dict(stripe_client().v1.checkout.sessions.retrieve(session_id))


def _purchase_for(session: dict) -> Purchase:
    metadata = session.get("metadata") or {}
    purchase = Purchase.objects.filter(session_id=session.get("id")).first()
    reference = str(metadata.get("purchase", ""))
    if purchase is None and reference.isascii() and reference.isdigit() and len(reference) <= 18:
        purchase = Purchase.objects.filter(pk=int(metadata["purchase"]), session_id=None).first()
    if purchase is None:
        raise PurchaseError(f"No purchase matches checkout session {session.get('id')}.")
    pack_id = str(metadata.get("pack", ""))
    if pack_id != str(purchase.pack_id) or not CreditPack.objects.filter(pk=purchase.pack_id):
        raise PurchaseError(f"Unknown credit pack “{pack_id}” in checkout session.")
    if str(session.get("client_reference_id")) != str(purchase.wallet.team_id):
        raise PurchaseError("The checkout session belongs to a different team.")
    if session.get("amount_total") is not None and session["amount_total"] != purchase.amount:
        raise PurchaseError("The amount paid does not match the pack's price.")
    return purchase


def _payment_intent_of(session: dict) -> str:
    intent = session.get("payment_intent") or ""
    return intent if isinstance(intent, str) else intent.get("id", "")


def _payment_intent_link(session: dict) -> None:
    """A completed session names its payment intent even before the payment clears."""
    intent = _payment_intent_of(session)
    if intent:
        Purchase.objects.filter(session_id=session.get("id"), payment_intent="").update(
            payment_intent=intent
        )


def purchase_link_payment(payment_intent: str) -> None:
    """Make sure the purchase a payment intent paid for knows it, asking Stripe if need be.

    Stripe delivers events in no set order, so a refund or a dispute can come
    before checkout.session.completed, the first event that ties the payment
    intent to a purchase. Stripe then says which Checkout Session made the
    payment intent (sessions listed by payment intent), and the session's
    metadata names the purchase. Talks to Stripe: call outside a transaction.
    """
    if not payment_intent or not stripe_enabled():
        return
    if Purchase.objects.filter(payment_intent=payment_intent).exists():
        return
    sessions = stripe_client().v1.checkout.sessions.list(
        params={"payment_intent": payment_intent, "limit": 1}
    )
    for session in sessions.data:
        session = as_dict(session)
        try:
            purchase = _purchase_for(session)
        except PurchaseError as error:
            log.info("Payment %s is not a purchase here: %s", payment_intent, error)
            continue
        Purchase.objects.filter(pk=purchase.pk, payment_intent="").update(
            payment_intent=payment_intent, session_id=session["id"]
        )


def purchase_fulfil(session) -> bool:
    """Credit the pack a paid Checkout Session bought. True only the first time.

    A refund recorded before this (Stripe sent it first) is taken back at once;
    a dispute recorded before it has already frozen the wallet.
    """
    session = as_dict(session)
    if session.get("payment_status") != "paid":
        return False
    purchase = _purchase_for(session)
    with transaction.atomic():
        Purchase.objects.filter(pk=purchase.pk).update(
            status=Purchase.Status.PAID,
            fulfilled=purchase.fulfilled or timezone.now(),
            session_id=session["id"],
            payment_intent=_payment_intent_of(session) or purchase.payment_intent,
        )
        _entry, created = credit_wallet(
            wallet=purchase.wallet,
            amount=purchase.credits,
            kind=LedgerEntry.Kind.PURCHASE,
            idempotency_key=f"purchase:{purchase.pk}",
            actor=purchase.buyer,
            note=f"{purchase.pack.name} bought by card",
            purchase=purchase,
        )
        # A refund that arrived before this payment was credited is applied now.
        purchase_refund_apply(purchase_id=purchase.pk)
    return created


def purchase_payment_pending(session) -> None:
    session = as_dict(session)
    _payment_intent_link(session)
    Purchase.objects.filter(session_id=session.get("id"), status=Purchase.Status.PENDING).update(
        status=Purchase.Status.PROCESSING
    )


def purchase_payment_failed(session) -> None:
    session = as_dict(session)
    _payment_intent_link(session)
    Purchase.objects.filter(
        session_id=session.get("id"),
        status__in=[Purchase.Status.PENDING, Purchase.Status.PROCESSING],
    ).update(status=Purchase.Status.FAILED)


def purchase_refunded(charge) -> bool:
    """Record a charge's cumulative refund and claw back its not-yet-recovered credits.

    Before the pack is credited the refund is only recorded; crediting applies it.
    """
    charge = as_dict(charge)
    purchase = Purchase.objects.filter(payment_intent=charge.get("payment_intent") or "-").first()
    if purchase is None:
        log.info("Refund for a charge no purchase knows: %s", charge.get("id"))
        return False
    refunded = min(int(charge.get("amount_refunded") or 0), purchase.amount)
    with transaction.atomic():
        # Cumulative and only ever growing: an older event delivered late changes nothing.
        Purchase.objects.filter(pk=purchase.pk, amount_refunded__lt=refunded).update(
            amount_refunded=refunded
        )
        purchase_refund_apply(purchase_id=purchase.pk)
    return True


def purchase_refund_apply(*, purchase_id: int) -> None:
    """Take back the credits of the refunded share not yet taken; freeze if they are spent."""
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase_id)
        if purchase.status != Purchase.Status.PAID or not purchase.amount:
            return
        target = purchase.credits * purchase.amount_refunded // purchase.amount
        due = target - purchase.credits_clawed_back
        if due <= 0:
            return
        claimed = Purchase.objects.filter(
            pk=purchase.pk, credits_clawed_back=purchase.credits_clawed_back
        ).update(credits_clawed_back=target)
        if not claimed:
            return
        wallet = (
            Wallet.objects.select_for_update().select_related("team").get(pk=purchase.wallet_id)
        )
        take = min(due, wallet.available)
        if take and not Wallet.objects.filter(pk=wallet.pk, available__gte=take).update(
            available=F("available") - take
        ):
            raise PurchaseError("The wallet changed while a refund was applied; try again.")
        shortfall = due - take
        LedgerEntry.objects.create(
            wallet=wallet,
            kind=LedgerEntry.Kind.REFUND,
            available_delta=-take,
            purchase=purchase,
            note=(
                f"Card refund: {due:,} credits taken back"
                + (f", {shortfall:,} could not be (already spent)" if shortfall else "")
            ),
            idempotency_key=f"refund:{purchase.pk}:{target}",
        )
        if shortfall:
            wallet_freeze(
                wallet=wallet,
                reason=f"a card refund exceeded the balance by {shortfall:,} credits",
            )


def purchase_disputed(dispute) -> bool:
    dispute = as_dict(dispute)
    purchase = (
        Purchase.objects.select_related("wallet__team")
        .filter(payment_intent=dispute.get("payment_intent") or "-")
        .first()
    )
    if purchase is None:
        log.info("Dispute for a charge no purchase knows: %s", dispute.get("id"))
        return False
    # Whether or not the pack is credited yet: the wallet stops spending either way,
    # and a second event about the same purchase neither freezes nor emails again.
    if Purchase.objects.filter(pk=purchase.pk, disputed=None).update(disputed=timezone.now()):
        wallet_freeze(wallet=purchase.wallet, reason="a card payment is disputed")
    return True


def wallet_freeze(*, wallet: Wallet, reason: str) -> None:
    """Stop new holds until a site admin looks; tell the owners why."""
    Wallet.objects.filter(pk=wallet.pk).update(frozen=True, frozen_reason=reason[:300])
    team = wallet.team
    alerts.team_tell(
        team_id=team.pk,
        subject=f"{team.name}: credits frozen",
        body=(
            f"New images for {team.name} are paused because {reason}.\n"
            "Images already running finish normally. Reply to this email to sort it out.\n"
        ),
        roles=("owner",),
    )
