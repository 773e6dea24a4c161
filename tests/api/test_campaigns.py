"""Running campaigns from a script: create, submit permutations, follow, pause, cancel."""

from billing.selectors import wallet_balance
from generation.models import Batch, Generation
from tests.gallery.conftest import render_all

FLASH_1K = 67
TEAPOTS = {"prompt": "{red|blue|green} teapot on {linen|marble|slate|oak}", "tier": "flash"}


def test_a_script_runs_a_campaign_from_start_to_finish(team, owner, project, api_for):
    api = api_for(owner)
    created = api.post("/api/v1/campaigns", {"name": "Teapots", "budget": 10_000})
    assert created.status_code == 201
    campaign = created.json()
    submitted = api.post(f"/api/v1/campaigns/{campaign['id']}/batches",
                         {**TEAPOTS, "count": 5, "aspects": ["1:1", "4:5"]})  # fmt: skip
    assert submitted.status_code == 201, submitted.json()
    body = submitted.json()
    assert body["images"] == 120 and len(body["batches"]) == 3
    assert body["campaign"]["progress"]["credits_held"] == 120 * FLASH_1K
    axes = Generation.objects.filter(batch_id=body["batches"][0]).order_by("index")[5].axes
    assert axes == {"choice 1": "red", "choice 2": "linen", "aspect": "4:5"}
    render_all()
    read = api.get(f"/api/v1/campaigns/{campaign['id']}").json()
    assert read["state"] == "finished"
    assert read["progress"]["done"] == 120 and read["progress"]["credits_spent"] == 120 * FLASH_1K
    assert [c["name"] for c in api.get("/api/v1/campaigns").json()] == ["Teapots"]


def test_past_the_campaign_budget_is_402_and_nothing_is_held(team, owner, project, api_for):
    api = api_for(owner)
    campaign = api.post("/api/v1/campaigns", {"name": "Teapots", "budget": 500}).json()
    held = wallet_balance(team)
    refused = api.post(f"/api/v1/campaigns/{campaign['id']}/batches", TEAPOTS)
    assert refused.status_code == 402 and "500 of its 500 left" in refused.json()["detail"]
    assert wallet_balance(team) == held and not Batch.objects.filter(campaign_id=campaign["id"])


def test_bad_permutations_are_400_naming_the_field(team, owner, project, api_for):
    api = api_for(owner)
    campaign = api.post("/api/v1/campaigns", {"name": "Teapots", "budget": 500}).json()
    url = f"/api/v1/campaigns/{campaign['id']}/batches"
    refused = api.post(url, {**TEAPOTS, "prompt": "{red|blue teapot"})
    assert refused.status_code == 400 and "position 1" in refused.json()["errors"]["prompt"]
    refused = api.post(url, {**TEAPOTS, "aspects": ["7:3"]})
    assert refused.status_code == 400 and "aspects" in refused.json()["errors"]


def test_pause_resume_cancel_by_the_starter_not_a_teammate(team, owner, teammate, project,
                                                            api_for):  # fmt: skip
    campaign = api_for(owner).post("/api/v1/campaigns", {"name": "T", "budget": 5000}).json()
    base = f"/api/v1/campaigns/{campaign['id']}"
    api_for(owner).post(f"{base}/batches", TEAPOTS)
    assert api_for(teammate).post(f"{base}/pause").status_code == 403
    assert api_for(owner).post(f"{base}/pause").json()["state"] == "paused"
    assert api_for(owner).post(f"{base}/resume").json()["state"] == "active"
    canceled = api_for(owner).post(f"{base}/cancel").json()
    assert canceled["state"] == "canceled" and canceled["progress"]["canceled"] == 12


def test_another_teams_campaign_is_not_found(team, owner, stranger, project, api_for):
    campaign = api_for(owner).post("/api/v1/campaigns", {"name": "T", "budget": 5000}).json()
    assert api_for(stranger).get(f"/api/v1/campaigns/{campaign['id']}").status_code == 404
