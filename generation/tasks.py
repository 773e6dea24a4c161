"""Celery tasks: thin wrappers that name a lane and call the service."""

import logging
import time

from celery import shared_task
from celery.signals import worker_ready
from django.core.cache import cache

from . import lanes, rendering
from .providers import configured_model_problems

log = logging.getLogger(__name__)


@shared_task(name="generation.tasks.run_lane", acks_late=True)
def run_lane(lane: str) -> int | None:
    """One lane token: run the fairest queued job of the lane, if any."""
    return rendering.lane_run(lane)


@shared_task(name="generation.tasks.fan_out", acks_late=True)
def fan_out(lane: str, generation_ids: list[int]) -> int:
    """Send the lane tokens of a large submit (see lanes.dispatch_many). A repeat
    delivery sends spare tokens, which find nothing and do nothing."""
    lanes.dispatch_now(lane, generation_ids)
    return len(generation_ids)


SWEEP_PERIOD_SECONDS = 30


@shared_task(name="generation.tasks.sweep_leases")
def sweep_leases() -> dict:
    """The lease sweeper, once per period however many schedulers send it.

    A deployment should run one scheduler, but a second one (two hosts both
    started with beat) must be harmless: the first sweep of each period
    takes the period's key, later ones in that period do nothing. Sweeping
    twice would be safe anyway (every move is conditional); this keeps the
    attempts counted once.
    """
    period = int(time.time() // SWEEP_PERIOD_SECONDS)
    if not cache.add(f"sweep-leases:{period}", 1, timeout=SWEEP_PERIOD_SECONDS * 2):
        return {"skipped": 1}
    return lanes.sweep()


@shared_task(name="generation.tasks.batch_lane_tick")
def batch_lane_tick() -> dict:
    """The batch lane's round (send queued images, collect finished jobs), once
    per period however many schedulers send it, as sweep_leases: two rounds
    at once could send the same grid twice before either marks it sent."""
    from django.conf import settings

    from . import batch_lane

    every = settings.BATCH_LANE_POLL_SECONDS
    period = int(time.time() // every)
    if not cache.add(f"batch-lane:{period}", 1, timeout=every * 2):
        return {"skipped": 1}
    return batch_lane.tick()


@worker_ready.connect
def check_configured_models(**kwargs) -> None:
    """Say plainly at start-up when a configured Gemini model id does not exist."""
    try:
        problems = configured_model_problems()
    except Exception as error:  # noqa: BLE001 - a start-up check must not stop the worker
        log.warning("could not check the configured model ids: %s", error)
        return
    for problem in problems:
        log.error("%s", problem)
