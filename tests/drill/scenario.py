"""What the multi-host drill proves, step by step, with the figures it prints.

Run it with `make drill` (or `python -m tests.drill`); the slow test in
tests/drill/test_multi_host.py runs the same steps and asserts on them.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .cluster import BASE_DIR, BIN, Cluster

THROUGHPUT_LATENCY = 2.0  # seconds a render waits on the "model"
THROUGHPUT_IN_FLIGHT = 8  # per worker host, so one host's bound is 4 images a second
THROUGHPUT_IMAGES = 48


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    rates: dict[int, float] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[drill] {text}", flush=True)
        self.lines.append(text)


def _span(batch: dict) -> float:
    """Seconds from the batch's creation to its last image's finish, from the API."""
    created = datetime.fromisoformat(batch["created"])
    finished = max(datetime.fromisoformat(i["finished_at"]) for i in batch["images"])
    return (finished - created).total_seconds()


def _statuses(batch: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for image in batch["images"]:
        counts[image["status"]] = counts.get(image["status"], 0) + 1
    return counts


def run(folder: Path) -> Report:
    report = Report()
    with Cluster(folder) as cluster:
        hosts = ", ".join(f"{h.name} {h.address}" for h in cluster.hosts.values())
        report.say(f"hosts: {hosts}")

        # 1. A grid through the web host, rendered on a worker host, stored in S3.
        cluster.start_worker("worker1", in_flight=50, latency=1.0)
        grid = cluster.wait_batch(cluster.submit(count=50, prompt="drill grid across hosts")["id"])
        objects = cluster.s3_objects()
        first = grid["images"][0]
        download = cluster.api().get(first["download_url"])
        report.facts.update(
            grid=_statuses(grid), s3_objects=len(objects),
            served=download.status_code == 200 and download.content[:8] == b"\x89PNG\r\n\x1a\n",
        )  # fmt: skip
        report.say(
            f"50-image grid: {_statuses(grid)} in {_span(grid):.1f} s; {len(objects)} objects in "
            f"S3; an original served by the web host: {download.status_code}, "
            f"{len(download.content):,} bytes"
        )

        # 2. Throughput with 1, 2 and 3 worker hosts, renders bound by latency.
        cluster.stop("worker1-flash")
        for hosts_up in (1, 2, 3):
            host = f"worker{hosts_up}"
            cluster.start_worker(host, in_flight=THROUGHPUT_IN_FLIGHT, latency=THROUGHPUT_LATENCY)
            batch = cluster.wait_batch(
                cluster.submit(count=THROUGHPUT_IMAGES, prompt=f"throughput {hosts_up}")["id"]
            )
            report.rates[hosts_up] = THROUGHPUT_IMAGES / _span(batch) * 60
        bound = THROUGHPUT_IN_FLIGHT / THROUGHPUT_LATENCY * 60
        report.say(
            f"throughput, {THROUGHPUT_IN_FLIGHT} renders in flight per host at "
            f"{THROUGHPUT_LATENCY:.0f} s each (one host's bound {bound:.0f} images/min):"
        )
        for n, rate in report.rates.items():
            report.say(
                f"  {n} worker host{'s' if n > 1 else ''}: {rate:.0f} images/min, "
                f"{rate / (n * report.rates[1]):.2f} of linear"
            )

        # 3. The scheduler on two hosts, then a worker host lost mid-batch.
        cluster.start_scheduler("worker1")
        cluster.start_scheduler("worker2")
        lost = cluster.submit(count=40, prompt="a host is lost mid-batch")
        time.sleep(2.5)
        # Caught mid-capture: PostgreSQL keeps a lost peer's transaction and its
        # locks until it notices the peer is gone (DB_IDLE_IN_TRANSACTION_SECONDS).
        cluster.hold_wallets("worker3")
        cluster.kill_host("worker3")
        report.say(
            "worker3: link set down with a transaction holding the wallets' locks,"
            " then its processes killed, mid-batch"
        )
        lost = cluster.wait_batch(lost["id"], timeout=240)
        report.facts["lost"] = _statuses(lost)
        report.say(f"the lost host's batch: {_statuses(lost)} in {_span(lost):.0f} s")

        # 4. Redis restarted mid-batch, with a submit while it is down.
        during = cluster.submit(count=30, prompt="redis restarts")
        time.sleep(1.0)
        cluster.stop("redis")
        outage = cluster.api().post("/api/v1/batches", json={
            "prompt": "submitted while redis is down", "tier": "flash", "size": "512",
            "aspect": "1:1", "count": 6})  # fmt: skip
        report.facts["redis_outage_status"] = outage.status_code
        report.say(f"submit with Redis down: {outage.status_code} {outage.text[:160]}")
        time.sleep(3)
        cluster.start_redis()
        batches = [during["id"]] + ([outage.json()["id"]] if outage.status_code == 201 else [])
        report.facts["redis"] = [_statuses(cluster.wait_batch(b, timeout=240)) for b in batches]
        report.say(f"after Redis came back: {report.facts['redis']}")

        # 5. PostgreSQL restarted mid-batch, with a submit while it is down.
        during = cluster.submit(count=30, prompt="postgres restarts")
        time.sleep(1.0)
        cluster.stop("postgres", wait=30)
        outage = cluster.api().post("/api/v1/batches", json={
            "prompt": "submitted while the database is down", "tier": "flash", "size": "512",
            "aspect": "1:1", "count": 6})  # fmt: skip
        report.facts["db_outage_status"] = outage.status_code
        report.say(f"submit with PostgreSQL down: {outage.status_code} {outage.text[:160]}")
        time.sleep(3)
        cluster.start_postgres()
        cluster.wait_for(cluster._pg_ready, "PostgreSQL")
        report.facts["postgres"] = _statuses(cluster.wait_batch(during["id"], timeout=240))
        report.say(f"after PostgreSQL came back: {report.facts['postgres']}")

        # 6. The books, and how often the two schedulers' sweeps ran.
        reconcile = cluster.manage("reconcile")
        report.facts["reconcile"] = reconcile.strip()
        report.facts["double_charges"] = int(
            cluster.manage("shell", "-c", DOUBLE_CHARGES).strip().splitlines()[-1]
        )
        report.say(f"reconcile: {reconcile.strip()}")
        report.say(f"images charged more than once: {report.facts['double_charges']}")
        sweeps = skipped = 0
        for log in folder.glob("worker*-flash.log"):
            text = log.read_text(errors="replace")
            runs = re.findall(r"sweep_leases\[[^\]]+\] succeeded in [^:]+: (.*)", text)
            skipped += sum(1 for r in runs if "skipped" in r)
            sweeps += sum(1 for r in runs if "skipped" not in r)
        report.facts.update(sweeps=sweeps, sweeps_skipped=skipped)
        report.say(f"two schedulers: {sweeps} sweeps ran, {skipped} duplicate sends did nothing")
    return report


DOUBLE_CHARGES = """
from django.db.models import Count
from billing.models import LedgerEntry
print(LedgerEntry.objects.filter(kind="capture").values("idempotency_key")
      .annotate(n=Count("id")).filter(n__gt=1).count())
"""


def main() -> int:
    import tempfile

    from .network import why_not_available

    reason = why_not_available()
    if reason:
        print(f"[drill] skipped: {reason}")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="cs-drill-"))
    subprocess.run(["chmod", "755", str(folder)], check=True)
    print(f"[drill] logs in {folder}; the studio from {BASE_DIR} with {BIN / 'python'}")
    run(folder)
    return 0
