"""The generation engine: real workers of both lanes, the real Redis, the offline renderer."""

import time

import pytest
from django.core.files.storage import default_storage

from billing.selectors import wallet_balance
from billing.services import wallet_top_up
from generation import lanes
from generation.imaging import read_metadata
from generation.models import Batch, Generation, Status
from generation.requests import parse_batch_request
from generation.services import (
    SubmitRefused,
    batch_cancel,
    batch_submit,
    generation_promote,
)
from generation.tasks import run_lane

FLASH_1K = 67
PRO_4K = 240


def fund(team, owner, amount=100_000):
    wallet_top_up(team=team, amount=amount, actor=owner, note="test", idempotency_key=f"t:{amount}")


def submit(team, member, **fields):
    data = {"prompt": "a red fox in snow", "tier": "flash", "size": "1K", "aspect": "16:9",
            "count": 4, **fields}  # fmt: skip
    return batch_submit(team=team, member=member, request=parse_batch_request(data))


def wait_for(batch, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = list(Generation.objects.filter(batch=batch).values_list("status", flat=True))
        if statuses and all(s not in (Status.QUEUED, Status.RUNNING) for s in statuses):
            return statuses
        time.sleep(0.2)
    raise AssertionError(f"batch {batch.pk} did not finish: {statuses}")


@pytest.mark.slow
def test_a_grid_completes_and_charges_exactly_its_images(owner, team, both_lanes):
    fund(team, owner)
    batch = submit(team, owner, count=6, seed=1000)
    assert wallet_balance(team) == (100_000 - 6 * FLASH_1K, 6 * FLASH_1K)

    assert wait_for(batch) == [Status.SUCCEEDED] * 6
    assert wallet_balance(team) == (100_000 - 6 * FLASH_1K, 0)
    generations = list(batch.generations.select_related("asset"))
    assert [g.seed for g in generations] == list(range(1000, 1006))
    first = generations[0]
    assert (first.asset.width, first.asset.height) == (1344, 768)
    assert first.credits_charged == FLASH_1K
    meta = read_metadata(default_storage.open(first.asset.original.name).read())
    assert (
        meta["prompt"] == "a red fox in snow" and meta["seed"] == 1000 and meta["tier"] == "flash"
    )
    assert default_storage.exists(first.asset.thumbnail.name)
    assert default_storage.exists(first.asset.preview.name)


@pytest.mark.slow
def test_promote_renders_pro_with_lineage_and_the_draft_as_reference(owner, team, both_lanes):
    fund(team, owner)
    drafts = submit(team, owner, count=2, seed=7)
    wait_for(drafts)
    ids = list(drafts.generations.values_list("pk", flat=True))
    promotion = generation_promote(team=team, member=owner, generation_ids=ids, size="4K")
    assert promotion.tier == "pro" and promotion.is_promotion
    assert wait_for(promotion, timeout=120) == [Status.SUCCEEDED] * 2
    for pro in promotion.generations.select_related("asset", "parent"):
        assert pro.parent_id in ids
        assert (pro.prompt, pro.seed, pro.aspect) == (pro.parent.prompt, pro.parent.seed, "16:9")
        assert (pro.asset.width, pro.asset.height) == (5376, 3072)
        meta = read_metadata(default_storage.open(pro.asset.original.name).read())
        assert meta["parent"] == pro.parent.asset.sha256
    assert wallet_balance(team) == (100_000 - 2 * FLASH_1K - 2 * PRO_4K, 0)


def test_a_duplicate_token_changes_nothing(owner, team, transactional_db):
    fund(team, owner)
    batch = submit(team, owner, count=1)
    assert run_lane("flash") is not None
    available = wallet_balance(team)
    assert run_lane("flash") is None  # a second delivery finds nothing to do
    assert wallet_balance(team) == available
    generation = batch.generations.get()
    assert generation.status == Status.SUCCEEDED and generation.attempts == 1


def test_a_late_finish_after_the_lease_moved_on_is_dropped(owner, team, transactional_db):
    from generation.rendering import generation_succeed

    fund(team, owner)
    batch = submit(team, owner, count=1)
    claimed = lanes.claim_next("flash")
    # The lease expires, the sweeper re-queues, another worker claims attempt 2.
    Generation.objects.filter(pk=claimed.pk).update(lease_until="2000-01-01T00:00:00Z")
    lanes.sweep()
    second = lanes.claim_next("flash")
    assert second.pk == claimed.pk and second.attempts == 2
    # The first worker wakes up and tries to finish: nothing happens.
    assert generation_succeed(claimed, asset=None, usage={}, attempt=1) is False
    assert wallet_balance(team)[1] == FLASH_1K  # still held, not captured
    assert batch.generations.get().status == Status.RUNNING


def test_fairness_a_single_image_overtakes_a_fifty_image_grid(owner, teammate, team, db):
    fund(team, owner)
    big = submit(team, owner, count=50)
    small = submit(team, teammate, count=1)
    # Lane concurrency C=1: one of the grid's images is running already.
    first = lanes.claim_next("flash")
    assert first.batch_id == big.pk
    second = lanes.claim_next("flash")
    assert second.batch_id == small.pk, "the teammate's image waited behind the grid"


@pytest.mark.slow
def test_fairness_with_real_workers(owner, teammate, team, lane_workers, settings):
    settings.OFFLINE_FLASH_LATENCY = 0.1
    lane_workers.start("flash", concurrency=2)
    fund(team, owner)
    big = submit(team, owner, count=50, size="512", aspect="1:1")
    time.sleep(0.3)
    small = submit(team, teammate, count=1, size="512", aspect="1:1")
    wait_for(small)
    mine = Generation.objects.get(batch=small)
    before = Generation.objects.filter(batch=big, started_at__lt=mine.started_at).count()
    started_when_submitted = Generation.objects.filter(
        batch=big, started_at__lt=small.created
    ).count()
    # At most C+1 job slots pass between the submit and the start.
    assert before - started_when_submitted <= 2 + 1
    batch_cancel(batch=big)


def test_cancel_releases_queued_images(owner, team, db):
    fund(team, owner)
    batch = submit(team, owner, count=5)
    running = lanes.claim_next("flash")
    assert batch_cancel(batch=batch) == 4
    statuses = sorted(batch.generations.values_list("status", flat=True))
    assert statuses == [Status.CANCELED] * 4 + [Status.RUNNING]
    assert wallet_balance(team) == (100_000 - FLASH_1K, FLASH_1K)
    assert running.status == Status.RUNNING
    assert batch_cancel(batch=batch) == 0  # twice changes nothing
    assert wallet_balance(team) == (100_000 - FLASH_1K, FLASH_1K)


def test_cache_serves_an_identical_request_at_zero_credits(owner, team, transactional_db):
    fund(team, owner)
    first = submit(team, owner, count=2, seed=42)
    while run_lane("flash"):
        pass
    spent = wallet_balance(team)
    again = submit(team, owner, count=2, seed=42)
    assert wallet_balance(team) == spent
    hits = list(again.generations.all())
    assert all(g.cached and g.status == Status.SUCCEEDED and g.credits_charged == 0 for g in hits)
    assert {g.asset_id for g in hits} == set(first.generations.values_list("asset_id", flat=True))

    fresh = submit(team, owner, count=2, seed=42, fresh="on")
    assert not fresh.generations.filter(cached=True).exists()
    assert wallet_balance(team)[1] == 2 * FLASH_1K


def test_promoting_a_draft_that_is_not_finished_is_refused(owner, team, db):
    fund(team, owner)
    batch = submit(team, owner, count=1)
    with pytest.raises(SubmitRefused, match="finished drafts"):
        generation_promote(
            team=team, member=owner, generation_ids=[batch.generations.get().pk], size="2K"
        )
    assert Batch.objects.count() == 1


def test_promoting_another_teams_image_is_refused(owner, team, stranger, transactional_db):
    fund(team, owner)
    batch = submit(team, owner, count=1)
    run_lane("flash")
    their_team = stranger.teams.get()
    with pytest.raises(SubmitRefused) as refused:
        generation_promote(
            team=their_team, member=stranger, generation_ids=[batch.generations.get().pk], size="2K"
        )
    assert refused.value.code == "not_found"


def test_not_enough_credits_creates_nothing(owner, team, db):
    fund(team, owner, amount=100)
    with pytest.raises(SubmitRefused) as refused:
        submit(team, owner, count=4)
    assert refused.value.code == "credits"
    assert "268" in refused.value.message.replace(",", "")
    assert not Batch.objects.exists() and not Generation.objects.exists()
    assert wallet_balance(team) == (100, 0)


def test_a_member_cannot_exceed_the_outstanding_cap(owner, team, db, settings):
    settings.LANE_MEMBER_OUTSTANDING_CAP = 10
    fund(team, owner)
    submit(team, owner, count=8)
    with pytest.raises(SubmitRefused) as refused:
        submit(team, owner, count=4)
    assert refused.value.code == "busy" and "limit is 10" in refused.value.message
    assert Generation.objects.count() == 8


def test_sweeper_resends_tokens_lost_with_the_broker(owner, team, db):
    fund(team, owner)
    batch = submit(team, owner, count=3)
    Generation.objects.update(dispatched_at=None, created="2000-01-01T00:00:00Z")
    assert lanes.sweep()["resent"] == 3
    assert batch.generations.filter(dispatched_at__isnull=False).count() == 3


def test_a_second_scheduler_is_harmless_the_sweeper_runs_once_a_period(db):
    """Two beats (one per host, by mistake) send the sweep twice a period: it runs once."""
    from generation.tasks import sweep_leases

    first = sweep_leases()
    second = sweep_leases()
    assert "requeued" in first
    assert second == {"skipped": 1}
