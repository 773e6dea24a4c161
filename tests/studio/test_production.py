"""Production packaging: what can be checked without a Docker engine.

The compose file parses and has every service; the environment it hands the
app is made only of names settings.py reads; `check --deploy` is clean with
production settings; the image's build steps (dependency list, collectstatic)
work; pages carry the security headers; the README documents every variable.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]
COMPOSE = BASE_DIR / "docker-compose.yml"
SETTINGS = BASE_DIR / "studio" / "settings.py"
SERVICES = {"postgres", "redis", "web", "worker-flash", "worker-pro", "scheduler"}
APP_SERVICES = SERVICES - {"postgres", "redis"}

# What an operator's .env would hold.
OPERATOR_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "studio.example.com",
    "SITE_URL": "https://studio.example.com",
    "POSTGRES_PASSWORD": "pgsecret123",
    "REDIS_PASSWORD": "redissecret123",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def settings_env_names() -> set[str]:
    """Every environment variable name studio/settings.py reads."""
    source = SETTINGS.read_text()
    names = set(re.findall(r"os\.environ(?:\.get\(\s*|\[)\"([A-Z0-9_]+)\"", source))
    for helper, name in re.findall(
        r"\benv_(bool|int|limit|list|secret)\(\s*\"([A-Z0-9_]+)\"", source
    ):
        names.add(name)
        if helper == "secret":
            names.add(f"{name}_FILE")  # docker secrets: the value is read from that file
    return names


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, innermost first."""
    pattern = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^${}]*))?\}")
    text = value.replace("$$", "\0")

    def replace(match: re.Match) -> str:
        name, operator, argument = match.groups()
        current = env.get(name)
        if operator and operator.endswith("-"):
            return current if current else argument
        if operator and operator.endswith("?") and not current:
            raise LookupError(f"{name}: {argument}")
        return current or ""

    while True:
        replaced = pattern.sub(replace, text)
        if replaced == text:
            return replaced.replace("\0", "$")
        text = replaced


def app_environment(service: str, env: dict[str, str]) -> dict[str, str]:
    raw = compose()["services"][service]["environment"]
    return {name: interpolate(str(value), env) for name, value in raw.items()}


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A bare environment, as in the container: only what the operator sets."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DEBUG": "0",
        "SECRET_KEY": OPERATOR_ENV["SECRET_KEY"],
        "ALLOWED_HOSTS": "studio.example.com",
        "DATA_DIR": str(tmp_path / "data"),
    }
    env.update(extra)
    return env


# --- the compose file --------------------------------------------------------------


def test_compose_has_the_six_services_and_a_migrate_step():
    services = compose()["services"]
    assert SERVICES <= set(services)
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "migrate" in services["migrate"]["command"]


def test_compose_commands_run_the_right_processes():
    services = compose()["services"]
    assert services["web"].get("command") is None  # the image's CMD: gunicorn studio.wsgi
    assert "gunicorn" in (BASE_DIR / "Dockerfile").read_text()
    flash = services["worker-flash"]["command"]
    pro = services["worker-pro"]["command"]
    assert flash[:4] == ["celery", "-A", "studio", "worker"]
    assert flash[flash.index("-Q") + 1] == "flash" and flash[flash.index("-n") + 1] == "flash@%h"
    assert pro[pro.index("-Q") + 1] == "pro" and pro[pro.index("-n") + 1] == "pro@%h"
    assert services["scheduler"]["command"][:4] == ["celery", "-A", "studio", "beat"]


