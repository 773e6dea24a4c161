"""Buying credit packs: Checkout against a local fake of Stripe, and signed webhooks."""

import time

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from billing.models import CreditPack, LedgerEntry, Purchase, StripeEvent, Wallet
from billing.selectors import wallet_balance
from billing.services import Refusal, hold_place
from tests.fakes.stripe_server import FakeStripe, signature_header, signed_event

from .conftest import fund, ledger_count

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"


@pytest.fixture
def fake_stripe(settings):
    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_WEBHOOK_SECRET = SECRET
        settings.STRIPE_API_BASE = fake.url
        yield fake


@pytest.fixture
def pack():
    return CreditPack.objects.get(name="Starter")  # 10,000 credits for $10.00


def start_checkout(client, team, pack) -> str:
    response = client.post(reverse("billing-buy", args=[team.slug]), {"pack": pack.pk})
    assert response.status_code == 302
    return response["Location"].rsplit("/", 1)[1]


def deliver(client, event_type, obj, *, event_id=None, secret=SECRET, timestamp=None):
    body, header = signed_event(event_type, obj, secret, event_id=event_id, timestamp=timestamp)
    return client.post(
        reverse("stripe-webhook"),
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


def test_without_stripe_keys_the_buy_button_is_hidden(settings, owner, team, pack, client_for):
    settings.STRIPE_SECRET_KEY = ""
    page = client_for(owner).get(reverse("billing", args=[team.slug])).content.decode()
    assert "Buy " not in page
    assert (
        client_for(owner)
        .post(reverse("billing-buy", args=[team.slug]), {"pack": pack.pk})
        .status_code
        == 404
    )


def test_owner_buys_a_pack_through_checkout(fake_stripe, owner, team, pack, client_for):
    client = client_for(owner)
    page = client.get(reverse("billing", args=[team.slug])).content.decode()
    assert "Buy 10,000 credits · 10.00 USD" in page
    session_id = start_checkout(client, team, pack)
    request = fake_stripe.requests[-1]
    assert request["headers"]["Authorization"] == "Bearer sk_test_fake"
    assert request["headers"]["Idempotency-Key"].startswith("checkout-purchase-")
    form = request["form"]
    assert form["mode"] == "payment"
    assert form["client_reference_id"] == str(team.pk)
    assert form["metadata"]["pack"] == str(pack.pk)
    assert form["line_items"]["0"]["price_data"]["unit_amount"] == "1000"
    purchase = Purchase.objects.get()
    assert (purchase.session_id, purchase.credits, purchase.status) == (
        session_id,
        10_000,
        "pending",
    )
    assert ledger_count() == 0  # nothing is credited before Stripe says it is paid


def test_only_owners_buy(fake_stripe, team_admin, teammate, stranger, team, pack, client_for):
    url = reverse("billing-buy", args=[team.slug])
    assert client_for(team_admin).post(url, {"pack": pack.pk}).status_code == 403
    assert client_for(teammate).post(url, {"pack": pack.pk}).status_code == 403
    assert client_for(stranger).post(url, {"pack": pack.pk}).status_code == 404
    assert not Purchase.objects.exists()


def test_success_page_credits_once_and_a_replayed_url_changes_nothing(
    fake_stripe, owner, team, pack, client_for
):
    client = client_for(owner)
    session_id = start_checkout(client, team, pack)
    success = f"{reverse('billing-bought', args=[team.slug])}?session_id={session_id}"
    unpaid = client.get(success, follow=True)
    assert "processing" in unpaid.content.decode()
    assert ledger_count() == 0
    fake_stripe.pay(session_id)
    first = client.get(success, follow=True)
    assert "your credits are in" in first.content.decode()
    before = ledger_count()
    for _ in range(3):
        again = client.get(success, follow=True)
        assert "already credited" in again.content.decode()
    assert ledger_count() == before == 1
    assert wallet_balance(team) == (10_000, 0)
    # The webhook arriving afterwards finds the purchase credited.
    assert (
        deliver(client, "checkout.session.completed", fake_stripe.sessions[session_id]).status_code
        == 200
    )
    assert ledger_count() == 1
    call_command("reconcile")


def test_success_page_for_an_unknown_or_foreign_session_is_404(
    fake_stripe, owner, stranger, team, pack, client_for
):
    session_id = start_checkout(client_for(owner), team, pack)
    fake_stripe.pay(session_id)
    foreign_team = stranger.teams.get()
    url = reverse("billing-bought", args=[foreign_team.slug])
    assert client_for(stranger).get(f"{url}?session_id={session_id}").status_code == 404
    own = reverse("billing-bought", args=[team.slug])
    assert client_for(owner).get(f"{own}?session_id=cs_test_nope").status_code == 404
    assert ledger_count() == 0


def test_webhook_replays_and_out_of_order_events_credit_exactly_once(
    fake_stripe, owner, team, pack, client_for, client
):
    session_id = start_checkout(client_for(owner), team, pack)
    session = fake_stripe.pay(session_id)
    for _ in range(3):
        assert (
            deliver(client, "checkout.session.completed", session, event_id="evt_1").status_code
            == 200
        )
    assert StripeEvent.objects.filter(event_id="evt_1").count() == 1
    # A different event for the same payment is not a second payment.
    assert deliver(client, "checkout.session.async_payment_succeeded", session).status_code == 200
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1
    assert wallet_balance(team) == (10_000, 0)
    assert Purchase.objects.get().status == "paid"


def test_delayed_payment_credits_on_success_and_not_on_failure(
    fake_stripe, owner, team, pack, client_for, client
):
    session_id = start_checkout(client_for(owner), team, pack)
    pending = dict(fake_stripe.sessions[session_id])
    assert deliver(client, "checkout.session.completed", pending).status_code == 200
    assert Purchase.objects.get().status == "processing"
    assert ledger_count() == 0
    assert deliver(client, "checkout.session.async_payment_failed", pending).status_code == 200
    assert Purchase.objects.get().status == "failed"
    assert ledger_count() == 0

    second = start_checkout(client_for(owner), team, pack)
    paid = fake_stripe.pay(second)
    assert (
        deliver(
            client, "checkout.session.completed", {**paid, "payment_status": "unpaid"}
        ).status_code
        == 200
    )
    assert ledger_count() == 0
    assert deliver(client, "checkout.session.async_payment_succeeded", paid).status_code == 200
    assert wallet_balance(team) == (10_000, 0)


@pytest.mark.parametrize("problem", ["bad", "missing", "stale", "wrong-secret", "tampered"])
def test_webhook_signature_problems_get_400_and_leave_the_ledger(
    fake_stripe, owner, team, pack, client_for, client, problem
):
    session = fake_stripe.pay(start_checkout(client_for(owner), team, pack))
    body, header = signed_event("checkout.session.completed", session, SECRET)
    if problem == "bad":
        header = header.split(",v1=")[0] + ",v1=" + "0" * 64
    elif problem == "stale":
        body, header = signed_event(
            "checkout.session.completed", session, SECRET, timestamp=int(time.time()) - 3600
        )
    elif problem == "wrong-secret":
        body, header = signed_event("checkout.session.completed", session, "whsec_other")
    elif problem == "tampered":
        body = body.replace('"amount_total": 1000', '"amount_total": 1')
    kwargs = {} if problem == "missing" else {"HTTP_STRIPE_SIGNATURE": header}
    response = client.post(
        reverse("stripe-webhook"), body, content_type="application/json", **kwargs
    )
    assert response.status_code == 400
    assert response.content  # says why
    assert ledger_count() == 0
    assert not StripeEvent.objects.exists()


def test_webhook_for_an_unknown_pack_is_refused(fake_stripe, owner, team, pack, client_for, client):
    session = fake_stripe.pay(start_checkout(client_for(owner), team, pack))
    forged = {**session, "metadata": {**session["metadata"], "pack": "999"}}
    response = deliver(client, "checkout.session.completed", forged)
    assert response.status_code == 400
    assert "Unknown credit pack" in response.content.decode()
    assert ledger_count() == 0
    assert not StripeEvent.objects.exists()  # not recorded: Stripe retries once it is sorted out
    stranger_session = {**session, "id": "cs_test_elsewhere", "metadata": {"pack": "999"}}
    assert deliver(client, "checkout.session.completed", stranger_session).status_code == 400
    assert ledger_count() == 0


def test_refunds_claw_back_only_the_newly_refunded_part(
    fake_stripe, owner, team, pack, client_for, client
):
    session = fake_stripe.pay(start_checkout(client_for(owner), team, pack))
    deliver(client, "checkout.session.completed", session)
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": session["payment_intent"],
        "amount": 1000,
    }
    deliver(client, "charge.refunded", {**charge, "amount_refunded": 250})
    assert wallet_balance(team) == (7_500, 0)
    deliver(client, "charge.refunded", {**charge, "amount_refunded": 250})  # same total again
    assert wallet_balance(team) == (7_500, 0)
    deliver(client, "charge.refunded", {**charge, "amount_refunded": 600})
    assert wallet_balance(team) == (4_000, 0)
    deliver(client, "charge.refunded", {**charge, "amount_refunded": 250})  # an older one, late
    assert wallet_balance(team) == (4_000, 0)
    refunds = LedgerEntry.objects.filter(kind="refund").order_by("id")
    assert [entry.available_delta for entry in refunds] == [-2_500, -3_500]
    call_command("reconcile")


