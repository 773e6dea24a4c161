"""The Celery app: two lanes, `flash` and `pro`, each with its own worker pool.

Tasks choose their lane when they are sent (`queue=`), so a queue of slow Pro
renders never sits in front of a draft grid. Periodic jobs (the lease
sweeper, the ledger reconcile) run from the beat scheduler.
"""

import os

from celery import Celery
from celery.signals import celeryd_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("flash"), Queue("pro")]
app.conf.beat_schedule = {
    "sweep-expired-leases": {"task": "generation.tasks.sweep_leases", "schedule": 30.0},
    "batch-lane": {
        "task": "generation.tasks.batch_lane_tick",
        "schedule": float(os.environ.get("BATCH_LANE_POLL_SECONDS", "30")),
    },
    "reconcile-wallets": {"task": "billing.tasks.reconcile_wallets", "schedule": 3600.0},
}
app.autodiscover_tasks()


@celeryd_init.connect
def size_the_pool_by_lane(sender=None, conf=None, options=None, **kwargs) -> None:
    """A worker started for one lane keeps that lane's renders in flight
    (FLASH_IN_FLIGHT or PRO_IN_FLIGHT threads) unless --concurrency says otherwise."""
    from django.conf import settings

    queues = (options or {}).get("queues") or []
    if isinstance(queues, str):
        queues = queues.split(",")
    sizes = {"flash": settings.FLASH_IN_FLIGHT, "pro": settings.PRO_IN_FLIGHT}
    lanes = [sizes[q.strip()] for q in queues if q.strip() in sizes]
    if lanes:
        conf.worker_concurrency = sum(lanes)


@app.task(name="studio.ping_lane")
def ping_lane(marker: str) -> str:
    """Echo which lane served a job; used by health checks and tests."""
    return f"{marker}@{ping_lane.request.delivery_info.get('routing_key')}"
