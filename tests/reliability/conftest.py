"""Helpers shared by the reliability tests: credits, waiting, and the books."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.db.models import Count

# Gemini list prices in credits (1 credit = 1/10 US cent). Seeded only where
# the price table is still empty, so a seeded table always wins.
LIST_PRICES = {
    ("flash", "512"): 45,
    ("flash", "1K"): 67,
    ("flash", "2K"): 101,
    ("flash", "4K"): 151,
    ("pro", "1K"): 134,
    ("pro", "2K"): 134,
    ("pro", "4K"): 240,
}


def ensure_prices() -> None:
    from billing.models import Price

    for (tier, size), credits in LIST_PRICES.items():
        Price.objects.get_or_create(tier=tier, size=size, defaults={"credits": credits})


def fund(team, actor, amount: int = 1_000_000) -> None:
    from billing.services import wallet_top_up

    ensure_prices()
    wallet_top_up(
        team=team,
        amount=amount,
        actor=actor,
        note="reliability test",
        idempotency_key=f"r:{team.pk}",
    )


def submit(team, member, **fields):
    from generation.requests import parse_batch_request
    from generation.services import batch_submit

    data = {"prompt": "a lighthouse at dusk", "tier": "flash", "size": "1K", "aspect": "1:1",
            "count": 4, **fields}  # fmt: skip
    return batch_submit(team=team, member=member, request=parse_batch_request(data))


def statuses(batch) -> list[str]:
    from generation.models import Generation

    return list(
        Generation.objects.filter(batch=batch).order_by("index").values_list("status", flat=True)
    )


def wait_until_finished(batches, *, timeout: float = 120, sweep: bool = False, every=0.3):
    """Wait until no job of these batches is queued or running; optionally run the sweeper."""
    from generation import lanes
    from generation.models import OUTSTANDING, Generation

    deadline = time.monotonic() + timeout
    ids = [b.pk for b in batches]
    while time.monotonic() < deadline:
        if not Generation.objects.filter(batch_id__in=ids, status__in=OUTSTANDING).exists():
            return
        if sweep:
            lanes.sweep()
        time.sleep(every)
    left = list(
        Generation.objects.filter(batch_id__in=ids, status__in=OUTSTANDING).values_list(
            "pk", "status", "attempts", "lease_until", "dispatched_at"
        )
    )
    raise AssertionError(f"jobs still outstanding after {timeout} s: {left}")


def assert_books_balance() -> None:
    """`manage.py reconcile` exits 0, and no generation was captured twice or both ways."""
    from billing.models import LedgerEntry

    try:
        call_command("reconcile")
    except SystemExit as exit_:  # pragma: no cover - the command raises CommandError instead
        raise AssertionError(f"reconcile exited {exit_.code}")
    per_key = (
        LedgerEntry.objects.filter(kind__in=["capture", "release"])
        .values("idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not list(per_key), "a settlement key was written twice"


def assert_every_job_settled(batches) -> None:
    """Succeeded jobs were captured exactly once; all others released exactly once."""
    from billing.models import LedgerEntry
    from generation.models import Generation, Status

    keys = set(
        LedgerEntry.objects.filter(kind__in=["capture", "release"]).values_list(
            "idempotency_key", flat=True
        )
    )
    for g in Generation.objects.filter(batch__in=batches).exclude(cached=True):
        captured = f"capture:gen:{g.pk}:capture" in keys
        released = f"release:gen:{g.pk}:release" in keys
        if g.status == Status.SUCCEEDED:
            assert captured and not released, (g.pk, g.status, captured, released)
        else:
            assert g.status in (Status.FAILED, Status.BLOCKED, Status.CANCELED), (g.pk, g.status)
            assert released and not captured, (g.pk, g.status, captured, released)


@pytest.fixture
def funded(owner, team):
    fund(team, owner)
    return team