def test_refund_of_spent_credits_freezes_and_tells_owners(
    fake_stripe, owner, team, pack, client_for, client, django_capture_on_commit_callbacks
):
    owner.email = "olivia@example.com"
    owner.save()
    session = fake_stripe.pay(start_checkout(client_for(owner), team, pack))
    deliver(client, "checkout.session.completed", session)
    with transaction.atomic():
        hold_place(team=team, member=owner, tier="pro", size="4K", count=30, key="spent")  # 7,200
    charge = {"id": "ch_2", "payment_intent": session["payment_intent"], "amount": 1000}
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            deliver(client, "charge.refunded", {**charge, "amount_refunded": 1000}).status_code
            == 200
        )
    wallet = Wallet.objects.get(team=team)
    assert (wallet.available, wallet.held, wallet.frozen) == (0, 7_200, True)
    assert "refund" in wallet.frozen_reason
    assert any("frozen" in message.subject for message in mail.outbox)
    assert mail.outbox[-1].to == ["olivia@example.com"]
    with pytest.raises(Refusal) as refused, transaction.atomic():
        hold_place(team=team, member=owner, tier="flash", size="512", count=1, key="after")
    assert refused.value.code == "frozen"
    call_command("reconcile")


def test_dispute_freezes_the_wallet(fake_stripe, owner, team, pack, client_for, client):
    session = fake_stripe.pay(start_checkout(client_for(owner), team, pack))
    deliver(client, "checkout.session.completed", session)
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "charge": "ch_3",
        "payment_intent": session["payment_intent"],
    }
    assert deliver(client, "charge.dispute.created", dispute).status_code == 200
    assert Wallet.objects.get(team=team).frozen
    page = client_for(owner).get(reverse("team", args=[team.slug])).content.decode()
    assert "frozen" in page


def test_refund_before_the_payment_was_credited_is_applied_when_it_is(
    fake_stripe, owner, team, pack, client_for, client
):
    fund(team, 1)
    session = fake_stripe.pay(start_checkout(client_for(owner), team, pack))
    Purchase.objects.update(payment_intent=session["payment_intent"])
    charge = {"id": "ch_4", "payment_intent": session["payment_intent"], "amount": 1000}
    deliver(client, "charge.refunded", {**charge, "amount_refunded": 1000})
    assert wallet_balance(team) == (1, 0)
    deliver(client, "checkout.session.completed", session)
    assert wallet_balance(team) == (1, 0)
    call_command("reconcile")


def test_signature_scheme_matches_stripe():
    import stripe

    body = '{"id": "evt_x", "object": "event"}'
    header = signature_header(body, SECRET)
    event = stripe.Webhook.construct_event(body, header, SECRET)
    assert event.id == "evt_x"
