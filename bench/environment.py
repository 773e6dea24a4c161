"""A private place to measure in: its own data folder, database, media and workers.

The bench never touches a developer's data. It makes a temporary DATA_DIR
(SQLite file, media) or, when DATABASE_URL points at PostgreSQL, a fresh
database `cs_bench_<pid>` on the same server that it drops afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass
class Place:
    data_dir: Path
    database_url: str
    engine: str  # "PostgreSQL" or "SQLite"
    admin_url: str = ""  # PostgreSQL: where to drop the bench database from
    database_name: str = ""


def prepare() -> Place:
    """Point this process's environment at a fresh place; call before django.setup()."""
    data_dir = Path(tempfile.mkdtemp(prefix="cs-bench-"))
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        import psycopg

        parts = urlsplit(configured)
        name = f"cs_bench_{os.getpid()}"
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        place = Place(
            data_dir,
            urlunsplit(parts._replace(path=f"/{name}")),
            "PostgreSQL",
            admin_url=admin_url,
            database_name=name,
        )
    else:
        place = Place(data_dir, f"sqlite:///{data_dir / 'bench.sqlite3'}", "SQLite")
    os.environ.update(
        {
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": place.database_url,
            "MEDIA_ROOT": str(data_dir / "media"),
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "studio.settings",
        }
    )
    return place


def migrate() -> None:
    from django.core.management import call_command

    # --run-syncdb also creates the tables of an app whose migrations are not written yet.
    call_command("migrate", "--run-syncdb", interactive=False, verbosity=0)
    _seed_prices()
    _baseline_tables()


def _seed_prices() -> None:
    """Prices come from a data migration; a database without them gets a plain table."""
    from billing.models import Price
    from generation import catalog

    if Price.objects.exists():
        return
    credits = {"512": 20, "1K": 40, "2K": 60, "4K": 120}
    Price.objects.bulk_create(
        Price(tier=tier, size=size, credits=credits[size] * (3 if tier == "pro" else 1))
        for tier in catalog.TIERS
        for size in catalog.SIZES[tier]
    )


def _baseline_tables() -> None:
    """Bare tables for the baselines: a row per task, one counter row."""
    from django.db import connection

    serial = "SERIAL" if connection.vendor == "postgresql" else "INTEGER"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE bench_row (id {serial} PRIMARY KEY, marker VARCHAR(64), "
            "finished DOUBLE PRECISION, thumb_bytes INTEGER)"
        )
        cursor.execute("CREATE TABLE bench_counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
        cursor.execute("INSERT INTO bench_counter (id, n) VALUES (1, 0)")


def teardown(place: Place) -> None:
    from django.db import connections

    connections.close_all()
    if place.engine == "PostgreSQL":
        import psycopg

        with psycopg.connect(place.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{place.database_name}" WITH (FORCE)')
    shutil.rmtree(place.data_dir, ignore_errors=True)


def worker_env(place: Place, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.update({k: str(v) for k, v in extra.items()})
    return env
