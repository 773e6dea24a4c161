"""/healthz reports the database, the broker and the workers of each lane."""

import pytest


def test_healthz_is_503_without_workers(client, db):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["lanes"]["flash"]["workers"] == 0


@pytest.mark.slow
def test_healthz_is_200_with_both_lanes(client, both_lanes):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["lanes"]["flash"]["workers"] >= 1 and body["lanes"]["pro"]["workers"] >= 1


# --- a configuration that cannot work -------------------------------------------------

# An import finder that hides django-storages and boto3, as on a host without the
# s3 extra (whether or not this machine has them). Source text, so a subprocess
# can install it before Django starts.
HIDE_S3_EXTRA = """
import sys

class HideS3Extra:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("storages", "boto3", "botocore"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
"""


def test_s3_without_the_s3_extra_fails_the_system_check_in_words(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    base = Path(__file__).resolve().parents[2]
    script = HIDE_S3_EXTRA + (
        "sys.meta_path.insert(0, HideS3Extra())\n"
        "import runpy\n"
        "sys.argv = ['manage.py', 'check']\n"
        "runpy.run_path('manage.py', run_name='__main__')\n"
    )
    env = {**os.environ, "S3_BUCKET": "studio-media", "DATA_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=base, env=env, capture_output=True, text=True
    )
    assert run.returncode != 0, run.stdout + run.stderr
    assert "studio.E001" in run.stderr
    assert "S3_BUCKET is set" in run.stderr and "s3 extra" in run.stderr

    env.pop("S3_BUCKET")
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=base, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture
def s3_without_the_extra(settings, monkeypatch):
    import sys

    namespace: dict = {}
    exec(HIDE_S3_EXTRA, namespace)
    monkeypatch.setattr(sys, "meta_path", [namespace["HideS3Extra"](), *sys.meta_path])
    for name in [n for n in sys.modules if n.partition(".")[0] in ("storages", "boto3")]:
        monkeypatch.delitem(sys.modules, name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {}},
    }


def test_healthz_is_not_ok_and_says_why_when_s3_cannot_load(client, db, s3_without_the_extra):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["ok"] is False and body["configuration"]["ok"] is False
    assert "S3_BUCKET is set" in body["configuration"]["errors"][0]
    assert "s3 extra" in body["configuration"]["errors"][0]


def test_healthz_reports_a_usable_configuration(client, db):
    body = client.get("/healthz").json()
    assert body["configuration"] == {"ok": True, "errors": []}
