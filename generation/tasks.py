"""Celery tasks: thin wrappers that name a lane and call the service."""

from celery import shared_task

from . import lanes, rendering


@shared_task(name="generation.tasks.run_lane", acks_late=True)
def run_lane(lane: str) -> int | None:
    """One lane token: run the fairest queued job of the lane, if any."""
    return rendering.lane_run(lane)


@shared_task(name="generation.tasks.sweep_leases")
def sweep_leases() -> dict:
    return lanes.sweep()
