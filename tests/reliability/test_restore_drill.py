"""The restore drill from docs/OPERATIONS.md, run for real on SQLite.

Back up (database + media folder + secret key), restore into an empty data
folder with the documented commands, and prove the copy is whole: migrations
apply, `reconcile` passes, every stored image is there with its hash.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from generation.tasks import run_lane

from .conftest import fund, submit

BASE_DIR = Path(__file__).resolve().parents[2]

VERIFY = """
import hashlib, django
django.setup()
from django.core.files.storage import default_storage
from generation.models import Asset
from billing.selectors import wallet_balance
from studio.models import Team
count = 0
for asset in Asset.objects.all():
    for field in (asset.original, asset.thumbnail, asset.preview):
        assert default_storage.exists(field.name), field.name
    data = default_storage.open(asset.original.name).read()
    assert hashlib.sha256(data).hexdigest() == asset.sha256, asset.pk
    count += 1
team = Team.objects.get(name="Northlight Studio")
print(f"assets={count} balance={wallet_balance(team)}")
"""


def manage(*args, env, check=True):
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result


def restored_env(folder: Path, database: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATA_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{database}",
        "MEDIA_ROOT": str(folder / "media"),
        "DJANGO_SETTINGS_MODULE": "studio.settings",
    }
    env.pop("SECRET_KEY", None)  # the restored data/secret_key is used
    return env


@pytest.fixture
def studio_with_work(owner, team, transactional_db, settings):
    fund(team, owner, amount=50_000)
    batch = submit(team, owner, count=3, prompt="a restore drill lighthouse")
    while run_lane("flash"):
        pass
    assert set(batch.generations.values_list("status", flat=True)) == {"succeeded"}
    # A job still held when the backup is taken: it must restore as held.
    submit(team, owner, count=1, prompt="still queued at backup time")
    return team


@pytest.mark.slow
def test_logical_backup_restores_into_a_fresh_sqlite(studio_with_work, settings, tmp_path):
    """dumpdata / loaddata: works from SQLite or PostgreSQL, restores into SQLite."""
    from billing.selectors import wallet_balance

    expected = wallet_balance(studio_with_work)
    backup = tmp_path / "backup"
    backup.mkdir()
    call_command(
        "dumpdata", "--natural-foreign", "--exclude", "contenttypes", "--exclude",
        "auth.permission", "--exclude", "sessions", "--output", str(backup / "studio.json"),
    )  # fmt: skip
    shutil.copytree(settings.MEDIA_ROOT, backup / "media")
    (backup / "secret_key").write_text("drill-secret-" + "k" * 50)

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copytree(backup / "media", restored / "media")
    shutil.copy(backup / "secret_key", restored / "secret_key")
    env = restored_env(restored, restored / "studio.sqlite3")
    manage("migrate", "--no-input", env=env)
    manage("flush", "--no-input", env=env)  # drop rows the migrations seeded
    manage("loaddata", str(backup / "studio.json"), env=env)
    check = manage("reconcile", env=env)
    assert "0 mismatched" in check.stdout
    verify = subprocess.run(
        [sys.executable, "-c", VERIFY], cwd=BASE_DIR, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr[-3000:]
    assert f"assets=3 balance={expected}" in verify.stdout


@pytest.mark.slow
def test_sqlite_online_backup_restores(studio_with_work, settings, tmp_path):
    """The SQLite route: `.backup` of the live file (safe while the studio runs)."""
    if connection.vendor != "sqlite":
        pytest.skip("the file-level drill is for SQLite; PostgreSQL uses pg_dump (docs)")
    from billing.selectors import wallet_balance

    expected = wallet_balance(studio_with_work)
    restored = tmp_path / "restored"
    restored.mkdir()
    source = sqlite3.connect(connection.settings_dict["NAME"])
    target = sqlite3.connect(restored / "studio.sqlite3")
    with target:
        source.backup(target)  # what `sqlite3 studio.sqlite3 ".backup copy.sqlite3"` does
    source.close()
    target.close()
    shutil.copytree(settings.MEDIA_ROOT, restored / "media")
    (restored / "secret_key").write_text("drill-secret-" + "k" * 50)
    env = restored_env(restored, restored / "studio.sqlite3")
    manage("migrate", "--no-input", env=env)  # a newer release migrates the copy forward
    check = manage("reconcile", env=env)
    assert "0 mismatched" in check.stdout
    verify = subprocess.run(
        [sys.executable, "-c", VERIFY], cwd=BASE_DIR, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr[-3000:]
    assert f"assets=3 balance={expected}" in verify.stdout
