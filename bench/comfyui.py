"""B17: the Flash lane's throughput on ComfyUI against ComfyUI's own.

A ComfyUI-compatible server (tests/fakes/comfyui_server.py, in its own
process) runs one prompt at a time, `RUN_SECONDS` each: a near-empty
workflow (EmptyImage → PreviewImage) on a fast GPU, where real ComfyUI does
26–29 images/s. The baseline is a bare ComfyUI client in the same run: one
websocket, every prompt queued at once, each image fetched as its
`executed` message arrives. Ours is a 50-image Flash grid through the lane:
a real Celery worker, the ComfyUI provider with its per-server slot (one in
flight, the default), the image stored with its renditions and charged.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .pipeline import wait_batch
from .stats import Figure, Row, ratio_text, verdict

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_SECONDS = 0.035  # one near-empty prompt on the "GPU": about 28 images/s bare
IMAGES = 50
WORKERS = 4  # lane threads: one on the GPU, the others storing and claiming the next

# A 64 × 64 canvas whatever the request asks: what is measured is the way to and
# from the GPU, not how long storing a large image takes (B1 and B9 measure that).
NEAR_EMPTY = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_fake(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(data_dir / "fake-comfyui.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.comfyui_server", "--port", str(port),
         "--run-seconds", str(RUN_SECONDS)],
        cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/system_stats", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the fake ComfyUI did not start")


def bare_throughput(url: str, n: int) -> float:
    """Images/s of a plain ComfyUI client: queue all, fetch each image as it is done."""
    import httpx
    from websockets.sync.client import connect

    client_id = uuid.uuid4().hex
    workflow = NEAR_EMPTY
    with (
        httpx.Client(base_url=url, timeout=30) as http,
        connect(f"{url.replace('http', 'ws', 1)}/ws?clientId={client_id}") as ws,
    ):
        ws.recv(timeout=5)  # the status message every client gets first
        started = time.perf_counter()
        for _ in range(n):
            http.post("/prompt", json={"prompt": workflow, "client_id": client_id})
        done = 0
        while done < n:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "executed":
                image = message["data"]["output"]["images"][0]
                http.get("/view", params=image).raise_for_status()
                done += 1
        return n / (time.perf_counter() - started)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def lane_throughput(studio, n: int) -> float:
    from generation.models import OUTSTANDING, Generation

    batch, started = studio.submit(count=n, size="512")
    # The figure comes from the workers' finished_at, so a lazy poll loses
    # nothing and leaves the (shared) cores to the lane.
    deadline = time.monotonic() + 300
    while Generation.objects.filter(batch=batch, status__in=OUTSTANDING).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the B17 grid did not finish within 300 s")
        time.sleep(0.1)
    rows = wait_batch(batch)
    return n / (max(g.finished_at.timestamp() for g in rows) - started)


def provider_throughput(provider, n: int, threads: int) -> tuple[float, float]:
    """Images/s of the provider alone, `threads` renders at once; and its CPU ms an image."""
    import threading

    from generation.providers.base import RenderRequest

    left = [n]
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not left[0]:
                    return
                left[0] -= 1
            provider.render(
                RenderRequest("bench", 7, "flash", "512", "1:1", "near-empty", cancel_check=None)
            )

    cpu, started = time.process_time(), time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return n / elapsed, (time.process_time() - cpu) / n * 1000


def b17_comfyui_lane(ctx, runs: int = 3) -> list[Row]:
    from django.conf import settings

    workflow_path = ctx.data_dir / "near-empty.json"
    workflow_path.write_text(json.dumps(NEAR_EMPTY, indent=2))
    fake, url = _start_fake(ctx.data_dir)
    saved = settings.FLASH_PROVIDER
    settings.FLASH_PROVIDER = "comfyui"  # what the batch records at submit
    try:
        ctx.workers.start(
            "flash",
            WORKERS,
            FLASH_PROVIDER="comfyui",
            COMFYUI_FLASH_URLS=url,
            COMFYUI_FLASH_WORKFLOW=str(workflow_path),
            COMFYUI_POLL_SECONDS="1",
        )
        studio = ctx.studio
        wait_batch(studio.submit(count=WORKERS * 2, size="512")[0])  # warm every process
        bare_throughput(url, 10)
        ours, bare, lane_cpu, fake_cpu = [], [], [], []
        pids = [ctx.workers.processes["flash"].pid]  # the lane's renders are its threads
        for _ in range(runs):
            bare.append(bare_throughput(url, IMAGES))
            before = cpu_seconds(pids), cpu_seconds([fake.pid])
            ours.append(lane_throughput(studio, IMAGES))
            lane_cpu.append((cpu_seconds(pids) - before[0]) / IMAGES * 1000)
            fake_cpu.append((cpu_seconds([fake.pid]) - before[1]) / IMAGES * 1000)
        ctx.workers.stop("flash")
        from generation.providers.comfyui import ComfyUIProvider

        provider = ComfyUIProvider(
            servers={"flash": [url]},
            workflows={"flash": workflow_path},
            redis_url=settings.CELERY_BROKER_URL,
        )
        provider_throughput(provider, 10, WORKERS)
        alone, alone_cpu, bare_again = [], [], []
        for _ in range(runs):
            bare_again.append(bare_throughput(url, IMAGES))
            rate, cpu = provider_throughput(provider, IMAGES, WORKERS)
            alone.append(rate)
            alone_cpu.append(cpu)
    finally:
        settings.FLASH_PROVIDER = saved
        os.killpg(fake.pid, 15)
        fake.wait(timeout=10)
    ours_f, bare_f = Figure.of(ours, "images/s", 1), Figure.of(bare, "images/s", 1)
    ratio = ours_f.median / bare_f.median
    alone_f, again_f = Figure.of(alone, "images/s", 1), Figure.of(bare_again, "images/s", 1)
    alone_ratio = alone_f.median / again_f.median
    return [
        Row(
            "B17",
            f"ComfyUI lane throughput, {IMAGES}-image Flash grid on a near-empty workflow "
            f"(64 × 64, {RUN_SECONDS * 1000:.0f} ms a prompt), 1 server, 1 in flight, "
            f"{WORKERS} lane threads; CPU an image: lane {Figure.of(lane_cpu)}, "
            f"server {Figure.of(fake_cpu)}; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores",
            str(ours_f),
            f"{bare_f} bare ComfyUI client (websocket, all queued at once)",
            ratio_text(ratio),
            "≥ 0.7×",
            verdict(ratio >= 0.7),
        ),
        Row(
            "B17b",
            f"the same on the ComfyUI provider alone: {WORKERS} renders at once in one "
            f"process, slot, websocket, download and clean-up, no lane "
            f"(CPU an image {Figure.of(alone_cpu)})",
            str(alone_f),
            f"{again_f} bare ComfyUI client",
            ratio_text(alone_ratio),
            "≥ 0.7× (info)",
            "info",
        ),
    ]
