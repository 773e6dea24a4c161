"""Both lanes run on real Celery workers against the real Redis."""

import time

import pytest

from studio.celery import app, ping_lane


@pytest.mark.slow
def test_each_lane_is_served_only_by_its_own_pool(lane_workers):
    lane_workers.start("flash")
    flash_only = ping_lane.apply_async(args=["a"], queue="flash")
    # No Pro worker yet: a Pro job must wait, not be taken by the Flash pool.
    pro_job = ping_lane.apply_async(args=["b"], queue="pro")
    deadline = time.monotonic() + 20
    with app.connection_for_write() as conn:
        while time.monotonic() < deadline:
            if conn.default_channel.client.llen("flash") == 0:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        assert conn.default_channel.client.llen("pro") == 1, "the Flash pool took a Pro job"
    lane_workers.start("pro")
    deadline = time.monotonic() + 20
    with app.connection_for_write() as conn:
        while time.monotonic() < deadline and conn.default_channel.client.llen("pro"):
            time.sleep(0.1)
        assert conn.default_channel.client.llen("pro") == 0
    assert flash_only.id and pro_job.id
    logs = {
        lane: (lane_workers.log_dir / f"worker-{lane}.log").read_text() for lane in ("flash", "pro")
    }
    assert "studio.ping_lane" in logs["flash"] and "a@flash" in logs["flash"]
    assert "b@pro" in logs["pro"] and "b@" not in logs["flash"]
