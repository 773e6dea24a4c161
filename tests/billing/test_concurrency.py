"""Many people and many workers at once: the balance stays exact and never negative.

Each thread gets its own database connection (Django's connections are per
thread), so these are real concurrent transactions against the test
database, which is why the tests commit (`transaction=True`).
"""

import io
import os
import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from billing.models import Hold, LedgerEntry, Wallet
from billing.selectors import wallet_balance, wallets_reconcile
from billing.services import Refusal, hold_capture, hold_place, hold_release, member_cap_set

from .conftest import fund

# PostgreSQL's default max_connections is 100 and other test runs may share
# the server, so at most this many of the 100 threads hold a connection at
# the same moment; the rest queue for a slot and then race like the others.
PG_CONNECTIONS = int(os.environ.get("BILLING_TEST_PG_CONNECTIONS", "40"))


def run_threads(count: int, work, gate: threading.Semaphore | None = None) -> list:
    """Start `count` threads together; each runs work(i) on its own connection."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def run(i):
        start.wait()
        try:
            if gate:
                with gate:
                    results[i] = work(i)
            else:
                results[i] = work(i)
        except Exception as error:  # reported, not swallowed: the test asserts on it
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def place(team, member, key):
    try:
        with transaction.atomic():
            hold_place(team=team, member=member, tier="pro", size="1K", count=1, key=key)
        return "held"
    except Refusal as refusal:
        return refusal.code


def reconcile_output() -> str:
    out = io.StringIO()
    call_command("reconcile", stdout=out)
    return out.getvalue().strip()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_100_concurrent_holds_with_credit_for_10(team, owner):
    if connection.vendor != "postgresql":
        pytest.skip(
            "Needs PostgreSQL (set DATABASE_URL=postgres://…): SQLite lets one writer in at a "
            "time, so concurrent holds cannot race there."
        )
    fund(team, 10 * 134)
    results = run_threads(
        100, lambda i: place(team, owner, f"race-{i}"), threading.Semaphore(PG_CONNECTIONS)
    )
    assert results.count("held") == 10, results
    assert results.count("credits") == 90, [r for r in results if r not in ("held", "credits")]
    wallet = Wallet.objects.get(team=team)
    assert (wallet.available, wallet.held) == (0, 1_340)
    assert Hold.objects.count() == 10
    assert all(check.ok for check in wallets_reconcile())

    # Each capture and each release delivered three times at once: only the first counts.
    holds = list(Hold.objects.order_by("id"))

    def settle(i):
        hold = holds[i // 3]
        if hold.pk % 2:
            return ("capture", hold_capture(hold_id=hold.pk, images=1, key=f"done-{hold.pk}"))
        return ("release", hold_release(hold_id=hold.pk, images=1, key=f"failed-{hold.pk}"))

    results = run_threads(30, settle)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert sum(1 for _kind, moved in results if moved) == 10
    captured = sum(1 for hold in holds if hold.pk % 2)
    wallet.refresh_from_db()
    assert (wallet.available, wallet.held) == ((10 - captured) * 134, 0)
    assert LedgerEntry.objects.filter(kind__in=["capture", "release"]).count() == 10
    report = reconcile_output()
    print(f"\nreconcile after 100 concurrent holds and 30 settlements: {report}")
    assert "0 mismatched" in report


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_submitters_never_see_database_is_locked(team, owner, teammate):
    fund(team, 100_000)
    members = [owner, teammate]

    def submit_and_settle(i):
        with transaction.atomic():
            hold = hold_place(
                team=team, member=members[i % 2], tier="flash", size="1K", count=4, key=f"s-{i}"
            )
        assert hold_capture(hold_id=hold.pk, images=3, key=f"s-{i}-ok")
        assert hold_release(hold_id=hold.pk, images=1, key=f"s-{i}-failed")
        return "done"

    for _round in range(3):
        results = run_threads(8, lambda i, r=_round: submit_and_settle(i + 8 * r))
        assert results == ["done"] * 8, results
    assert wallet_balance(team) == (100_000 - 24 * 3 * 67, 0)
    assert "0 mismatched" in reconcile_output()


def needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("Needs PostgreSQL (set DATABASE_URL=postgres://…) for racing writers.")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_holds_of_a_capped_member_stop_exactly_at_the_cap(team, owner, teammate):
    """Caps are read under the wallet row's lock, which the balance UPDATE takes first."""
    needs_postgres()
    fund(team, 100_000)
    member_cap_set(team=team, member=teammate, period="day", tier="pro", credits=5 * 134)
    results = run_threads(
        30, lambda i: place(team, teammate, f"capped-{i}"), threading.Semaphore(PG_CONNECTIONS)
    )
    assert results.count("held") == 5, results
    assert results.count("member_cap") == 25, results
    assert wallet_balance(team) == (100_000 - 5 * 134, 5 * 134)
    assert all(check.ok for check in wallets_reconcile())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_hold_key_racing_takes_one_hold(team, owner):
    needs_postgres()
    fund(team, 10_000)

    def same(_i):
        with transaction.atomic():
            return hold_place(
                team=team, member=owner, tier="pro", size="1K", count=2, key="one-batch"
            ).pk

    results = run_threads(12, same, threading.Semaphore(PG_CONNECTIONS))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1 and Hold.objects.count() == 1
    assert wallet_balance(team) == (10_000 - 268, 268)
    assert LedgerEntry.objects.filter(kind="hold").count() == 1
