"""The operator's metrics, in Prometheus's text format, for /metrics.

One scrape of the web server describes the whole deployment, however many
worker hosts it has. Events (render latencies, 429s, retries, failures,
sweeper re-queues, credits settled) are counted in Redis by whichever process
saw them (generation.metrics says why Redis rather than prometheus-client's
multi-process files); the gauges are read now, from the database (jobs
queued and running, credits held), the broker (tokens waiting, workers per
lane) and the shared quotas (generation.quotas.state). prometheus-client
only formats: a collector builds every family afresh on each scrape.

A part that cannot be read (Redis down, the broker unreachable) is left out
of that scrape rather than failing it; contact_sheet_broker_up says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db.models import Count, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from billing.models import Hold
from generation import backends, catalog, metrics, quotas
from generation.models import OUTSTANDING, Generation, Status

from .celery import app as celery_app
from .views.health import _broker_and_lanes

log = logging.getLogger(__name__)

# What each recorded family means; docs/OPERATIONS.md says what to alert on.
RECORDED = {
    "contact_sheet_render_seconds": (
        "histogram",
        "Seconds the provider took to answer one render, by lane, provider, model and "
        "outcome (succeeded, throttled, error).",
        ("lane", "provider", "model", "outcome"),
    ),
    "contact_sheet_provider_throttled_total": (
        "counter",
        "429 answers per provider credential (its key, never the secret).",
        ("provider", "credential"),
    ),
    "contact_sheet_render_retries_total": (
        "counter",
        "Renders put back in the queue to be tried again after a transient error.",
        ("lane", "provider", "credential"),
    ),
    "contact_sheet_render_failures_total": (
        "counter",
        "Renders that ended without an image, by status (failed, blocked, canceled) and "
        "reason (permanent, transient, lease_expired, blocked, canceled, batch_job).",
        ("lane", "provider", "status", "reason"),
    ),
    "contact_sheet_sweeper_requeued_total": (
        "counter",
        "Jobs the sweeper put back in a lane: cause=lease (its worker stopped answering) "
        "or cause=token (its broker token was lost).",
        ("lane", "cause"),
    ),
    "contact_sheet_credits_captured_total": (
        "counter",
        "Credits charged for rendered images, per tier.",
        ("tier",),
    ),
    "contact_sheet_credits_released_total": (
        "counter",
        "Credits given back for images that failed, were blocked or canceled, per tier.",
        ("tier",),
    ),
}


class StudioCollector:
    def collect(self) -> Iterator[Metric]:
        for part in (_recorded, _lanes, _broker, _quotas, _credits_held):
            try:
                yield from part()
            except Exception as error:  # noqa: BLE001 - one part down must not hide the rest
                log.warning("metrics: %s could not be read (%s)", part.__name__.strip("_"), error)


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StudioCollector())
    return generate_latest(registry)


def _recorded() -> Iterator[Metric]:
    counters, histograms = metrics.snapshot()
    for name, (kind, documentation, label_names) in RECORDED.items():
        if kind == "histogram":
            family = HistogramMetricFamily(name, documentation, labels=label_names)
            for (series, labels), histogram in histograms.items():
                if series == name:
                    family.add_metric(
                        _values(labels, label_names),
                        buckets=histogram["buckets"],
                        sum_value=histogram["sum"],
                    )
        else:
            family = CounterMetricFamily(name, documentation, labels=label_names)
            for (series, labels), value in counters.items():
                if series == name:
                    family.add_metric(_values(labels, label_names), value)
        yield family


def _values(labels: tuple[tuple[str, str], ...], names: tuple[str, ...]) -> list[str]:
    given = dict(labels)
    return [given.get(name, "") for name in names]


def _lanes() -> Iterator[Metric]:
    queued = GaugeMetricFamily(
        "contact_sheet_lane_queued",
        "Jobs waiting in the lane (the database's count, retries waiting out a backoff included).",
        labels=["lane"],
    )
    running = GaugeMetricFamily(
        "contact_sheet_lane_running", "Renders in flight in the lane.", labels=["lane"]
    )
    oldest = GaugeMetricFamily(
        "contact_sheet_lane_oldest_queued_seconds",
        "Age of the oldest job that could run now but has not started.",
        labels=["lane"],
    )
    counts = {
        (row["tier"], row["status"]): row["n"]
        for row in Generation.objects.filter(status__in=OUTSTANDING)
        .values("tier", "status")
        .annotate(n=Count("id"))
    }
    now = timezone.now()
    firsts = dict(
        Generation.objects.filter(status=Status.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .values("tier")
        .annotate(first=Min("created"))
        .values_list("tier", "first")
    )
    for lane in catalog.TIERS:
        queued.add_metric([lane], counts.get((lane, Status.QUEUED), 0))
        running.add_metric([lane], counts.get((lane, Status.RUNNING), 0))
        first = firsts.get(lane)
        oldest.add_metric([lane], (now - first).total_seconds() if first else 0)
    yield from (queued, running, oldest)


def _broker() -> Iterator[Metric]:
    broker, lanes = _broker_and_lanes()
    up = GaugeMetricFamily("contact_sheet_broker_up", "1 when the broker (Redis) answers.")
    up.add_metric([], 1 if broker["ok"] else 0)
    yield up
    workers = GaugeMetricFamily(
        "contact_sheet_lane_workers",
        "Worker processes serving the lane that answered a ping within a second.",
        labels=["lane"],
    )
    for lane, state in lanes.items():
        workers.add_metric([lane], state["workers"])
    yield workers
    if not broker["ok"]:
        return
    tokens = GaugeMetricFamily(
        "contact_sheet_lane_broker_tokens",
        "Lane tokens waiting in the broker's queue (one per queued job, plus spares).",
        labels=["lane"],
    )
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        for lane in catalog.TIERS:
            # Not passive: Redis drops an empty list, and a passive declare
            # would call the lane's queue missing; declaring writes nothing.
            tokens.add_metric([lane], channel.queue_declare(lane).message_count)
    yield tokens


def _quotas() -> Iterator[Metric]:
    label_names = ["provider", "credential"]
    in_flight = GaugeMetricFamily(
        "contact_sheet_quota_in_flight",
        "Requests in flight on the credential, across every host.",
        labels=label_names,
    )
    limit = GaugeMetricFamily(
        "contact_sheet_quota_in_flight_limit",
        "The configured in-flight limit of the credential (*_MAX_IN_FLIGHT).",
        labels=label_names,
    )
    window = GaugeMetricFamily(
        "contact_sheet_quota_window",
        "Requests the credential may have in flight now: the limit, or less after a 429 "
        "narrowed it (absent when neither applies).",
        labels=label_names,
    )
    paused = GaugeMetricFamily(
        "contact_sheet_quota_paused_seconds",
        "Seconds left of the pause a 429's Retry-After put on the credential.",
        labels=label_names,
    )
    backlog = GaugeMetricFamily(
        "contact_sheet_quota_backlog_seconds",
        "How far ahead the per-minute limit has booked the credential's starts.",
        labels=label_names,
    )
    for provider in sorted(_providers_in_use()):
        credential = quotas.credential_for(provider)
        state = quotas.state(credential)
        if state is None:
            continue
        labels = [provider, credential.key]
        in_flight.add_metric(labels, state.in_flight)
        if credential.in_flight:
            limit.add_metric(labels, credential.in_flight)
        if state.window or credential.in_flight:
            window.add_metric(labels, state.window or credential.in_flight)
        paused.add_metric(labels, state.paused_seconds)
        backlog.add_metric(labels, state.backlog_seconds)
    yield from (in_flight, limit, window, paused, backlog)


def _providers_in_use() -> set[str]:
    offered = {backend.provider for tier in catalog.TIERS for backend in backends.choices(tier)}
    outstanding = Generation.objects.filter(status__in=OUTSTANDING).values_list(
        "provider", flat=True
    )
    return offered | set(outstanding.distinct())


def _credits_held() -> Iterator[Metric]:
    held = GaugeMetricFamily(
        "contact_sheet_credits_held",
        "Credits set aside for images queued or rendering, per tier.",
        labels=["tier"],
    )
    open_images = F("count") - F("captured") - F("released")
    per_tier = dict(
        Hold.objects.filter(count__gt=F("captured") + F("released"))
        .values("tier")
        .annotate(credits=Sum(open_images * F("unit_price")))
        .values_list("tier", "credits")
    )
    for tier in catalog.TIERS:
        held.add_metric([tier], per_tier.get(tier) or 0)
    yield held
