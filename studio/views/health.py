"""/healthz: is the configuration usable, the database answering, the broker
reachable, are both lanes served?"""

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from ..celery import app as celery_app
from ..checks import configuration_errors

LANES = ("flash", "pro")
logger = logging.getLogger(__name__)


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "engine": connection.vendor}
    except Exception as error:  # noqa: BLE001 - any failure means "down"
        return {"ok": False, "error": str(error)[:200]}


def _broker_and_lanes() -> tuple[dict, dict]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            replies = celery_app.control.inspect(timeout=1.0, connection=conn).active_queues() or {}
    except Exception as error:  # noqa: BLE001
        down = {"ok": False, "error": str(error)[:200]}
        return down, {lane: {"ok": False, "workers": 0} for lane in LANES}
    workers = {lane: 0 for lane in LANES}
    for queues in replies.values():
        for queue in queues:
            if queue.get("name") in workers:
                workers[queue["name"]] += 1
    return {"ok": True}, {lane: {"ok": n > 0, "workers": n} for lane, n in workers.items()}


def _configuration() -> dict:
    # The start-up checks' words, so a site that would fail every render is never "healthy".
    errors = [" ".join(filter(None, (e.msg, e.hint))) for e in configuration_errors()]
    return {"ok": not errors, "errors": errors}


@never_cache
def healthz(request):
    configuration = _configuration()
    database = _database()
    broker, lanes = _broker_and_lanes()
    healthy = (
        configuration["ok"]
        and database["ok"]
        and broker["ok"]
        and all(lane["ok"] for lane in lanes.values())
    )
    response = JsonResponse(
        {
            "ok": healthy,
            "configuration": configuration,
            "database": database,
            "broker": broker,
            "lanes": lanes,
        },
        status=200 if healthy else 503,
    )
    if not healthy:
        # A 503 here is an answer, not a fault: during a normal start the
        # probe asks before the workers are up. Django would log it as an
        # ERROR with the request; one line saying what is missing is enough.
        missing = [
            name
            for name, part in (
                ("configuration", configuration),
                ("database", database),
                ("broker", broker),
            )
            if not part["ok"]
        ]
        missing += [f"{lane} lane" for lane, part in lanes.items() if not part["ok"]]
        logger.warning("Not ready: %s", ", ".join(missing))
        response._has_been_logged = True
    return response
