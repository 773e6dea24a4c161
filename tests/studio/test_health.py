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
