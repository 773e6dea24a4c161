"""What the lanes count for the operator's metrics, kept in Redis so that one
scrape of the web server sees every process on every host.

Why Redis and not prometheus-client's multi-process files: those files live
on one host's disk, and worker hosts share no filesystem with the web host
(only PostgreSQL, Redis and the S3 storage), so the web server would see only
its own host's processes; each worker host would need a port and a scrape
target of its own, and the folder must be wiped at every start and grows a
file per process that ever ran. Every process here already talks to this
Redis (the broker, the quotas), so an event costs one pipelined round trip
to it, and studio.metrics turns the sums into Prometheus families when
scraped. Gauges (queue depth, renders in flight, quota windows, credits
held) are read at scrape time from the database and Redis, so nothing
records them.

Counting never stands in a render's way: when Redis cannot be reached the
event is dropped and the render goes on. Counts made inside a transaction
are added only once it commits, so a rolled-back finish is not counted.
"""

from __future__ import annotations

import json
import logging
import threading

import redis
from django.conf import settings
from django.db import connection, transaction
from django.dispatch import receiver

from billing.signals import hold_settled

log = logging.getLogger(__name__)

COUNTERS_KEY = "metrics:counters"
HISTOGRAMS_KEY = "metrics:histograms"

# Seconds a provider takes to answer: drafts take 4-20 s, Pro renders up to
# minutes, a deadline cuts everything off at RENDER_DEADLINE_SECONDS.
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 240.0, 420.0)

Labels = tuple[tuple[str, str], ...]


def count(name: str, amount: float = 1, **labels: str) -> None:
    """Add `amount` to the counter `name` with these labels, once any
    surrounding transaction commits."""
    changes = [("counter", _field(name, labels), amount)]
    # Outside a transaction write at once: asking Django would open a
    # database connection, which a render waiting on its provider has not.
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _write(changes))
    else:
        _write(changes)


def observe(name: str, value: float, **labels: str) -> None:
    """Record one observation (seconds) in the histogram `name`."""
    bucket = next((str(b) for b in LATENCY_BUCKETS if value <= b), "+Inf")
    _write(
        [
            ("histogram", _field(name, labels, bucket), 1),
            ("histogram", _field(name, labels, "sum"), value),
        ]
    )


def snapshot() -> tuple[dict[tuple[str, Labels], float], dict[tuple[str, Labels], dict]]:
    """Every counter, and every histogram as cumulative buckets with its sum and count."""
    client = _client()
    counters = {}
    for field, value in client.hgetall(COUNTERS_KEY).items():
        name, pairs = json.loads(field)
        counters[(name, _labels(pairs))] = float(value)
    per_bucket: dict[tuple[str, Labels], dict[str, float]] = {}
    for field, value in client.hgetall(HISTOGRAMS_KEY).items():
        name, pairs, bucket = json.loads(field)
        per_bucket.setdefault((name, _labels(pairs)), {})[bucket] = float(value)
    histograms = {}
    for key, buckets in per_bucket.items():
        running, cumulative = 0.0, []
        for bound in (*(str(b) for b in LATENCY_BUCKETS), "+Inf"):
            running += buckets.get(bound, 0)
            cumulative.append((bound, running))
        histograms[key] = {"buckets": cumulative, "sum": buckets.get("sum", 0.0), "count": running}
    return counters, histograms


@receiver(hold_settled)
def credits_settled_count(sender, *, kind: str, tier: str, images: int, credits: int, **extra):
    """Credits captured (charged) and released (given back), per tier, as the ledger moved them."""
    name = "captured" if kind == "capture" else "released"
    count(f"contact_sheet_credits_{name}_total", credits, tier=tier)


def reset() -> None:
    """Forget every count (tests)."""
    _client().delete(COUNTERS_KEY, HISTOGRAMS_KEY)


def _field(name: str, labels: dict[str, str], bucket: str | None = None) -> str:
    pairs = sorted((key, str(value)) for key, value in labels.items())
    return json.dumps([name, pairs] if bucket is None else [name, pairs, bucket])


def _labels(pairs: list[list[str]]) -> Labels:
    return tuple((key, value) for key, value in pairs)


def _write(changes: list[tuple[str, str, float]]) -> None:
    try:
        pipe = _client().pipeline(transaction=False)
        for kind, field, amount in changes:
            key = COUNTERS_KEY if kind == "counter" else HISTOGRAMS_KEY
            pipe.hincrbyfloat(key, field, amount)
        pipe.execute()
    except redis.RedisError as error:
        log.debug("metrics: Redis unreachable, %d changes dropped (%s)", len(changes), error)


_lock = threading.Lock()
_cached: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    with _lock:
        if "client" not in _cached:
            # Short timeouts: a count is never worth holding up a render.
            _cached["client"] = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
            )
        return _cached["client"]
