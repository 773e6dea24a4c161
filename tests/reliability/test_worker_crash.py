"""A lane's worker is SIGKILLed mid-batch and started again: nothing is lost or charged twice."""

import time

import pytest

from generation import lanes
from generation.models import Generation, Status

from .conftest import (
    assert_books_balance,
    assert_every_job_settled,
    fund,
    submit,
    wait_until_finished,
)


@pytest.mark.slow
def test_sigkill_mid_batch_then_restart(owner, team, lane_workers, settings):
    settings.OFFLINE_FLASH_LATENCY = 0.2
    settings.GENERATION_LEASE_SECONDS = 3
    lane_workers.env.update(OFFLINE_FLASH_LATENCY="0.2", GENERATION_LEASE_SECONDS="3")
    fund(team, owner)
    lane_workers.start("flash", concurrency=2)
    batch = submit(team, owner, count=20, prompt="crash test harbour")

    # Wait until the batch is under way, then kill the whole process group.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = Generation.objects.filter(batch=batch, status=Status.SUCCEEDED).count()
        running = Generation.objects.filter(batch=batch, status=Status.RUNNING).count()
        if done >= 3 and running:
            break
        time.sleep(0.05)
    lane_workers.kill("flash", 9)
    assert Generation.objects.filter(batch=batch).exclude(status=Status.SUCCEEDED).exists(), (
        "the batch finished before the kill; raise the latency"
    )

    lane_workers.start("flash", concurrency=2)
    # The restarted worker drains what the broker redelivers; the sweeper
    # re-queues jobs whose lease died with the old worker.
    wait_until_finished([batch], timeout=150, sweep=True, every=1.0)

    assert not Generation.objects.filter(status=Status.RUNNING).exists()
    final = list(Generation.objects.filter(batch=batch).values_list("status", flat=True))
    assert set(final) <= {Status.SUCCEEDED, Status.FAILED}
    assert_every_job_settled([batch])
    assert_books_balance()
    # Nothing stays held once every job has ended.
    from billing.selectors import wallet_balance

    assert wallet_balance(team)[1] == 0


def test_a_job_whose_worker_vanished_is_requeued_and_runs_once(owner, team, transactional_db):
    """The sweeper half alone, without processes: expired lease -> queued -> one capture."""
    from generation.tasks import run_lane

    fund(team, owner)
    batch = submit(team, owner, count=1)
    claimed = lanes.claim_next("flash")
    assert claimed is not None
    Generation.objects.filter(pk=claimed.pk).update(lease_until="2000-01-01T00:00:00Z")
    assert lanes.sweep()["requeued"] == 1
    assert run_lane("flash") == claimed.pk
    assert run_lane("flash") is None
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_job_that_keeps_killing_workers_fails_and_is_released(owner, team, db, settings):
    settings.GENERATION_MAX_ATTEMPTS = 2
    fund(team, owner)
    batch = submit(team, owner, count=1)
    for _ in range(2):
        claimed = lanes.claim_next("flash")
        assert claimed is not None
        Generation.objects.filter(pk=claimed.pk).update(lease_until="2000-01-01T00:00:00Z")
        lanes.sweep()
    generation = batch.generations.get()
    assert generation.status == Status.FAILED
    assert "Nothing was charged" in generation.error
    assert_every_job_settled([batch])
    assert_books_balance()
