"""Provider quotas against the real Redis: slots, spacing, 429 back-off, and
what the grid says while it waits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace

import pytest

from generation import quotas
from tests.conftest import BASE_DIR


@pytest.fixture
def credential():
    """A credential of its own for each test (keys are shared by every host)."""
    made = quotas.Credential(provider="gemini", key=f"test:{uuid.uuid4().hex}", in_flight=3)
    yield made
    quotas.reset(made)


def take(credential, n: int, *, wait: float = 0.0, lease: float = 30.0):
    return [quotas.acquire(credential, lease_seconds=lease, wait_seconds=wait) for _ in range(n)]


def test_no_more_than_the_in_flight_limit_at_once(credential):
    slots = take(credential, 3)
    assert all(slots)
    assert quotas.acquire(credential, lease_seconds=30, wait_seconds=0.2) is None
    slots[0].succeeded()
    assert quotas.acquire(credential, lease_seconds=30, wait_seconds=0.2) is not None


def test_a_slot_of_a_dead_worker_expires_with_its_lease(credential):
    take(credential, 3, lease=0.3)  # never given back, as by a killed worker
    assert quotas.acquire(credential, lease_seconds=30, wait_seconds=1.0) is not None


def test_starts_are_spaced_by_the_per_minute_limit(credential):
    paced = replace(credential, in_flight=None, requests_per_minute=600)  # 10 a second
    started = time.monotonic()
    for slot in take(paced, 25, wait=10):
        slot.release()
    elapsed = time.monotonic() - started
    # A second's worth (10) at once, then one every 100 ms.
    assert 1.3 <= elapsed < 3.0, elapsed


def test_a_429_pauses_everyone_and_narrows_the_window_then_it_grows_back(credential, monkeypatch):
    slots = take(credential, 3)
    slots[0].throttled(0.5)
    for slot in slots[1:]:
        slot.throttled(0.5)  # the same burst: counted once
    state = quotas.state(credential)
    assert state.paused_seconds > 0.3
    assert state.window == 1.5
    assert state.is_bottleneck(credential)
    assert quotas.acquire(credential, lease_seconds=30, wait_seconds=0.1) is None  # paused

    time.sleep(0.6)
    first = quotas.acquire(credential, lease_seconds=30, wait_seconds=0.1)
    assert first is not None
    assert quotas.acquire(credential, lease_seconds=30, wait_seconds=0.1) is None  # window 1
    for _ in range(6):
        first.succeeded()
        first = quotas.acquire(credential, lease_seconds=30, wait_seconds=0.5)
    first.release()
    # Additive increase, but only to just under the 3 that were refused.
    assert quotas.state(credential).window == 2
    assert len([s for s in take(credential, 3, wait=0.1) if s]) == 2
    quotas.reset(credential)


def test_the_window_probes_past_the_refused_level_once_the_memory_fades(credential, monkeypatch):
    monkeypatch.setattr(quotas, "CEILING_MEMORY_SECONDS", 0.5)
    for slot in take(credential, 3):
        slot.throttled(0.05)
    time.sleep(0.6)
    for _ in range(8):
        slot = quotas.acquire(credential, lease_seconds=30, wait_seconds=0.5)
        slot.succeeded()
    assert quotas.state(credential).window is None  # back to the configured 3
    assert all(take(credential, 3))


def test_the_offline_renderer_is_not_metered_unless_limited():
    assert not quotas.credential_for("offline").metered
    assert quotas.credential_for("gemini").metered


@pytest.mark.parametrize("value", ["0", "-3", "ten", "1.5"])
def test_a_misconfigured_quota_is_refused_at_start_in_words(value):
    env = {**os.environ, "GEMINI_MAX_IN_FLIGHT": value, "DJANGO_SETTINGS_MODULE": "studio.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        f"GEMINI_MAX_IN_FLIGHT must be a whole number of at least 1 (or empty for no limit); "
        f"got {value!r}." in done.stderr
    )


def test_the_grid_says_it_waits_for_the_rate_limit(owner, team, settings):
    from generation.requests import parse_batch_request
    from generation.selectors import batch_changes
    from generation.services import batch_submit
    from tests.reliability.conftest import fund

    settings.FLASH_PROVIDER = "gemini"
    settings.GEMINI_API_BASE = f"http://quota-test-{uuid.uuid4().hex}"
    settings.PROVIDER_QUOTAS = {**settings.PROVIDER_QUOTAS, "gemini": {
        "in_flight": 2, "requests_per_minute": None, "images_per_minute": None}}  # fmt: skip
    fund(team, owner)
    request = parse_batch_request(
        {"prompt": "waiting", "tier": "flash", "size": "1K", "aspect": "1:1", "count": 3}
    )
    batch = batch_submit(team=team, member=owner, request=request)
    credential = quotas.credential_for("gemini")
    try:
        assert batch_changes(team=team, pk=batch.pk, since=None).progress.waiting_for == ""
        held = take(credential, 2)
        assert (
            batch_changes(team=team, pk=batch.pk, since=None).progress.waiting_for
            == "Gemini's rate limit"
        )
        for slot in held:
            slot.release()
    finally:
        quotas.reset(credential)
