"""The batch lane on the offline renderer's batch mode: a person submits a grid
with lane=batch, the scheduler sends it and collects it, and the credits
move at the batch rate, exactly once per image, whatever goes wrong."""

from __future__ import annotations

import pytest

from billing.models import Hold, LedgerEntry
from billing.selectors import wallet_balance
from generation import batch_lane
from generation.models import Generation, Lane, ProviderBatchJob, Status
from generation.services import batch_cancel
from generation.tasks import batch_lane_tick, run_lane
from tests.reliability.conftest import (
    LIST_PRICES,
    assert_books_balance,
    assert_every_job_settled,
    fund,
    submit,
)

LIST = LIST_PRICES[("flash", "1K")]  # 67
HALF = -(-LIST // 2)  # 34: rounded up to whole credits


@pytest.fixture(autouse=True)
def _quick_batches(settings):
    settings.OFFLINE_BATCH_DELAY = 0
    settings.FLASH_PROVIDER = "offline"
    settings.PRO_PROVIDER = "offline"


@pytest.fixture
def funded(owner, team):
    fund(team, owner, amount=100_000)
    return team


def _spent(team) -> int:
    available, held = wallet_balance(team)
    return 100_000 - available - held


def test_a_batch_lane_grid_is_held_at_the_batch_rate_and_not_sent_to_the_lanes(funded, owner):
    batch = submit(funded, owner, lane="batch", count=4)
    assert batch.lane == Lane.BATCH
    hold = Hold.objects.get(pk=batch.hold_id)
    assert (hold.unit_price, hold.list_price) == (HALF, LIST)
    assert batch.credits_quoted == 4 * HALF
    assert wallet_balance(funded) == (100_000 - 4 * HALF, 4 * HALF)
    # No interactive lane will run them, even when asked directly.
    assert run_lane("flash") is None
    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.QUEUED
    }
    assert not Generation.objects.filter(batch=batch, dispatched_at__isnull=False).exists()


