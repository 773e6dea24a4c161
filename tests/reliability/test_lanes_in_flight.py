"""Lanes at the speed of the models: many renders in flight per worker, within
each provider's quota, shared by every worker through Redis.

Real lane workers (threads pool) render against the fake Gemini server with
a latency and, where a test says so, a quota it enforces with 429s.
"""

from __future__ import annotations

import time

import pytest

from generation.models import Generation, Status
from tests.fakes.gemini_server import FakeGemini

from .conftest import (
    assert_books_balance,
    assert_every_job_settled,
    fund,
    submit,
    wait_until_finished,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def gemini(settings):
    with FakeGemini(record_bodies=False) as fake:
        settings.FLASH_PROVIDER = "gemini"
        settings.GEMINI_API_BASE = fake.url
        settings.GEMINI_API_KEY = fake.api_key
        yield fake


def overlap(fake: FakeGemini) -> int:
    """The most generate requests the fake held open at any moment."""
    return fake.peak_in_flight


def test_a_50_image_grid_is_in_flight_at_once(owner, team, gemini, lane_workers):
    gemini.latency = 4.0
    fund(team, owner)
    lane_workers.start("flash", concurrency=50)
    batch = submit(team, owner, count=50, prompt="fifty drafts at once")
    wait_until_finished([batch], timeout=120)

    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    # One worker process kept the whole grid open at the provider together.
    assert overlap(gemini) == 50
    assert_every_job_settled([batch])
    assert_books_balance()


def test_the_in_flight_quota_holds_across_two_worker_processes(
    owner, team, gemini, lane_workers, settings
):
    gemini.latency = 0.5
    gemini.max_in_flight = 4  # the provider refuses a fifth at once with 429
    fund(team, owner)
    for name in ("flash", "flash-2"):
        lane_workers.start("flash", concurrency=10, name=name, GEMINI_MAX_IN_FLIGHT="4")
    batch = submit(team, owner, count=24, prompt="two hosts one key")
    wait_until_finished([batch], timeout=120)

    assert gemini.peak_in_flight == 4
    assert gemini.throttled == 0, "the shared quota let more through than the key allows"
    assert Generation.objects.filter(batch=batch, status=Status.SUCCEEDED).count() == 24
    assert_books_balance()


def test_a_429_backs_off_every_worker_then_the_window_grows_back(
    owner, team, gemini, lane_workers, settings
):
    """No quota configured: the provider's 429s alone narrow what is sent."""
    gemini.latency = 0.5
    gemini.max_in_flight = 3
    fund(team, owner)
    lane_workers.start(
        "flash", concurrency=12, GENERATION_MAX_ATTEMPTS="8", GENERATION_RETRY_BASE_SECONDS="0.2"
    )
    batch = submit(team, owner, count=30, prompt="the key is smaller than the pool")
    wait_until_finished([batch], timeout=180)

    assert Generation.objects.filter(batch=batch, status=Status.SUCCEEDED).count() == 30
    assert gemini.throttled > 0
    # One burst is refused (up to 12 - 3), then a few probes above the limit
    # (about 15 in all on a quiet machine); the whole pool sends fewer instead
    # of every job finding the limit on its own, which costs several each.
    assert gemini.throttled < 40, f"{gemini.throttled} refusals for 30 images: a retry storm"
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_provider_that_answers_429_to_everything_is_not_stormed(
    owner, team, gemini, lane_workers
):
    gemini.default_scenario = "429"
    gemini.retry_after = "1"
    fund(team, owner)
    lane_workers.start(
        "flash",
        concurrency=20,
        GEMINI_REQUESTS_PER_MINUTE="120",
        GENERATION_MAX_ATTEMPTS="3",
        GENERATION_RETRY_BASE_SECONDS="0.2",
    )
    started = time.monotonic()
    batch = submit(team, owner, count=20, prompt="the quota is spent")
    wait_until_finished([batch], timeout=180)
    elapsed = time.monotonic() - started

    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.FAILED
    }
    attempts = len(gemini.generate_requests())
    assert attempts == 60  # each image tried 3 times, no more
    # 120 a minute with a 2-request burst, and a shared pause after each 429:
    # 60 attempts cannot be sent in less than about half a minute.
    assert elapsed >= (attempts - 2) / 2 * 0.9, f"{attempts} attempts in {elapsed:.1f} s"
    error = Generation.objects.filter(batch=batch).first().error
    assert error.count("retried") == 0 and "Gave up after 3 attempts" in error
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_provider_that_never_answers_frees_its_slot_by_the_deadline(
    owner, team, gemini, lane_workers
):
    from generation import quotas

    gemini.default_scenario = "slow"
    gemini.slow_seconds = 600
    fund(team, owner)
    lane_workers.start(
        "flash",
        concurrency=4,
        RENDER_DEADLINE_SECONDS="2",
        GENERATION_MAX_ATTEMPTS="2",
        GENERATION_RETRY_BASE_SECONDS="0.2",
        GEMINI_MAX_IN_FLIGHT="4",
    )
    batch = submit(team, owner, count=3, prompt="a hung gateway")
    wait_until_finished([batch], timeout=60)

    rows = list(Generation.objects.filter(batch=batch))
    assert {g.status for g in rows} == {Status.FAILED}
    assert all(
        g.error == "Gemini did not answer in time. Gave up after 2 attempts. Nothing was charged."
        for g in rows
    ), rows[0].error
    state = quotas.state(quotas.credential_for("gemini"))
    assert state is not None and state.in_flight == 0, "a hung render kept its quota slot"
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_worker_killed_with_renders_in_flight_reruns_or_releases_each_once(
    owner, team, gemini, lane_workers, settings
):
    gemini.latency = 3.0
    settings.GENERATION_LEASE_SECONDS = 6
    lane_workers.env.update(GENERATION_LEASE_SECONDS="6")
    fund(team, owner)
    lane_workers.start("flash", concurrency=50)
    batch = submit(team, owner, count=40, prompt="killed in flight")
    deadline = time.monotonic() + 60
    while gemini.in_flight < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gemini.in_flight >= 30
    lane_workers.kill("flash", 9)
    assert Generation.objects.filter(batch=batch, status=Status.RUNNING).count() >= 30

    lane_workers.start("flash", concurrency=50)
    wait_until_finished([batch], timeout=150, sweep=True, every=1.0)

    assert not Generation.objects.filter(status=Status.RUNNING).exists()
    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) <= {
        Status.SUCCEEDED,
        Status.FAILED,
    }
    assert Generation.objects.filter(batch=batch, attempts__gte=2).count() >= 30
    assert_every_job_settled([batch])
    assert_books_balance()
    from billing.selectors import wallet_balance

    assert wallet_balance(team)[1] == 0


def test_teams_share_a_saturated_quota_fairly(owner, team, stranger, gemini, lane_workers):
    """Team A's long grid does not starve team B's small one behind the quota."""
    gemini.latency = 0.5
    other_team = stranger.teams.get()
    fund(team, owner)
    fund(other_team, stranger)
    lane_workers.start("flash", concurrency=12, GEMINI_MAX_IN_FLIGHT="2")
    big = submit(team, owner, count=40, prompt="a long campaign")
    while Generation.objects.filter(batch=big, status=Status.SUCCEEDED).count() < 4:
        time.sleep(0.05)
    small = submit(other_team, stranger, count=4, prompt="a small grid")
    wait_until_finished([small], timeout=120)

    last_small_start = max(g.started_at for g in Generation.objects.filter(batch=small))
    big_started_meanwhile = Generation.objects.filter(
        batch=big, started_at__gt=small.created, started_at__lt=last_small_start
    ).count()
    # Round-robin between members under a quota of 2: B's four alternate
    # with A's, so A starts about as many as B in that time, not 30.
    assert big_started_meanwhile <= 4 + 2, big_started_meanwhile
    wait_until_finished([big], timeout=120)
    assert gemini.throttled == 0
    assert_books_balance()
