"""Run every benchmark and write bench/RESULTS.md.

    python -m studio.launcher bench            # all of them (what `make bench` runs)
    python -m studio.launcher bench B1 B9      # only these (RESULTS.md is not written)

PostgreSQL when DATABASE_URL points at it (a fresh database is created and
dropped), SQLite otherwise. Redis: REDIS_URL, or a private one.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import environment
from .stats import Row, as_table

HERE = Path(__file__).resolve().parent


@dataclass
class Context:
    place: environment.Place
    data_dir: Path
    workers: object = None
    studio: object = None
    b1_baseline_ms: float | None = None
    last_grid: object = None
    notes: list[str] = field(default_factory=list)


def benchmarks():
    from . import batch_lane, campaigns, comfyui, ingest, lanes, ledger, pages, pipeline

    return [
        ("B1", pipeline.b1_overhead),
        ("B2", pipeline.b2_grid),
        ("B4", pipeline.b4_fairness),
        ("B3", pipeline.b3_isolation),
        ("M1", pipeline.worker_memory_4k),
        ("B11", lanes.b11_flash_grid_at_latency),
        ("B12", lanes.b12_pro_grid_at_latency),
        ("B13", lanes.b13_quota_bound),
        ("B14", lanes.b14_memory_in_flight),
        ("B5", pages.b5_project_page),
        ("B6", pages.b6_grid_poll),
        ("B7", pages.b7_history),
        ("B10", pages.b10_page_weight),
        ("B8", ledger.b8_ledger),
        ("B9", ingest.b9_ingest),
        ("B15", campaigns.b15_campaign_submit),
        ("B16", batch_lane.b16_batch_lane_ingest),
        ("B17", comfyui.b17_comfyui_lane),
    ]


def machine(place: environment.Place) -> str:
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0].split()[0]
        else:
            cursor.execute("SELECT sqlite_version()")
            version = cursor.fetchone()[0]
    return (
        f"{os.cpu_count()} cores, {memory} memory, Python {platform.python_version()}, "
        f"{place.engine} {version}, {platform.system()} {platform.machine()}"
    )


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{out}{' (with uncommitted changes)' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


NOTES = """\
How to read it: every figure is the median of repeated runs, ± half the
interquartile range (half the min–max span under 4 runs), n = runs. The
baseline is measured in the same run on the same machine; the ratio is
ours ÷ baseline (B8: ours ÷ baseline, higher is better). "MISS" means the
target is not met: the target stays, the figure says how far off it is.
"""


def write_results(rows: list[Row], header: str, elapsed: float, notes: list[str]) -> None:
    text = [
        "# Benchmark results",
        "",
        'Written by `make bench` (`python -m studio.launcher bench`); see README.md, "Benchmarks".',
        "",
        header,
        "",
        as_table(rows),
        "",
        NOTES,
    ]
    if notes:
        text += ["## Notes from this run", ""] + [f"- {n}" for n in notes] + [""]
    text.append(f"Whole run: {elapsed:.0f} s.")
    (HERE / "RESULTS.md").write_text("\n".join(text) + "\n")


def main(argv: list[str]) -> int:
    chosen = {a.upper() for a in argv if not a.startswith("-")}
    started = time.monotonic()
    place = environment.prepare()
    with ExitStack() as stack:
        if not os.environ.get("REDIS_URL"):
            from studio.launcher import embedded_redis

            os.environ["REDIS_URL"] = stack.enter_context(
                embedded_redis(place.data_dir / "redis", persist=False)
            )
        import django

        django.setup()
        stack.callback(environment.teardown, place)
        environment.migrate()
        from .pipeline import Studio
        from .workers import Workers, purge_lanes

        purge_lanes()
        ctx = Context(place=place, data_dir=place.data_dir)
        ctx.workers = Workers(place.data_dir)
        stack.callback(ctx.workers.stop_all)
        ctx.studio = Studio()
        header = (
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n"
            f"- commit: {git_commit()}\n"
            f"- machine: {machine(place)}\n"
            f"- database: {place.engine}; Redis: {os.environ['REDIS_URL'].split('@')[-1]}"
        )
        print(header, flush=True)
        rows: list[Row] = []
        for name, run in benchmarks():
            if chosen and name not in chosen:
                continue
            began = time.monotonic()
            print(f"[bench] {name} …", flush=True)
            try:
                produced = run(ctx)
            except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the rest
                traceback.print_exc()
                produced = [Row(name, f"failed: {error}"[:160], "—", verdict="error")]
            for row in produced:
                print(f"[bench] {row.id}: {row.ours} | {row.ratio} | {row.verdict}", flush=True)
            print(f"[bench] {name} took {time.monotonic() - began:.1f} s", flush=True)
            rows.extend(produced)
        elapsed = time.monotonic() - started
        print()
        print(header)
        print()
        print(as_table(rows))
        print(f"\nWhole run: {elapsed:.0f} s.")
        for note in ctx.notes:
            print(f"- {note}")
        if not chosen:
            write_results(rows, header, elapsed, ctx.notes)
            print(f"Wrote {HERE / 'RESULTS.md'}")
    return 1 if any(r.verdict == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
