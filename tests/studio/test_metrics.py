"""An operator scrapes /metrics and reads the logs.

- The endpoint does not exist without METRICS_TOKEN, and refuses a missing
  or wrong token without saying more.
- During a real grid on a real lane worker the lane gauges move, and after
  it the latency histogram and the credits captured add up to the grid.
- Provider faults show up as 429s, retries and failures by reason, per
  credential; the sweeper's re-queues are counted.
- With LOG_FORMAT=json every worker log line is a JSON object, and the
  lines of a render carry its batch, generation, team and provider.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from generation import lanes, metrics, quotas
from generation.log_context import render_fields
from generation.models import OUTSTANDING, Generation, Status
from studio.logs import JsonLines, RenderContext
from tests.fakes.gemini_server import FakeGemini
from tests.reliability.conftest import LIST_PRICES, fund, submit

TOKEN = "a-long-scrape-token-for-tests"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN
    metrics.reset()
    yield
    metrics.reset()


def scrape(client) -> list:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return [
        sample
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    ]


def value(samples, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include these."""
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


# --- who may scrape -------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_token_configured_there_is_no_endpoint(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.django_db
def test_the_endpoint_refuses_without_its_token(client, metrics_on):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 403
    for refused in (missing, wrong):
        assert refused.content == b"", "a refusal says nothing about what runs here"
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


# --- a grid on a real worker ------------------------------------------------------------


