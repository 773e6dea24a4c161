"""B1–B4 and worker memory: the generation pipeline through real workers.

Every time is taken from timestamps the workers write (`finished_at`,
`started_at`, the baseline row's `finished`) against the moment the bench
submitted, so how often the bench polls does not enter the figures.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

from .stats import Figure, Row, p95, ratio_text, verdict

CORES = os.cpu_count() or 2


class Studio:
    """A team with two members and plenty of credits."""

    def __init__(self):
        from django.contrib.auth import get_user_model

        from billing.services import wallet_top_up
        from studio.models import Membership, Role
        from studio.services import team_create

        users = get_user_model()
        tag = uuid.uuid4().hex[:6]
        self.owner = users.objects.create_user(f"bench-owner-{tag}", password="x" * 20)
        self.team = team_create(name=f"Bench {tag}", owner=self.owner)
        self.teammate = users.objects.create_user(f"bench-mate-{tag}", password="x" * 20)
        Membership.objects.create(team=self.team, user=self.teammate, role=Role.MEMBER)
        for n in range(5):
            wallet_top_up(
                team=self.team,
                amount=5_000_000,
                actor=self.owner,
                note="bench",
                idempotency_key=f"bench-top-up-{tag}-{n}",
            )

    def submit(self, *, member=None, count=1, tier="flash", size="1K"):
        from generation.requests import parse_batch_request
        from generation.services import batch_submit

        request = parse_batch_request(
            {
                "prompt": f"bench {uuid.uuid4().hex}",
                "tier": tier,
                "size": size,
                "aspect": "1:1",
                "count": count,
                "seed": "",
            }
        )
        started = time.time()
        batch = batch_submit(team=self.team, member=member or self.owner, request=request)
        return batch, started


def wait_batch(batch, timeout: float = 120) -> list:
    from generation.models import OUTSTANDING, Generation

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Generation.objects.filter(batch=batch, status__in=OUTSTANDING).exists():
            rows = list(Generation.objects.filter(batch=batch))
            failed = [g for g in rows if g.status != "succeeded"]
            if failed:
                raise RuntimeError(f"batch {batch.pk}: {failed[0].status}: {failed[0].error}")
            return rows
        time.sleep(0.005)
    raise RuntimeError(f"batch {batch.pk} did not finish within {timeout:.0f} s")


def wait_idle(tier: str, timeout: float = 60) -> None:
    from generation.models import Generation

    deadline = time.monotonic() + timeout
    while Generation.objects.filter(tier=tier, status="running").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{tier} jobs still running after {timeout:.0f} s")
        time.sleep(0.02)


def sample_image(path: Path, *, size: str = "1K", tier: str = "flash") -> bytes:
    """An image exactly as the offline renderer makes it."""
    from generation.providers.base import RenderRequest
    from generation.providers.offline import render_image

    image = render_image(
        RenderRequest(
            prompt="a lighthouse at dusk, contact sheet bench",
            seed=7,
            tier=tier,
            size=size,
            aspect="1:1",
            model="bench",
            references=(),
        )
    )
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    path.write_bytes(out.getvalue())
    return out.getvalue()


# --- B1 ----------------------------------------------------------------------------


def _pipeline_per_image(studio: Studio, n: int) -> float:
    batch, started = studio.submit(count=n)
    rows = wait_batch(batch)
    return (max(g.finished_at.timestamp() for g in rows) - started) / n * 1000


def _baseline_per_image(image_path: Path, n: int) -> float:
    from django.db import connection

    from .worker_app import baseline

    marker = uuid.uuid4().hex
    started = time.time()
    for _ in range(n):
        baseline.apply_async(args=[str(image_path), marker], queue="flash")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*), MAX(finished) FROM bench_row WHERE marker = %s", [marker]
            )
            done, last = cursor.fetchone()
        if done == n:
            return (last - started) / n * 1000
        time.sleep(0.005)
    raise RuntimeError("baseline tasks did not finish")


def b1_overhead(ctx, runs: int = 7, n: int = 10) -> list[Row]:
    image_path = ctx.data_dir / "flash-1k.png"
    sample_image(image_path)
    ctx.workers.start("flash", 1, BENCH_FIXED_IMAGE=str(image_path))
    studio = ctx.studio
    _pipeline_per_image(studio, 2)  # warm both paths: imports, connections
    _baseline_per_image(image_path, 2)
    ours, base = [], []
    for _ in range(runs):
        ours.append(_pipeline_per_image(studio, n))
        base.append(_baseline_per_image(image_path, n))
    ours_f, base_f = Figure.of(ours), Figure.of(base)
    ratio = ours_f.median / base_f.median
    ctx.b1_baseline_ms = base_f.median
    ctx.workers.stop("flash")
    return [
        Row(
            "B1",
            "per-image pipeline, zero-latency provider, 1 worker process (Flash 1K)",
            str(ours_f),
            f"{base_f} bare Celery task + Pillow thumbnail + 1 row",
            ratio_text(ratio),
            "≤ 1.5×",
            verdict(ratio <= 1.5),
        )
    ]


# --- B2 and B4 -----------------------------------------------------------------------


def b2_grid(ctx, runs: int = 3) -> list[Row]:
    # The lane's own pool (50 threads); the CPU-bound steps share one slot per core.
    ctx.workers.start("flash", 50)
    studio = ctx.studio
    wait_batch(studio.submit(count=CORES * 2)[0])  # warm imports and connections
    seconds = []
    for _ in range(runs):
        batch, started = studio.submit(count=50)
        rows = wait_batch(batch)
        seconds.append(max(g.finished_at.timestamp() for g in rows) - started)
        ctx.last_grid = batch
    figure = Figure.of(seconds, "s", 2)
    baseline = ctx.b1_baseline_ms * 50 / CORES / 1000
    ratio = figure.median / baseline
    return [
        Row(
            "B2",
            f"50-image Flash 1K grid, submit → all done, offline renderer at zero latency, "
            f"one worker ({CORES} CPU slots)",
            str(figure),
            f"{baseline:.2f} s (B1 baseline × 50 / {CORES})",
            ratio_text(ratio),
            "≤ 10 s (ratio reported)",
            verdict(figure.median <= 10),
        )
    ]


B4_SLOTS = 8


def b4_fairness(ctx, runs: int = 5) -> list[Row]:
    """A teammate's single image submitted while a 50-image grid is running, 8 in flight."""
    from generation.models import Generation
    from generation.services import batch_cancel

    ctx.workers.start("flash", B4_SLOTS, OFFLINE_FLASH_LATENCY=0.5)
    studio = ctx.studio
    slots, waits = [], []
    for _ in range(runs):
        grid, _ = studio.submit(count=50)
        under_way = Generation.objects.filter(batch=grid, started_at__isnull=False)
        while under_way.count() < B4_SLOTS + 2:
            time.sleep(0.005)
        single, submitted = studio.submit(member=studio.teammate, count=1)
        mine = wait_batch(single)[0]
        begun = mine.started_at
        ahead = Generation.objects.filter(batch=grid, started_at__lt=begun).exclude(
            finished_at__lt=_dt(submitted)
        )
        slots.append(ahead.count())
        waits.append((begun.timestamp() - submitted) * 1000)
        batch_cancel(batch=grid)
        wait_idle("flash")
    slot_f = Figure.of(slots, "slots", 1)
    return [
        Row(
            "B4",
            f"fairness: jobs a teammate's single image waits behind a 50-image grid "
            f"(C = {B4_SLOTS} in flight, 0.5 s renders); worst {max(slots)}, "
            f"wait {Figure.of(waits)}",
            str(slot_f),
            f"C + 1 = {B4_SLOTS + 1} lane job slots",
            ratio_text(max(slots) / (B4_SLOTS + 1)),
            f"≤ {B4_SLOTS + 1} slots",
            verdict(max(slots) <= B4_SLOTS + 1),
        )
    ]