def test_the_batch_rate_follows_the_setting(funded, owner, settings):
    settings.BATCH_PRICE_PERCENT = 30
    batch = submit(funded, owner, lane="batch", count=2)
    assert Hold.objects.get(pk=batch.hold_id).unit_price == -(-LIST * 30 // 100)


def test_an_unknown_lane_is_refused_in_words(funded, owner):
    from generation.requests import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        submit(funded, owner, lane="overnight")
    assert "batch lane" in str(refused.value.errors["lane"])


def test_all_succeed_captured_at_half_price(funded, owner):
    batch = submit(funded, owner, lane="batch", count=4)
    assert batch_lane.tick()["sent"] == 4
    job = ProviderBatchJob.objects.get()
    assert job.name.startswith("batches/") and job.provider == "offline"
    batch_lane.wait_for([batch])
    generations = list(Generation.objects.filter(batch=batch).select_related("asset"))
    assert {g.status for g in generations} == {Status.SUCCEEDED}
    assert all(g.asset and g.asset.thumbnail and g.credits_charged == HALF for g in generations)
    assert _spent(funded) == 4 * HALF
    assert ProviderBatchJob.objects.get().state == ProviderBatchJob.State.SUCCEEDED
    assert_every_job_settled([batch])
    assert_books_balance()


def test_the_stored_image_carries_its_parameters_like_a_lane_result(funded, owner):
    from PIL import Image

    batch = submit(funded, owner, lane="batch", count=1, prompt="a teapot on marble")
    batch_lane.wait_for([batch])
    generation = Generation.objects.select_related("asset").get(batch=batch)
    with Image.open(generation.asset.original.path) as image:
        text = image.text
    assert "a teapot on marble" in str(text)


def test_partial_failure_releases_each_failed_request(funded, owner):
    good = submit(funded, owner, lane="batch", count=3, prompt="a lighthouse")
    bad = submit(funded, owner, lane="batch", count=2, prompt="a lighthouse [batch:fail]")
    batch_lane.wait_for([good, bad])
    assert set(Generation.objects.filter(batch=good).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    failed = list(Generation.objects.filter(batch=bad))
    assert {g.status for g in failed} == {Status.FAILED}
    assert "could not render" in failed[0].error
    assert _spent(funded) == 3 * HALF
    assert wallet_balance(funded)[1] == 0
    assert_every_job_settled([good, bad])
    assert_books_balance()


@pytest.mark.parametrize(
    ("fault", "state", "words"),
    [
        ("[batch:expire]", ProviderBatchJob.State.EXPIRED, "expired"),
        ("[batch:job-fail]", ProviderBatchJob.State.FAILED, "failed"),
    ],
)
def test_a_job_that_expires_or_fails_releases_everything(funded, owner, fault, state, words):
    batch = submit(funded, owner, lane="batch", count=3, prompt=f"a lighthouse {fault}")
    batch_lane.wait_for([batch])
    generations = list(Generation.objects.filter(batch=batch))
    assert {g.status for g in generations} == {Status.FAILED}
    assert words in generations[0].error and "Nothing was charged" in generations[0].error
    assert ProviderBatchJob.objects.get().state == state
    assert wallet_balance(funded) == (100_000, 0)
    assert_every_job_settled([batch])
    assert_books_balance()


def test_cancel_from_the_grid_cancels_the_provider_job_and_releases(funded, owner, settings):
    settings.OFFLINE_BATCH_DELAY = 3600
    batch = submit(funded, owner, lane="batch", count=3)
    batch_lane.tick()
    job = ProviderBatchJob.objects.get()
    assert batch_lane.batch_client_for("offline").poll(job.name).state == "running"
    assert batch_cancel(batch=batch, actor=owner) == 3
    assert batch_lane.batch_client_for("offline").poll(job.name).state == "cancelled"
    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.CANCELED
    }
    assert wallet_balance(funded) == (100_000, 0)
    # Later rounds do not touch it again.
    settings.OFFLINE_BATCH_DELAY = 0
    batch_lane.tick()
    assert_every_job_settled([batch])
    assert_books_balance()


def test_cancel_before_sending_releases_without_a_provider_job(funded, owner):
    batch = submit(funded, owner, lane="batch", count=2)
    assert batch_cancel(batch=batch, actor=owner) == 2
    assert batch_lane.tick()["sent"] == 0
    assert not ProviderBatchJob.objects.exists()
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_scheduler_stopped_mid_collection_settles_each_hold_once(
    funded, owner, monkeypatch, settings
):
    settings.OFFLINE_BATCH_DELAY = 3600
    batch = submit(funded, owner, lane="batch", count=4)
    batch_lane.tick()
    settings.OFFLINE_BATCH_DELAY = 0
    job = ProviderBatchJob.objects.get()
    real_ingest = batch_lane.generation_ingest
    calls = []

    def stop_after_two(generation, result):
        if len(calls) == 2:
            raise KeyboardInterrupt("the scheduler was stopped")
        calls.append(generation.pk)
        return real_ingest(generation, result)

    monkeypatch.setattr(batch_lane, "generation_ingest", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        batch_lane.tick()
    assert Generation.objects.filter(batch=batch, status=Status.SUCCEEDED).count() == 2
    monkeypatch.setattr(batch_lane, "generation_ingest", real_ingest)
    # Restarted: collects the same job again; only the two unsettled images are stored.
    batch_lane.tick()
    batch_lane.tick()
    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    job.refresh_from_db()
    assert job.state == ProviderBatchJob.State.SUCCEEDED and job.finished_at
    assert LedgerEntry.objects.filter(kind="capture").count() == 4
    assert _spent(funded) == 4 * HALF
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_result_for_a_request_we_no_longer_have_is_dropped(funded, owner, settings):
    settings.OFFLINE_BATCH_DELAY = 3600
    batch = submit(funded, owner, lane="batch", count=2)
    batch_lane.tick()
    settings.OFFLINE_BATCH_DELAY = 0
    job = ProviderBatchJob.objects.get()
    poll = batch_lane.batch_client_for("offline").poll(job.name)
    kept = next(iter(poll.results))
    poll.results["999999"] = poll.results[kept]
    poll.results["not-a-key"] = poll.results[kept]
    done, released = batch_lane.job_collect(job, poll=poll)
    assert (done, released) == (2, 0)
    assert_every_job_settled([batch])
    assert_books_balance()


def test_two_schedulers_in_one_period_send_once(funded, owner):
    batch = submit(funded, owner, lane="batch", count=2)
    first, second = batch_lane_tick(), batch_lane_tick()
    assert first["sent"] == 2 and second == {"skipped": 1}
    assert ProviderBatchJob.objects.count() == 1
    batch_lane.wait_for([batch])
    assert_books_balance()


def test_batch_lane_images_never_run_on_the_interactive_lanes(funded, owner):
    from generation import lanes

    batch = submit(funded, owner, lane="batch", count=3)
    interactive = submit(funded, owner, count=1)
    assert lanes.fairest_queued("flash").batch_id == interactive.pk
    assert lanes.claim_next("flash").batch_id == interactive.pk
    assert lanes.claim_next("flash") is None
    # Long queued and never dispatched: the sweeper would re-send lane tokens
    # for an interactive job; batch-lane images are the scheduler's.
    from datetime import timedelta

    from django.utils import timezone

    Generation.objects.filter(batch=batch).update(created=timezone.now() - timedelta(hours=1))
    assert lanes.sweep()["resent"] == 0
    assert not Generation.objects.filter(batch=batch, dispatched_at__isnull=False).exists()
    assert Generation.objects.filter(batch=batch, status=Status.QUEUED).count() == 3


def test_the_usage_page_shows_what_the_batch_lane_saved(funded, owner, teammate, client_for):
    from django.urls import reverse

    from billing.selectors import usage_report

    batch = submit(funded, owner, lane="batch", count=4)
    submit(funded, owner, count=1)  # interactive: no batch saving
    batch_lane.wait_for([batch])
    report = usage_report(funded, period="month")
    assert (report.batch_images, report.batch_saved) == (4, 4 * (LIST - HALF))
    page = client_for(owner).get(reverse("billing-usage", args=[funded.slug]))
    assert page.status_code == 200
    text = page.content.decode()
    assert 'class="num batch-saved">132<' in text.replace(",", "")
    assert "tiering-saved" in text and "cache-saved" in text
    # A member's own view counts only their images.
    assert usage_report(funded, period="month", member=teammate).batch_saved == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_a_real_worker_the_batch_lane_settles_and_the_lane_keeps_running(
    owner, team, lane_workers, settings
):
    """The scheduler's task runs in a real worker, as beat sends it; an
    interactive grid submitted meanwhile is rendered while the batch waits."""
    import time

    fund(team, owner, amount=100_000)
    lane_workers.start("flash", concurrency=2, BATCH_LANE_POLL_SECONDS="1", OFFLINE_BATCH_DELAY="3")
    waiting = submit(team, owner, lane="batch", count=3)
    failing = submit(team, owner, lane="batch", count=1, prompt="a lighthouse [batch:fail]")
    interactive = submit(team, owner, count=2)
    deadline = time.monotonic() + 90
    interactive_done_first = None
    while Generation.objects.filter(
        batch__in=[waiting, failing, interactive], status__in=[Status.QUEUED, Status.RUNNING]
    ).exists():
        assert time.monotonic() < deadline, "the batch lane did not finish with a real worker"
        batch_lane_tick.apply_async(queue="flash")
        if (
            interactive_done_first is None
            and not Generation.objects.filter(
                batch=interactive, status__in=[Status.QUEUED, Status.RUNNING]
            ).exists()
        ):
            interactive_done_first = (
                Generation.objects.filter(batch=waiting, status=Status.SUCCEEDED).count() == 0
            )
        time.sleep(0.5)
    assert interactive_done_first, "the interactive grid waited for the batch lane"
    assert Generation.objects.filter(batch=waiting, status=Status.SUCCEEDED).count() == 3
    assert Generation.objects.get(batch=failing).status == Status.FAILED
    assert _spent(team) == 3 * HALF + 2 * LIST
    assert wallet_balance(team)[1] == 0
    assert_every_job_settled([waiting, failing, interactive])
    assert_books_balance()


def test_a_backend_without_a_batch_endpoint_is_refused_in_words(funded, owner, settings):
    from generation.services import SubmitRefused

    settings.FLASH_PROVIDER = "openai"
    settings.FLASH_MODEL = "gpt-image-1"
    with pytest.raises(SubmitRefused) as refused:
        submit(funded, owner, lane="batch", count=1)
    assert "batch endpoint" in refused.value.message
    assert wallet_balance(funded) == (100_000, 0)


def test_a_grid_canceled_while_its_job_is_being_sent(funded, owner, monkeypatch, settings):
    from generation.providers.offline_batch import OfflineBatchClient

    settings.OFFLINE_BATCH_DELAY = 3600
    batch = submit(funded, owner, lane="batch", count=2)
    real_submit = OfflineBatchClient.submit

    def submit_then_cancel(self, **job):
        name = real_submit(self, **job)
        batch_cancel(batch=batch, actor=owner)
        return name

    monkeypatch.setattr(OfflineBatchClient, "submit", submit_then_cancel)
    batch_lane.tick()
    job = ProviderBatchJob.objects.get()
    assert job.state == ProviderBatchJob.State.CANCELLED and job.name
    assert OfflineBatchClient().poll(job.name).state == "cancelled"
    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.CANCELED
    }
    assert wallet_balance(funded) == (100_000, 0)
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_job_still_running_past_a_day_is_expired_here_and_released(funded, owner, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.OFFLINE_BATCH_DELAY = 3600 * 48
    batch = submit(funded, owner, lane="batch", count=2)
    batch_lane.tick()
    job = ProviderBatchJob.objects.get()
    ProviderBatchJob.objects.filter(pk=job.pk).update(
        submitted_at=timezone.now() - timedelta(hours=26)
    )
    batch_lane.tick()
    job.refresh_from_db()
    assert job.state == ProviderBatchJob.State.EXPIRED
    assert batch_lane.batch_client_for("offline").poll(job.name).state == "cancelled"
    error = Generation.objects.filter(batch=batch).first().error
    assert "expired" in error and "Nothing was charged" in error
    assert wallet_balance(funded) == (100_000, 0)
    assert_every_job_settled([batch])
    assert_books_balance()
