"""Celery tasks: thin wrappers that name a lane and call the service."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from . import lanes, rendering
from .providers import configured_model_problems

log = logging.getLogger(__name__)


@shared_task(name="generation.tasks.run_lane", acks_late=True)
def run_lane(lane: str) -> int | None:
    """One lane token: run the fairest queued job of the lane, if any."""
    return rendering.lane_run(lane)


@shared_task(name="generation.tasks.sweep_leases")
def sweep_leases() -> dict:
    return lanes.sweep()


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
