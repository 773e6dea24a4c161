"""Fixtures shared by the whole suite.

- Three personas for every view that touches team data: `owner` and
  `teammate` in one team, `stranger` in another.
- `lane_workers`: real Celery worker processes, one per lane, against the
  real Redis and the test database (tests that use them must be
  `transaction=True` so the workers can see committed rows).
- `browser_page`: Debian's Chromium driven by Playwright against the live
  server; skipped with a reason where Chromium is not installed.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in Redis; each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _seed_data_survives_flushes(request):
    """Transactional tests end with a flush that also empties the rows data
    migrations wrote (prices, credit packs); put them back for the next one."""
    markers = [m.kwargs.get("transaction") for m in request.node.iter_markers("django_db")]
    if not ({"transactional_db", "live_server"} & set(request.fixturenames) or any(markers)):
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps as django_apps
    from django.db import connection

    seed = importlib.import_module("billing.migrations.0002_default_prices_and_packs").seed
    seed(django_apps, connection.schema_editor())


# --- personas -----------------------------------------------------------------


def make_user(username: str, **extra):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username, password=PASSWORD, **extra)


@pytest.fixture
def owner(db):
    from studio.services import team_create

    user = make_user("olivia")
    team_create(name="Northlight Studio", owner=user)
    return user


@pytest.fixture
def team(owner):
    return owner.teams.get()


@pytest.fixture
def teammate(team):
    from studio.models import Membership, Role

    user = make_user("theo")
    Membership.objects.create(team=team, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def stranger(db):
    from studio.services import team_create

    user = make_user("sam")
    team_create(name="Elsewhere Pictures", owner=user)
    return user


@pytest.fixture
def client_for(client):
    """client_for(user) -> a test client signed in as that user."""
    from django.test import Client

    def build(user):
        signed_in = Client()
        signed_in.force_login(user)
        return signed_in

    return build


# --- real Celery workers --------------------------------------------------------


def database_url_for_workers() -> str:
    """The URL of the database the test run is using (pytest-django's test DB)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


class LaneWorkers:
    """Worker processes for the lanes, started and stopped by tests."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, lane: str, concurrency: int = 1, *, name: str = "", **env: str) -> None:
        """A worker on `lane` with `concurrency` threads; `name` tells a second worker
        of the same lane apart, `env` adds settings (quotas, latencies)."""
        key = name or lane
        log = open(self.log_dir / f"worker-{key}.log", "ab")
        self.processes[key] = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "studio", "worker", "-Q", lane,
                "-n", f"{key}-test-{os.getpid()}@%h", "--concurrency", str(concurrency),
                "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "-P", "threads",
            ],
            cwd=BASE_DIR, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.wait_ready(key)

    def wait_ready(self, key: str, timeout: float = 30.0) -> None:
        from studio.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[key].poll() is not None:
                raise RuntimeError(f"{key} worker exited; see {self.log_dir}")
            replies = app.control.inspect(timeout=0.5).active_queues() or {}
            for host, queues in replies.items():
                if host.startswith(f"{key}-test-{os.getpid()}@") and queues:
                    return
        raise RuntimeError(f"{key} worker did not come up within {timeout} s")

    def kill(self, lane: str, sig: int = 9) -> None:
        process = self.processes.pop(lane)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for lane in list(self.processes):
            process = self.processes[lane]
            try:
                os.killpg(process.pid, 15)
                process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
            process.wait()
            del self.processes[lane]


def purge_lanes() -> None:
    """Drop jobs left in the lane queues by an earlier test."""
    import redis

    from studio.celery import app

    with app.connection_for_write() as conn:
        for lane in ("flash", "pro"):
            conn.default_channel.queue_purge(lane)
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("unacked", "unacked_index")


@pytest.fixture
def lane_workers(transactional_db, tmp_path, settings):
    """Real workers of both lanes, reading the test database and media folder."""
    purge_lanes()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_workers(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("FLASH_PROVIDER", "PRO_PROVIDER", "GEMINI_API_BASE", "GEMINI_API_KEY",
                 "OFFLINE_FLASH_LATENCY", "OFFLINE_PRO_LATENCY", "GENERATION_RETRY_BASE_SECONDS",
                 "GENERATION_MAX_ATTEMPTS", "GENERATION_LEASE_SECONDS",
                 "RENDER_DEADLINE_SECONDS"):  # fmt: skip
        value = getattr(settings, name, None)
        if value is not None:
            env[name] = str(value)
    workers = LaneWorkers(env, tmp_path)
    yield workers
    workers.stop()
    purge_lanes()


@pytest.fixture
def both_lanes(lane_workers):
    lane_workers.start("flash")
    lane_workers.start("pro")
    return lane_workers


# --- the browser -----------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium_browser, live_server):
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.base_url = live_server.url
    yield page
    context.close()


def screenshot_path(name: str) -> Path:
    """Where a browser test saves a screenshot: the README's own folder when
    UPDATE_SCREENSHOTS=1, otherwise the run's data folder, so a test run
    leaves the checkout as it found it."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        folder = BASE_DIR / "docs" / "screenshots"
    else:
        folder = Path(settings.DATA_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{page.base_url}/signin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