def test_compose_has_health_checks_and_volumes():
    services = compose()["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert "--appendonly" in services["redis"]["command"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert any(v.startswith("postgres:") for v in services["postgres"]["volumes"])
    assert any(v.startswith("redis:") for v in services["redis"]["volumes"])
    assert "media:/app/data/media" in services["web"]["volumes"]
    assert {"postgres", "redis", "media"} <= set(compose()["volumes"])


def test_compose_passes_only_names_settings_reads():
    known = settings_env_names()
    for name in APP_SERVICES | {"migrate"}:
        environment = compose()["services"][name]["environment"]
        unknown = set(environment) - known
        assert not unknown, f"{name} passes {sorted(unknown)}, which settings.py never reads"
    environment = compose()["services"]["web"]["environment"]
    assert environment["DEBUG"] == "0"
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"} <= set(environment)
    assert {"CSRF_TRUSTED_ORIGINS", "MEDIA_ROOT"} <= set(environment)


def test_compose_refuses_to_start_without_the_operators_secrets():
    env = dict(OPERATOR_ENV)
    del env["SECRET_KEY"]
    with pytest.raises(LookupError, match="SECRET_KEY"):
        app_environment("web", env)


def test_compose_environment_gives_a_deployable_settings(tmp_path):
    """The web service's environment, as compose resolves it, passes check --deploy."""
    environment = app_environment("web", OPERATOR_ENV)
    assert environment["DATABASE_URL"] == "postgres://studio:pgsecret123@postgres:5432/studio"
    assert environment["REDIS_URL"] == "redis://:redissecret123@redis:6379/0"
    environment["MEDIA_ROOT"] = str(tmp_path / "media")
    env = {**production_env(tmp_path), **environment}
    probe = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DEBUG, s.DATABASES['default']['ENGINE'], s.DATABASES['default']"
        "['HOST'], s.CELERY_BROKER_URL, s.ALLOWED_HOSTS, s.SITE_URL, str(s.MEDIA_ROOT)]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "studio.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == [
        False,
        "django.db.backends.postgresql",
        "postgres",
        "redis://:redissecret123@redis:6379/0",
        ["studio.example.com"],
        "https://studio.example.com",
        str(tmp_path / "media"),
    ]
    check = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert check.returncode == 0, check.stdout + check.stderr


# --- settings in production ------------------------------------------------------------


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_debug_off_without_secret_key_fails_clearly(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off" in result.stderr


def test_secret_key_can_come_from_a_docker_secret_file(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text(OPERATOR_ENV["SECRET_KEY"] + "\n")
    env = production_env(tmp_path, SECRET_KEY_FILE=str(secret))
    del env["SECRET_KEY"]
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the image's build steps --------------------------------------------------------------


def test_dockerfile_runs_as_a_user_and_collects_static():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER studio$", dockerfile, re.MULTILINE)
    assert "collectstatic" in dockerfile
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert {".venv", "data", ".git", ".env"} <= set(ignored)


def test_collectstatic_with_production_storage_works(tmp_path):
    """The build step: whitenoise's manifest fails on any missing file a stylesheet names."""
    env = production_env(tmp_path, SECRET_KEY="collectstatic-only-not-a-secret")
    result = manage("collectstatic", "--noinput", "-v", "0", env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = tmp_path / "data" / "staticfiles"
    assert (collected / "staticfiles.json").exists()
    assert list(collected.glob("css/studio.*.css"))
    assert list(collected.glob("vendor/htmx/htmx.min.*.js.gz"))


@pytest.mark.slow
def test_gunicorn_serves_the_studio_with_production_settings(tmp_path, settings):
    """The web container's command, run here: HTTPS redirect, secure cookies, static files."""
    env = production_env(tmp_path, REDIS_URL=settings.REDIS_URL)
    for step in (("collectstatic", "--noinput", "-v", "0"), ("migrate", "--noinput", "-v", "0")):
        result = manage(*step, env=env, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "studio.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--forwarded-allow-ips", "*"],
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        host = {"Host": "studio.example.com"}
        https = {**host, "X-Forwarded-Proto": "https"}
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz", headers=host, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        # No worker runs here: the database and the broker answer, the lanes do not.
        assert health.status_code == 503
        assert health.json()["database"]["ok"] and health.json()["broker"]["ok"]

        plain = httpx.get(f"{base}/signin/", headers=host)
        assert plain.status_code == 301
        assert plain.headers["location"] == "https://studio.example.com/signin/"

        page = httpx.get(f"{base}/signin/", headers=https)
        assert page.status_code == 200
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "secure" in page.headers["set-cookie"].lower()
        stylesheet = re.search(r'href="(/static/css/studio\.[0-9a-f]+\.css)"', page.text)
        assert stylesheet, "the page does not link the hashed stylesheet"
        css = httpx.get(f"{base}{stylesheet.group(1)}", headers=https)
        assert css.status_code == 200
        assert "immutable" in css.headers["cache-control"]

        wrong_host = httpx.get(f"{base}/signin/", headers={"Host": "evil.example.net"})
        assert wrong_host.status_code == 400
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


# --- security headers ----------------------------------------------------------------------


def test_pages_carry_security_headers(client, db):
    response = client.get("/signin/")
    assert response.status_code == 200
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_scripts(client, client_for, owner, team):
    pages = {"/signin/": client, f"/t/{team.slug}/": client_for(owner)}
    for path, browser in pages.items():
        response = browser.get(path)
        assert response.status_code == 200
        for tag in re.findall(r"<script\b[^>]*>", response.content.decode()):
            assert "src=" in tag, f"inline script on {path}: {tag}"


# --- the README -----------------------------------------------------------------------------


def test_readme_table_documents_every_variable_settings_reads():
    readme = (BASE_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, re.MULTILINE))
    read = {name for name in settings_env_names() if not name.endswith("_FILE")}
    assert read - documented == set(), "add these to the README's table"
    launcher_only = {"PORT"}
    assert documented - read - launcher_only == set(), "the README documents unread names"


@pytest.mark.django_db
def test_a_postgresql_session_frees_its_locks_when_its_host_is_lost():
    """A worker host cut off mid-transaction held the team's wallet locked
    until TCP gave up, two hours by default (the multi-host drill found it)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's session settings (SQLite has no network peers)")
    with connection.cursor() as cursor:
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone() == ("30s",)
        cursor.execute("SHOW tcp_keepalives_idle")
        assert cursor.fetchone() == ("10",)