def _dt(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


# --- B3 --------------------------------------------------------------------------------


PRO_LATENCY = 2.0


def _flash_latencies(studio: Studio, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        batch, started = studio.submit(count=1)
        row = wait_batch(batch)[0]
        out.append((row.finished_at.timestamp() - started) * 1000)
    return out


def b3_isolation(ctx, rounds: int = 3, samples: int = 15) -> list[Row]:
    from generation.models import Generation
    from generation.services import batch_cancel

    studio = ctx.studio
    ctx.workers.start("pro", 2, OFFLINE_PRO_LATENCY=PRO_LATENCY)
    _flash_latencies(studio, 3)  # warm-up
    idle, busy, still_saturated = [], [], True
    for _ in range(rounds):
        idle.append(p95(_flash_latencies(studio, samples)))
        pro_batches = [studio.submit(member=studio.teammate, tier="pro", size="1K", count=8)[0]]
        pro_batches.append(studio.submit(member=studio.teammate, tier="pro", size="1K", count=8)[0])
        while Generation.objects.filter(tier="pro", status="running").count() < 2:
            time.sleep(0.01)
        busy.append(p95(_flash_latencies(studio, samples)))
        queued = Generation.objects.filter(tier="pro", status="queued").count()
        still_saturated = still_saturated and queued > 0
        for batch in pro_batches:
            batch_cancel(batch=batch)
        wait_idle("pro", timeout=PRO_LATENCY * 4)
    ctx.workers.stop("pro")
    idle_f, busy_f = Figure.of(idle), Figure.of(busy)
    ratio = busy_f.median / idle_f.median
    note = "" if still_saturated else " (Pro queue ran dry during a round)"
    return [
        Row(
            "B3",
            f"lane isolation: Flash 1K p95 submit → done, Pro lane saturated "
            f"(2 × {PRO_LATENCY:.0f} s renders, {samples} samples a round){note}",
            str(busy_f),
            f"{idle_f} Pro lane idle",
            ratio_text(ratio),
            "≤ 1.2×",
            verdict(ratio <= 1.2),
        )
    ]


# --- worker memory at 4K --------------------------------------------------------------------


def worker_memory_4k(ctx) -> list[Row]:
    studio = ctx.studio
    ctx.workers.start("pro", 1)
    wait_batch(studio.submit(member=studio.teammate, tier="pro", size="4K", count=2)[0], 300)
    pro = ctx.workers.peak_rss_mb("pro")
    ctx.workers.stop("pro")
    wait_batch(studio.submit(tier="flash", size="4K", count=CORES)[0], 300)
    flash = ctx.workers.peak_rss_mb("flash")
    peak = max(pro, flash)
    return [
        Row(
            "M1",
            f"peak worker memory rendering 4K (VmHWM of a job process; Pro {pro:.0f} MB, "
            f"Flash {flash:.0f} MB)",
            f"{peak:.0f} MB",
            "—",
            "—",
            "< 400 MB",
            verdict(peak < 400),
        )
    ]
