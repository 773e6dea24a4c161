"""B11–B14: the lanes at the models' own latency and under a provider's quota.

A remote render mostly waits, so a lane's speed is how many renders it
keeps in flight, not how many cores it has. Each figure is set against the
bound the work itself sets in the same run: one render's latency (B11,
B12), or what the quota allows (B13).
"""

from __future__ import annotations

import time

from .pipeline import wait_batch
from .stats import Figure, Row, ratio_text, verdict

FLASH_LATENCY = 5.0
PRO_LATENCY = 15.0


TIMELINES: dict[str, list[tuple[float, float, float]]] = {}


def _grid_seconds(studio, *, count: int, tier: str, size: str, timeout: float = 300) -> float:
    """Submit → last image stored; also notes when the last claim and the first finish came."""
    batch, started = studio.submit(count=count, tier=tier, size=size)
    rows = wait_batch(batch, timeout)
    finished = [g.finished_at.timestamp() - started for g in rows]
    last_claim = max(g.started_at.timestamp() for g in rows) - started
    TIMELINES.setdefault(tier, []).append((last_claim, min(finished), max(finished)))
    return max(finished)


def _timeline(tier: str) -> str:
    last_claim, first, last = TIMELINES.pop(tier)[-1]
    return f"last claim +{last_claim:.1f} s, first stored +{first:.1f} s, last +{last:.1f} s"


def b11_flash_grid_at_latency(ctx, runs: int = 3) -> list[Row]:
    ctx.workers.start("flash", 50, OFFLINE_FLASH_LATENCY=FLASH_LATENCY)
    studio = ctx.studio
    _grid_seconds(studio, count=4, tier="flash", size="1K")  # warm imports and connections
    TIMELINES.clear()
    figure = Figure.of(
        [_grid_seconds(studio, count=50, tier="flash", size="1K") for _ in range(runs)], "s", 2
    )
    ctx.workers.stop("flash")
    ratio = figure.median / FLASH_LATENCY
    return [
        Row(
            "B11",
            f"50 × Flash 1K, offline renderer at {FLASH_LATENCY:.0f} s a render, one Flash "
            f"worker (50 in flight), submit → all done ({_timeline('flash')})",
            str(figure),
            f"{FLASH_LATENCY:.0f} s (one render's latency)",
            ratio_text(ratio),
            "≤ 1.5×",
            verdict(ratio <= 1.5),
        )
    ]


def b12_pro_grid_at_latency(ctx, runs: int = 2) -> list[Row]:
    ctx.workers.start("pro", 16, OFFLINE_PRO_LATENCY=PRO_LATENCY)
    studio = ctx.studio
    figure = Figure.of(
        [_grid_seconds(studio, count=8, tier="pro", size="4K") for _ in range(runs)], "s", 2
    )
    ctx.workers.stop("pro")
    ratio = figure.median / PRO_LATENCY
    return [
        Row(
            "B12",
            f"8 × Pro 4K, offline renderer at {PRO_LATENCY:.0f} s a render, one Pro worker "
            f"(16 in flight), submit → all done ({_timeline('pro')})",
            str(figure),
            f"{PRO_LATENCY:.0f} s (one render's latency)",
            ratio_text(ratio),
            "≤ 1.3×",
            verdict(ratio <= 1.3),
        )
    ]


def b13_quota_bound(ctx, images: int = 300) -> list[Row]:
    """300 images against a provider that enforces 20 in flight and 600 a minute with 429s."""
    from django.test import override_settings

    from tests.fakes.gemini_server import FakeGemini

    in_flight, per_minute = 20, 600
    with (
        FakeGemini(
            record_bodies=False,
            latency=1.0,
            max_in_flight=in_flight,
            requests_per_minute=per_minute,
        ) as fake,
        override_settings(
            FLASH_PROVIDER="gemini",
            GEMINI_API_BASE=fake.url,
            GEMINI_API_KEY=fake.api_key,
            LANE_MEMBER_OUTSTANDING_CAP=images,
        ),
    ):
        ctx.workers.start(
            "flash",
            50,
            FLASH_PROVIDER="gemini",
            GEMINI_API_BASE=fake.url,
            GEMINI_API_KEY=fake.api_key,
            GEMINI_MAX_IN_FLIGHT=in_flight,
            GEMINI_REQUESTS_PER_MINUTE=per_minute,
        )
        studio = ctx.studio
        started = time.time()
        batches = [studio.submit(count=50, tier="flash", size="1K")[0] for _ in range(images // 50)]
        finished = max(max(g.finished_at.timestamp() for g in wait_batch(b, 300)) for b in batches)
        ctx.workers.stop("flash")
        seconds = finished - started
        refused = fake.throttled / max(1, fake.throttled + fake.answered)
    bound = images / per_minute * 60
    ratio = seconds / bound
    return [
        Row(
            "B13",
            f"{images} images, fake provider (1 s a render) enforcing {in_flight} in flight and "
            f"{per_minute}/min with 429s; {fake.throttled} answered 429 ({refused:.1%}, "
            "target ≤ 2 %)",
            f"{seconds:.1f} s",
            f"{bound:.0f} s ({images} / {per_minute} a minute)",
            ratio_text(ratio),
            "≤ 1.15×, ≤ 2 % 429",
            verdict(ratio <= 1.15 and refused <= 0.02),
        )
    ]


def b14_memory_in_flight(ctx) -> list[Row]:
    """Peak RSS of both lane workers with 50 Flash 1K and 16 Pro 4K renders in flight."""
    from generation.models import Generation

    ctx.workers.start("flash", 50, OFFLINE_FLASH_LATENCY=8)
    ctx.workers.start("pro", 16, OFFLINE_PRO_LATENCY=15)
    studio = ctx.studio
    flash, _ = studio.submit(count=50, tier="flash", size="1K")
    pros = [studio.submit(member=studio.teammate, count=8, tier="pro", size="4K")[0] for _ in "ab"]
    peak_running = 0
    deadline = time.monotonic() + 300
    batches = [flash, *pros]
    while time.monotonic() < deadline:
        running = Generation.objects.filter(batch__in=batches, status="running").count()
        peak_running = max(peak_running, running)
        if not Generation.objects.filter(
            batch__in=batches, status__in=("queued", "running")
        ).exists():
            break
        time.sleep(0.2)
    for batch in batches:
        wait_batch(batch, 60)
    flash_mb, pro_mb = ctx.workers.peak_rss_mb("flash"), ctx.workers.peak_rss_mb("pro")
    ctx.workers.stop("flash")
    ctx.workers.stop("pro")
    total = flash_mb + pro_mb
    return [
        Row(
            "B14",
            f"peak RSS of the worker host, 50 Flash 1K + 16 Pro 4K in flight (offline renderer; "
            f"Flash worker {flash_mb:.0f} MB + Pro worker {pro_mb:.0f} MB; "
            f"{peak_running} renders in flight at most)",
            f"{total:.0f} MB",
            "—",
            "—",
            "≤ 1,500 MB",
            verdict(total <= 1500),
        )
    ]
