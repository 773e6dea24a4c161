"""`make run` end to end: the launcher brings up everything, stops everything.

The launcher runs as a newcomer runs it: no REDIS_URL (so it starts the
embedded Redis), no DATABASE_URL (SQLite under the data folder), a fresh
data folder. It must serve /healthz with both lanes, print a sign-in that
works, leave no process behind after SIGINT or SIGTERM, and reuse its data
the second time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120
STOP_TIMEOUT = 30
SIGN_IN = re.compile(r"Sign in as\s+(\S+)\s+with password\s+(\S+)")

# Settings a developer's shell or the test run may carry; the launcher must
# pick its own.
NOT_INHERITED = {
    "REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "SITE_URL", "DEBUG", "SECRET_KEY",
    "SECRET_KEY_FILE", "ALLOWED_HOSTS", "PORT", "DJANGO_SETTINGS_MODULE",
}  # fmt: skip

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launch:
    """One `python -m studio.launcher run`, its output in a file."""

    def __init__(self, data_dir: Path, port: int, log: Path):
        self.data_dir = data_dir
        self.port = port
        self.log = log
        env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
        env.update(
            DATA_DIR=str(data_dir),
            PORT=str(port),
            PYTHONUNBUFFERED="1",
            FLASH_IN_FLIGHT="2",
            PRO_IN_FLIGHT="2",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "studio.launcher", "run"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self) -> dict:
        deadline = time.monotonic() + START_TIMEOUT
        body: dict = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"launcher exited with {self.process.returncode}:\n{self.output()}")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=5)
                body = response.json()
                if response.status_code == 200:
                    return body
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        pytest.fail(f"/healthz not 200 after {START_TIMEOUT} s: {body}\n{self.output()[-4000:]}")

    def sign_in(self) -> tuple[str, str]:
        found = SIGN_IN.search(self.output())
        assert found, f"no sign-in printed:\n{self.output()}"
        return found.group(1), found.group(2)

    def stop(self, sig: int) -> float:
        """Signal the launcher alone, as `kill -INT` would; return how long it took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"launcher still running {STOP_TIMEOUT} s after {sig!r}")
        return time.monotonic() - started

    def kill_everything(self) -> None:
        """Cleanup after a failed test: whatever is left of this launch goes."""
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def leftovers(self) -> list[int]:
        """Processes whose command line or environment mention this data folder or port."""
        marker = str(self.data_dir).encode()
        port = f":{self.port}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if not cmdline:  # a zombie or a kernel thread
                continue
            if marker in cmdline or port in cmdline or marker in environ:
                found.append(int(entry.name))
        return found


def teams_in(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "studio.sqlite3") as db:
        return [name for (name,) in db.execute("SELECT name FROM studio_team ORDER BY id")]


def sign_in_over_http(base_url: str, username: str, password: str) -> str:
    """Sign in through the form as a browser would; return the landing page's HTML."""
    with httpx.Client(base_url=base_url, timeout=10, follow_redirects=False) as browser:
        form = browser.get("/signin/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        response = browser.post(
            "/signin/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
            headers={"Referer": f"{base_url}/signin/"},
        )
        assert response.status_code == 302, response.text[:2000]
        landing = browser.get(response.headers["location"], follow_redirects=True)
        assert landing.status_code == 200
        return landing.text


def test_run_serves_everything_and_stops_clean_then_reuses_its_data(tmp_path):
    data_dir = tmp_path / "data"

    first = Launch(data_dir, free_port(), tmp_path / "first.log")
    try:
        health = first.wait_healthy()
        assert health["database"]["ok"] and health["broker"]["ok"]
        assert health["lanes"]["flash"]["workers"] >= 1
        assert health["lanes"]["pro"]["workers"] >= 1
        assert "embedded Redis" in first.output()

        username, password = first.sign_in()
        assert username == "demo"
        assert "Demo Studio" in sign_in_over_http(first.url, username, password)

        # The scan sees the running launcher, its redis-server, web and workers.
        assert first.process.pid in first.leftovers()
        assert len(first.leftovers()) >= 5

        seconds = first.stop(signal.SIGINT)
        left = first.leftovers()
    finally:
        first.kill_everything()
    assert left == [], first.output()[-4000:]
    assert seconds < STOP_TIMEOUT
    assert "[launcher] stopped." in first.output()
    assert teams_in(data_dir) == ["Demo Studio"]

    second = Launch(data_dir, free_port(), tmp_path / "second.log")
    try:
        second.wait_healthy()
        assert second.sign_in() == (username, password)
        assert "Demo Studio" in sign_in_over_http(second.url, username, password)
        second.stop(signal.SIGTERM)
        left = second.leftovers()
    finally:
        second.kill_everything()
    assert left == [], second.output()[-4000:]
    assert teams_in(data_dir) == ["Demo Studio"]
