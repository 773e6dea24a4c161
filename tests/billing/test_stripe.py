"""Buying credit packs: Checkout against a local fake of Stripe, and signed webhooks.

Every webhook goes to the real view, signed and shaped by the Stripe SDK, in
the orders Stripe may send it; after every test the ledger reconciles.
"""

import time
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from billing.models import CreditPack, LedgerEntry, Purchase, StripeEvent, Wallet
from billing.selectors import wallet_balance
from billing.services import Refusal, hold_place
from tests.fakes.stripe_server import FakeStripe, signed_event

from .conftest import fund, ledger_count
from .test_concurrency import run_threads

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"


@pytest.fixture(autouse=True)
def ledger_reconciles():
    """Whatever a test did with money, every wallet still equals its ledger."""
    yield
    report = StringIO()
    call_command("reconcile", stdout=report)  # raises on any mismatch
    assert " 0 mismatched" in report.getvalue()


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    monkeypatch.setattr("billing.purchases.CHECKOUT_RETRY_PAUSE", 0.01)
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
    pending = fake_stripe.pay_later(session_id)
    assert deliver(client, "checkout.session.completed", pending).status_code == 200
    purchase = Purchase.objects.get()
    # Linked to its payment already: a refund or dispute now finds it without asking Stripe.
    assert (purchase.status, purchase.payment_intent) == ("processing", pending["payment_intent"])
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


# Refunds and disputes. Stripe does not deliver events in the order they happened
# and retries a delivery (same event id) until it is answered 2xx, so each is
# tried in order, before the payment's checkout.session.completed, and replayed.


def paid_checkout(fake_stripe, client_for, owner, team, pack) -> dict:
    """The buyer has paid; Stripe has not yet sent checkout.session.completed."""
    return fake_stripe.pay(start_checkout(client_for(owner), team, pack))


def session_lookups(fake_stripe) -> int:
    return sum(
        request["path"].startswith("/v1/checkout/sessions?") for request in fake_stripe.requests
    )


def refunds() -> list[int]:
    return [entry.available_delta for entry in LedgerEntry.objects.filter(kind="refund")]


def test_refunds_in_order_claw_back_only_the_newly_refunded_part(
    fake_stripe, owner, team, pack, client_for, client
):
    session = paid_checkout(fake_stripe, client_for, owner, team, pack)
    deliver(client, "checkout.session.completed", session)
    quarter = fake_stripe.refund(session["id"], 250)
    assert deliver(client, "charge.refunded", quarter).content == b"refund applied"
    assert wallet_balance(team) == (7_500, 0)
    deliver(client, "charge.refunded", quarter)  # same running total in another event
    assert wallet_balance(team) == (7_500, 0)
    deliver(client, "charge.refunded", fake_stripe.refund(session["id"], 350))
    assert wallet_balance(team) == (4_000, 0)
    deliver(client, "charge.refunded", quarter)  # the older one, late
    assert wallet_balance(team) == (4_000, 0)
    assert sorted(refunds()) == [-3_500, -2_500]
    assert session_lookups(fake_stripe) == 0  # the completed session named the payment


def test_refund_before_completion_leaves_no_credits(
    fake_stripe, owner, team, pack, client_for, client
):
    fund(team, 1)
    session = paid_checkout(fake_stripe, client_for, owner, team, pack)
    full = fake_stripe.refund(session["id"], 1000)
    assert deliver(client, "charge.refunded", full).status_code == 200
    purchase = Purchase.objects.get()
    # Stripe said which session the charge's payment intent belongs to.
    assert session_lookups(fake_stripe) == 1
    assert (purchase.payment_intent, purchase.amount_refunded) == (session["payment_intent"], 1000)
    assert wallet_balance(team) == (1, 0)
    assert deliver(client, "checkout.session.completed", session).status_code == 200
    assert wallet_balance(team) == (1, 0)
    assert Purchase.objects.get().credits_clawed_back == 10_000
    assert refunds() == [-10_000]
    # The success page after the fact credits nothing either.
    success = f"{reverse('billing-bought', args=[team.slug])}?session_id={session['id']}"
    client_for(owner).get(success)
    assert wallet_balance(team) == (1, 0)


def test_partial_refund_before_completion_takes_back_its_share(
    fake_stripe, owner, team, pack, client_for, client
):
    session = paid_checkout(fake_stripe, client_for, owner, team, pack)
    deliver(client, "charge.refunded", fake_stripe.refund(session["id"], 250))
    deliver(client, "checkout.session.completed", session)
    assert wallet_balance(team) == (7_500, 0)
    deliver(client, "charge.refunded", fake_stripe.refund(session["id"], 350))
    assert wallet_balance(team) == (4_000, 0)
    assert sorted(refunds()) == [-3_500, -2_500]


