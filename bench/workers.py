"""Real Celery worker processes for the bench, one pool per lane."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


class Workers:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, lane: str, concurrency: int, **env: str) -> None:
        """Start a worker pool on `lane`; `env` overrides settings such as OFFLINE_PRO_LATENCY."""
        if lane in self.processes:
            self.stop(lane)
        name = f"{lane}-bench-{os.getpid()}"
        log = open(self.log_dir / f"worker-{lane}.log", "ab")
        self.processes[lane] = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "bench.worker_app", "worker", "-Q", lane,
                "-n", f"{name}@%h", "--concurrency", str(concurrency), "--loglevel", "WARNING",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-P", "threads",
            ],
            cwd=BASE_DIR,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in env.items()}},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._wait_ready(lane, name)

    def _wait_ready(self, lane: str, name: str, timeout: float = 60) -> None:
        from studio.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[lane].poll() is not None:
                raise RuntimeError(f"the {lane} worker exited; see {self.log_dir}")
            replies = app.control.inspect(timeout=0.5).active_queues() or {}
            if any(host.startswith(f"{name}@") and queues for host, queues in replies.items()):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the {lane} worker did not come up within {timeout:.0f} s")

    def peak_rss_mb(self, lane: str) -> float:
        """The highest resident memory the lane's worker process has reached (VmHWM).

        The lane runs its renders on threads, so one process holds them all."""
        pid = self.processes[lane].pid
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self, lane: str) -> None:
        process = self.processes.pop(lane)
        for sig, wait in ((15, 15), (9, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(process.pid, 9)  # pool children must not outlive their parent
        except ProcessLookupError:
            pass
        process.wait()

    def stop_all(self) -> None:
        for lane in list(self.processes):
            self.stop(lane)


def purge_lanes() -> None:
    """Drop tokens an earlier benchmark left in the lane queues."""
    from studio.celery import app

    with app.connection_for_write() as conn:
        for lane in ("flash", "pro"):
            conn.default_channel.queue_purge(lane)
