"""Every fault the fake Gemini server can play ends in the right state, credits and words.

The lane runs in this process (`run_lane`, exactly what a worker runs) so
the whole HTTP path to the fake server is real while the test stays fast;
one case also goes through a real worker process.
"""

import time

import pytest

from billing.selectors import wallet_balance
from generation.models import Generation, Status
from generation.tasks import run_lane
from tests.fakes.gemini_server import FakeGemini

from .conftest import LIST_PRICES, assert_books_balance, assert_every_job_settled, fund, submit

PRICE = LIST_PRICES[("flash", "1K")]

# scenario in the prompt -> (final status, attempts, words the person reads)
CASES = {
    "ok": (Status.SUCCEEDED, 1, ""),
    "thought": (Status.SUCCEEDED, 1, ""),
    "429*1": (Status.SUCCEEDED, 2, ""),
    "500*2": (Status.SUCCEEDED, 3, ""),
    "503*1": (Status.SUCCEEDED, 2, ""),
    "504*1": (Status.SUCCEEDED, 2, ""),
    "500": (Status.FAILED, 3, "Nothing was charged"),
    "503": (Status.FAILED, 3, "Nothing was charged"),
    "400": (Status.FAILED, 1, ""),
    "403": (Status.FAILED, 1, "key"),
    "failed_precondition": (Status.FAILED, 1, "billing"),
    "404": (Status.FAILED, 1, "model"),
    "blocked": (Status.BLOCKED, 1, ""),
    "image_safety": (Status.BLOCKED, 1, ""),
    "no_image": (Status.FAILED, 1, ""),
    "malformed": (Status.FAILED, 1, ""),
    "not_image": (Status.FAILED, 1, ""),
}


@pytest.fixture
def gemini(settings):
    with FakeGemini(retry_after="1") as fake:
        settings.FLASH_PROVIDER = "gemini"
        settings.GEMINI_API_BASE = fake.url
        settings.GEMINI_API_KEY = fake.api_key
        settings.FLASH_MODEL = "gemini-3.1-flash-image"
        settings.GENERATION_MAX_ATTEMPTS = 3
        settings.GENERATION_RETRY_BASE_SECONDS = 0.05
        yield fake


def drain(lane: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while Generation.objects.filter(tier=lane, status__in=[Status.QUEUED, Status.RUNNING]).exists():
        assert time.monotonic() < deadline, "the lane did not drain"
        if run_lane(lane) is None:
            time.sleep(0.1)  # a retry waits for its backoff (or the Retry-After)


def understandable(message: str) -> bool:
    return (
        bool(message) and len(message) < 600 and "Traceback" not in message and "{" not in message
    )


def test_each_provider_fault_ends_in_the_right_state(owner, team, db, gemini):
    fund(team, owner, amount=100_000)
    batches = {
        scenario: submit(team, owner, count=1, prompt=f"a quiet harbour [fault:{scenario}]")
        for scenario in CASES
    }
    assert wallet_balance(team) == (100_000 - PRICE * len(CASES), PRICE * len(CASES))
    drain("flash")

    succeeded = 0
    for scenario, (status, attempts, words) in CASES.items():
        generation = batches[scenario].generations.get()
        assert (generation.status, generation.attempts) == (status, attempts), scenario
        if status == Status.SUCCEEDED:
            succeeded += 1
            assert generation.asset_id and generation.credits_charged == PRICE, scenario
        else:
            assert generation.asset_id is None, scenario
            assert understandable(generation.error), (scenario, generation.error)
            assert words.lower() in generation.error.lower(), (scenario, generation.error)
    assert_every_job_settled(list(batches.values()))
    assert wallet_balance(team) == (100_000 - PRICE * succeeded, 0)
    assert_books_balance()


def test_retry_after_is_honoured_between_attempts(owner, team, db, gemini):
    fund(team, owner, amount=10_000)
    batch = submit(team, owner, count=1, prompt="a slow pier [fault:429*1]")
    assert run_lane("flash") is not None
    generation = batch.generations.get()
    assert generation.status == Status.QUEUED and "Retrying" in generation.error
    wait = (generation.not_before - generation.changed_at).total_seconds()
    assert wait >= 0.9, "the provider asked for 1 s"
    assert run_lane("flash") is None  # not before its time
    drain("flash")
    assert batch.generations.get().status == Status.SUCCEEDED


@pytest.mark.slow
def test_a_fault_through_a_real_worker(owner, team, gemini, lane_workers, settings):
    # `gemini` first: the workers take their provider settings when they start.
    fund(team, owner, amount=10_000)
    lane_workers.start("flash")
    ok = submit(team, owner, count=2, prompt="worker ok [fault:500*1]")
    blocked = submit(team, owner, count=1, prompt="worker blocked [fault:blocked]")
    deadline = time.monotonic() + 90
    while Generation.objects.filter(status__in=[Status.QUEUED, Status.RUNNING]).exists():
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert set(ok.generations.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert blocked.generations.get().status == Status.BLOCKED
    assert_every_job_settled([ok, blocked])
    assert wallet_balance(team) == (10_000 - 2 * PRICE, 0)
    assert_books_balance()