@pytest.mark.slow
def test_a_grid_moves_the_lane_gauges_and_the_latency_histogram(
    client, owner, team, lane_workers, metrics_on, tmp_path, caplog
):
    fund(team, owner, amount=100_000)
    lane_workers.start("flash", 3, OFFLINE_FLASH_LATENCY="0.8", LOG_FORMAT="json")
    before = scrape(client)
    assert value(before, "contact_sheet_lane_workers", lane="flash") >= 1
    assert value(before, "contact_sheet_broker_up") == 1

    count = 12
    batch = submit(team, owner, count=count, prompt="a pier in fog")
    held = LIST_PRICES[("flash", "1K")] * count
    seen_running, seen_queued, seen_held, seen_tokens = 0.0, 0.0, 0.0, 0.0
    deadline = time.monotonic() + 120
    while Generation.objects.filter(batch=batch, status__in=OUTSTANDING).exists():
        assert time.monotonic() < deadline, "the grid did not finish"
        during = scrape(client)
        seen_running = max(seen_running, value(during, "contact_sheet_lane_running", lane="flash"))
        seen_queued = max(seen_queued, value(during, "contact_sheet_lane_queued", lane="flash"))
        seen_held = max(seen_held, value(during, "contact_sheet_credits_held", tier="flash"))
        seen_tokens = max(
            seen_tokens, value(during, "contact_sheet_lane_broker_tokens", lane="flash")
        )
    assert 1 <= seen_running <= 3, "renders in flight, never more than the worker's threads"
    assert seen_queued >= 1
    assert 0 < seen_held <= held
    assert seen_tokens >= 1, "tokens waited in the broker"

    after = scrape(client)
    rendered = {"lane": "flash", "provider": "offline", "outcome": "succeeded"}
    assert value(after, "contact_sheet_render_seconds_count", **rendered) == count
    assert value(after, "contact_sheet_render_seconds_bucket", le="+Inf", **rendered) == count
    assert value(after, "contact_sheet_render_seconds_bucket", le="0.5", **rendered) == 0
    assert value(after, "contact_sheet_render_seconds_sum", **rendered) >= 0.8 * count
    assert value(after, "contact_sheet_lane_running", lane="flash") == 0
    assert value(after, "contact_sheet_lane_queued", lane="flash") == 0
    assert value(after, "contact_sheet_lane_oldest_queued_seconds", lane="flash") == 0
    tokens = [s for s in after if s.name == "contact_sheet_lane_broker_tokens"]
    assert {s.labels["lane"]: s.value for s in tokens} == {"flash": 0, "pro": 0}
    unread = [r.getMessage() for r in caplog.records if r.name == "studio.metrics"]
    assert not unread, "every part of every scrape was read"
    assert value(after, "contact_sheet_credits_held", tier="flash") == 0
    assert value(after, "contact_sheet_credits_captured_total", tier="flash") == held

    # The worker's log: JSON lines only, and each render's line names its job.
    lines = [line for line in (tmp_path / "worker-flash.log").read_text().splitlines()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, "the worker wrote no JSON lines"
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    renders = [r for r in records if r["message"].endswith(" rendered")]
    assert len(renders) == count
    ids = set(batch.generations.values_list("pk", flat=True))
    for record in renders:
        assert record["batch"] == batch.pk and record["team"] == team.pk
        assert record["provider"] == "offline" and record["lane"] == "flash"
        assert record["generation"] in ids
    assert {r["generation"] for r in renders} == ids


# --- faults, per credential -------------------------------------------------------------


@pytest.fixture
def gemini(settings):
    with FakeGemini(retry_after="1") as fake:
        settings.FLASH_PROVIDER = "gemini"
        settings.GEMINI_API_BASE = fake.url
        settings.GEMINI_API_KEY = fake.api_key
        settings.GENERATION_MAX_ATTEMPTS = 2
        settings.GENERATION_RETRY_BASE_SECONDS = 0.05
        quotas.reset(quotas.credential_for("gemini"))
        yield fake
        quotas.reset(quotas.credential_for("gemini"))


def drain(timeout: float = 60) -> None:
    from generation.tasks import run_lane

    deadline = time.monotonic() + timeout
    while Generation.objects.filter(status__in=OUTSTANDING).exists():
        assert time.monotonic() < deadline, "the lane did not drain"
        if run_lane("flash") is None:
            time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_faults_are_counted_per_credential_and_reason(client, owner, team, gemini, metrics_on):
    fund(team, owner, amount=100_000)
    for scenario in ("429*1", "500", "400", "blocked"):
        submit(team, owner, count=1, prompt=f"a harbour [fault:{scenario}]")
    drain()
    samples = scrape(client)
    credential = quotas.credential_for("gemini").key
    assert gemini.api_key not in credential
    assert value(samples, "contact_sheet_provider_throttled_total", credential=credential) == 1
    # 429 once, then 500 once before its last attempt.
    assert value(samples, "contact_sheet_render_retries_total", credential=credential) == 2
    failures = "contact_sheet_render_failures_total"
    assert value(samples, failures, status="failed", reason="transient") == 1
    assert value(samples, failures, status="failed", reason="permanent") == 1
    assert value(samples, failures, status="blocked", reason="blocked") == 1
    assert value(samples, "contact_sheet_render_seconds_count", outcome="throttled") == 1
    assert value(samples, "contact_sheet_render_seconds_count", outcome="succeeded") == 1
    assert value(samples, "contact_sheet_render_seconds_count", outcome="error") == 4
    price = LIST_PRICES[("flash", "1K")]
    assert value(samples, "contact_sheet_credits_released_total", tier="flash") == 3 * price
    assert value(samples, "contact_sheet_credits_captured_total", tier="flash") == price
    assert value(samples, "contact_sheet_quota_in_flight", credential=credential) == 0
    assert secret_free(samples, gemini.api_key)
    # This test renders in its own process: no worker serves either lane.
    assert value(samples, "contact_sheet_lane_workers", lane="flash") == 0
    assert value(samples, "contact_sheet_lane_workers", lane="pro") == 0


def secret_free(samples, secret: str) -> bool:
    return all(secret not in str(sample) for sample in samples)


@pytest.mark.django_db(transaction=True)
def test_the_sweepers_requeues_are_counted(client, owner, team, metrics_on):
    fund(team, owner, amount=100_000)
    batch = submit(team, owner, count=2)
    lost = batch.generations.first()
    Generation.objects.filter(pk=lost.pk).update(
        status=Status.RUNNING, attempts=1, lease_until=timezone.now()
    )
    lanes.sweep(now=timezone.now() + timedelta(seconds=1))
    samples = scrape(client)
    assert value(samples, "contact_sheet_sweeper_requeued_total", lane="flash", cause="lease") == 1


def test_counting_never_stands_in_a_renders_way(monkeypatch):
    import redis

    from studio.launcher import free_port

    dead = redis.Redis(port=free_port(), socket_timeout=0.2, socket_connect_timeout=0.2)
    monkeypatch.setitem(metrics._cached, "client", dead)
    metrics.count("contact_sheet_render_retries_total", lane="flash")
    metrics.observe("contact_sheet_render_seconds", 1.0, lane="flash")


# --- log lines ----------------------------------------------------------------------------


def test_json_lines_carry_the_render_they_belong_to():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    handler.addFilter(RenderContext())
    logger = logging.getLogger("tests.render")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("outside any render")
        with render_fields(batch=7, generation=42, team=3, provider="gemini", lane="flash"):
            logger.warning("the provider answered %s", 429)
            try:
                raise ValueError("broken")
            except ValueError:
                logger.exception("unexpected")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    outside, inside, failed = (json.loads(line) for line in stream.getvalue().splitlines())
    assert outside.keys() == {"time", "level", "logger", "message"}
    assert inside == {
        "time": inside["time"],
        "level": "WARNING",
        "logger": "tests.render",
        "message": "the provider answered 429",
        "batch": 7,
        "generation": 42,
        "team": 3,
        "provider": "gemini",
        "lane": "flash",
    }
    assert inside["time"].endswith("+00:00")
    assert failed["generation"] == 42 and "ValueError: broken" in failed["exception"]


def test_an_unknown_log_format_stops_the_start_with_a_sentence(tmp_path):
    env = {**os.environ, "LOG_FORMAT": "yaml", "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "LOG_FORMAT must be plain or json; got 'yaml'" in result.stderr
