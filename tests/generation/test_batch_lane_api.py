"""The batch lane from a script: `lane: "batch"` on the token API, and `render_prompts --batch`."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from generation import batch_lane
from generation.models import Batch, Generation, Lane, Status
from tests.api.conftest import ApiClient, token_for
from tests.gallery.conftest import fund

GRID = {"prompt": "a paper boat", "tier": "flash", "size": "1K", "aspect": "1:1", "count": 4}


@pytest.fixture(autouse=True)
def _quick_batches(settings):
    settings.OFFLINE_BATCH_DELAY = 0


def test_a_batch_lane_grid_through_the_api_waits_for_the_providers_batch(owner, team):
    fund(team, owner)
    api = ApiClient(token_for(owner, team))
    response = api.post("/api/v1/batches", {**GRID, "lane": "batch"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lane"] == "batch"
    assert body["credits_quoted"] == 4 * 34  # half of 67, rounded up
    assert body["progress"]["waiting_for"] == "the provider's batch"
    batch = Batch.objects.get(pk=body["id"])
    batch_lane.wait_for([batch])
    done = api.get(f"/api/v1/batches/{batch.pk}").json()
    assert done["status"] == "finished" and done["progress"]["done"] == 4
    assert all(image["download_url"] for image in done["images"])


def test_an_unknown_lane_is_refused_by_the_schema(owner, team):
    fund(team, owner)
    response = ApiClient(token_for(owner, team)).post(
        "/api/v1/batches", {**GRID, "lane": "overnight"}
    )
    assert response.status_code == 400
    assert not Batch.objects.exists()


def test_an_interactive_grid_says_it_is_interactive(owner, team):
    fund(team, owner)
    body = ApiClient(token_for(owner, team)).post("/api/v1/batches", GRID).json()
    assert body["lane"] == "interactive"
    assert body["progress"]["waiting_for"] != "the provider's batch"


@pytest.mark.django_db
def test_render_prompts_batch_uses_the_batch_lane(owner, team, tmp_path, monkeypatch):
    fund(team, owner)
    path = tmp_path / "boats.txt"
    path.write_text("a paper boat\na tin boat\n", encoding="utf-8")
    monkeypatch.setattr("time.sleep", lambda seconds: batch_lane.tick())
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "render_prompts", path, team=team.slug, user="olivia", count=2, batch=True,
        out=tmp_path / "renders", stdout=out, stderr=err,
    )  # fmt: skip
    assert {b.lane for b in Batch.objects.all()} == {Lane.BATCH}
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert "waiting for the provider's batch" in err.getvalue()
    assert "Downloaded 4 images" in out.getvalue()


def test_the_composer_offers_the_batch_lane_and_prices_it(owner, team, client_for):
    from django.urls import reverse

    from generation.models import Project

    fund(team, owner)
    project = Project.objects.create(team=team, name="Boats", created_by=owner)
    client = client_for(owner)
    page = client.get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert "Batch (half price, may take hours)" in page
    query = "?prompt=x&tier=flash&size=1K&aspect=1:1&count=4"
    line = client.get(reverse("composer-price", args=[team.slug]) + query + "&lane=batch")
    text = line.content.decode()
    assert "= 136 credits" in text and "batch lane: 50% of the list price" in text
    plain = client.get(reverse("composer-price", args=[team.slug]) + query).content.decode()
    assert "= 268 credits" in plain and "batch lane" not in plain
    data = {"prompt": "a paper boat", "tier": "flash", "size": "1K", "aspect": "1:1",
            "count": "2", "lane": "batch"}  # fmt: skip
    client.post(reverse("batch-submit", args=[team.slug, project.pk]), data)
    batch = Batch.objects.get(team=team)
    assert batch.lane == Lane.BATCH and batch.credits_quoted == 2 * 34
    grid = client.get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert (
        "waiting for the provider&#x27;s batch" in grid
        or "waiting for the provider's batch" in grid
    )
