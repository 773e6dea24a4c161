"""The multi-host drill (`make drill`) as a test: web, worker and data hosts on
separate network namespaces, shared PostgreSQL, Redis and S3, with faults.

It runs once per CI run, in the PostgreSQL pass (the drill brings its own
PostgreSQL server on the data host either way), and skips with the reason
where the machine cannot make namespaces.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .network import why_not_available
from .scenario import THROUGHPUT_IMAGES, run

pytestmark = pytest.mark.slow


@pytest.fixture
def drill_folder():
    # Not pytest's tmp_path: its parents are private to root, and the data
    # host's PostgreSQL runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="cs-drill-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_studio_across_hosts_with_faults(drill_folder):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("the drill runs in the PostgreSQL pass of the suite (DATABASE_URL=postgres…)")
    reason = why_not_available()
    if reason:
        pytest.skip(f"the multi-host drill cannot run here: {reason}")

    report = run(drill_folder)
    facts = report.facts

    assert facts["grid"] == {"succeeded": 50}
    assert facts["s3_objects"] >= 100  # an original and a thumbnail each, at least
    assert facts["served"]
    # A second and a third worker host add throughput (latency-bound renders).
    assert report.rates[2] > 1.4 * report.rates[1], report.rates
    assert report.rates[3] > report.rates[2], report.rates
    assert facts["lost"] == {"succeeded": 40}
    assert all(batch == {"succeeded": batch.get("succeeded", 0)} for batch in facts["redis"])
    assert facts["redis"][0] == {"succeeded": 30}
    assert facts["redis_outage_status"] in (201, 503)
    assert facts["db_outage_status"] in (201, 503)
    assert facts["postgres"] == {"succeeded": 30}
    assert facts["double_charges"] == 0
    assert "0 mismatched" in facts["reconcile"]
    assert THROUGHPUT_IMAGES