def test_replayed_events_in_any_order_apply_once(
    fake_stripe, owner, team, pack, client_for, client, django_capture_on_commit_callbacks
):
    owner.email = "olivia@example.com"
    owner.save()
    session = paid_checkout(fake_stripe, client_for, owner, team, pack)
    refund = fake_stripe.refund(session["id"], 400)
    dispute = fake_stripe.dispute(session["id"])
    deliveries = [
        ("charge.refunded", refund, "evt_refund"),
        ("charge.dispute.created", dispute, "evt_dispute"),
        ("checkout.session.completed", session, "evt_completed"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            for event_type, obj, event_id in deliveries:
                assert deliver(client, event_type, obj, event_id=event_id).status_code == 200
    assert session_lookups(fake_stripe) == 1  # replays do not ask Stripe again
    assert StripeEvent.objects.count() == 3
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1
    assert refunds() == [-4_000]
    assert wallet_balance(team) == (6_000, 0)
    assert Wallet.objects.get(team=team).frozen
    assert [message.subject for message in mail.outbox] == [f"{team.name}: credits frozen"]


def frozen_state(team) -> tuple:
    wallet = Wallet.objects.get(team=team)
    return wallet.available, wallet.held, wallet.frozen, wallet.frozen_reason


@pytest.mark.parametrize("order", ["completed first", "dispute first"])
def test_dispute_freezes_the_wallet_whichever_event_comes_first(
    fake_stripe,
    owner,
    team,
    pack,
    client_for,
    client,
    order,
    django_capture_on_commit_callbacks,
):
    owner.email = "olivia@example.com"
    owner.save()
    session = paid_checkout(fake_stripe, client_for, owner, team, pack)
    dispute = fake_stripe.dispute(session["id"])
    events = [("checkout.session.completed", session), ("charge.dispute.created", dispute)]
    if order == "dispute first":
        events.reverse()
    with django_capture_on_commit_callbacks(execute=True):
        for event_type, obj in events:
            assert deliver(client, event_type, obj).status_code == 200
    assert frozen_state(team) == (10_000, 0, True, "a card payment is disputed")
    assert Purchase.objects.get().disputed is not None
    assert [message.subject for message in mail.outbox] == [f"{team.name}: credits frozen"]
    with pytest.raises(Refusal) as refused, transaction.atomic():
        hold_place(team=team, member=owner, tier="flash", size="512", count=1, key="after")
    assert refused.value.code == "frozen"
    page = client_for(owner).get(reverse("team", args=[team.slug])).content.decode()
    assert "frozen" in page


def test_refund_of_spent_credits_freezes_and_tells_owners(
    fake_stripe, owner, team, pack, client_for, client, django_capture_on_commit_callbacks
):
    owner.email = "olivia@example.com"
    owner.save()
    session = paid_checkout(fake_stripe, client_for, owner, team, pack)
    deliver(client, "checkout.session.completed", session)
    with transaction.atomic():
        hold_place(team=team, member=owner, tier="pro", size="4K", count=30, key="spent")  # 7,200
    with django_capture_on_commit_callbacks(execute=True):
        refunded = fake_stripe.refund(session["id"], 1000)
        assert deliver(client, "charge.refunded", refunded).status_code == 200
    wallet = Wallet.objects.get(team=team)
    assert (wallet.available, wallet.held, wallet.frozen) == (0, 7_200, True)
    assert "refund" in wallet.frozen_reason
    assert any("frozen" in message.subject for message in mail.outbox)
    assert mail.outbox[-1].to == ["olivia@example.com"]
    with pytest.raises(Refusal) as refused, transaction.atomic():
        hold_place(team=team, member=owner, tier="flash", size="512", count=1, key="after")
    assert refused.value.code == "frozen"


def test_refund_before_a_delayed_payment_clears_is_applied_when_it_does(
    fake_stripe, owner, team, pack, client_for, client
):
    session_id = start_checkout(client_for(owner), team, pack)
    deliver(client, "checkout.session.completed", fake_stripe.pay_later(session_id))
    cleared = fake_stripe.clear(session_id)
    deliver(client, "charge.refunded", fake_stripe.refund(session_id, 500))
    assert session_lookups(fake_stripe) == 0  # the completed session had linked it
    assert wallet_balance(team) == (0, 0)
    deliver(client, "checkout.session.async_payment_succeeded", cleared)
    assert wallet_balance(team) == (5_000, 0)


def test_refund_and_dispute_of_a_payment_that_is_not_ours_are_ignored(
    fake_stripe, owner, team, pack, client_for, client
):
    foreign = {"id": "ch_other", "object": "charge", "payment_intent": "pi_other", "amount": 500}
    response = deliver(client, "charge.refunded", {**foreign, "amount_refunded": 500})
    assert (response.status_code, response.content) == (200, b"refund ignored")
    dispute = {"id": "dp_other", "object": "dispute", "charge": "ch_other"}
    response = deliver(client, "charge.dispute.created", {**dispute, "payment_intent": "pi_other"})
    assert (response.status_code, response.content) == (200, b"dispute ignored")
    assert not Wallet.objects.filter(frozen=True).exists()
    assert ledger_count() == 0


def test_refund_while_stripe_cannot_answer_waits_for_the_retry(
    fake_stripe, owner, team, pack, client_for, client
):
    session = paid_checkout(fake_stripe, client_for, owner, team, pack)
    refund = fake_stripe.refund(session["id"], 1000)
    fake_stripe.fail_next("garbage")
    response = deliver(client, "charge.refunded", refund, event_id="evt_wait")
    assert response.status_code == 503  # not 2xx: Stripe delivers the same event again
    assert not StripeEvent.objects.exists()
    assert deliver(client, "charge.refunded", refund, event_id="evt_wait").status_code == 200
    deliver(client, "checkout.session.completed", session)
    assert wallet_balance(team) == (0, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_refund_racing_its_completion_and_its_own_retry_applies_once(
    fake_stripe, owner, team, pack, client_for
):
    """Stripe delivers concurrently too: the completion, the refund and a retry at once."""
    if connection.vendor != "postgresql":
        pytest.skip("Needs PostgreSQL (set DATABASE_URL=postgres://…) for racing writers.")
    rounds = 5
    for round_ in range(rounds):
        session = paid_checkout(fake_stripe, client_for, owner, team, pack)
        refund = fake_stripe.refund(session["id"], 1000 if round_ % 2 else 400)
        deliveries = [
            ("checkout.session.completed", session, f"evt_completed_{round_}"),
            ("charge.refunded", refund, f"evt_refund_{round_}"),
            ("charge.refunded", refund, f"evt_refund_{round_}"),
        ]
        results = run_threads(
            3, lambda i, d=deliveries: deliver(Client(), d[i][0], d[i][1], event_id=d[i][2])
        )
        assert [response.status_code for response in results] == [200, 200, 200], results
    refunded = 10_000 * (rounds // 2) + 4_000 * (rounds - rounds // 2)
    assert wallet_balance(team) == (10_000 * rounds - refunded, 0)
    assert LedgerEntry.objects.filter(kind="refund").count() == rounds
    assert LedgerEntry.objects.filter(kind="purchase").count() == rounds


# Stripe unreachable, or answering garbage, when the checkout starts.


def test_checkout_retries_garbage_with_the_same_idempotency_key(
    fake_stripe, owner, team, pack, client_for
):
    fake_stripe.fail_next("garbage", "garbage")
    session_id = start_checkout(client_for(owner), team, pack)
    tries = checkout_tries(fake_stripe)
    assert (len(tries), len(set(tries))) == (3, 1)
    assert list(fake_stripe.sessions) == [session_id]  # one session, however many tries
    assert Purchase.objects.get().session_id == session_id


def checkout_tries(fake_stripe) -> list[str]:
    """The idempotency key of every session create request Stripe received."""
    return [
        request["headers"]["Idempotency-Key"]
        for request in fake_stripe.requests
        if request["method"] == "POST"
    ]


@pytest.mark.parametrize("faults", [("close", "close"), ("stall",), ("garbage", "close")])
def test_checkout_survives_dropped_and_late_answers(
    fake_stripe, owner, team, pack, client_for, monkeypatch, faults
):
    # Drops and timeouts are retried by the SDK, garbage by the checkout itself,
    # each with the purchase's idempotency key.
    monkeypatch.setattr("billing.purchases.STRIPE_TIMEOUT", 0.3)
    fake_stripe.fail_next(*faults)
    session_id = start_checkout(client_for(owner), team, pack)
    tries = checkout_tries(fake_stripe)
    assert (len(tries), len(set(tries))) == (len(faults) + 1, 1)
    assert list(fake_stripe.sessions) == [session_id]


@pytest.mark.parametrize("fault", ["garbage", "close"])
def test_checkout_that_stripe_never_answers_says_so_in_words(
    fake_stripe, owner, team, pack, client_for, fault
):
    fake_stripe.fail_next(fault, fault, fault)
    response = client_for(owner).post(
        reverse("billing-buy", args=[team.slug]), {"pack": pack.pk}, follow=True
    )
    page = response.content.decode()
    assert response.redirect_chain == [(reverse("billing", args=[team.slug]), 302)]
    assert "did not answer properly" in page and "Nothing was charged" in page
    assert "Invalid response body" not in page and "HTTP response code" not in page
    assert "Connection" not in page and "stripe.com" not in page
    assert ledger_count() == 0
    # Trying again later is a new purchase attempt, and it goes through.
    start_checkout(client_for(owner), team, pack)
    assert Purchase.objects.filter(session_id__isnull=False).count() == 1


def test_checkout_stripe_refuses_tells_the_owner_to_ask_the_studio(
    fake_stripe, owner, team, pack, client_for
):
    fake_stripe.fail_next("unauthorized")
    response = client_for(owner).post(
        reverse("billing-buy", args=[team.slug]), {"pack": pack.pk}, follow=True
    )
    page = response.content.decode()
    assert "Card payments are not working on this studio" in page
    assert "Invalid API Key" not in page and "sk_test" not in page
    assert len(checkout_tries(fake_stripe)) == 1  # asking again would not help
