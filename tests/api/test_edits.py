"""Editing and varying images through the API, as the owner, a teammate and a stranger."""

import pytest

from billing.models import LedgerEntry
from billing.selectors import wallet_balance
from generation.models import Batch, Generation, Status

from .conftest import ApiClient, fund, render_all, submit, token_for

pytestmark = pytest.mark.django_db
FLASH_1K = 67


def counts():
    return Batch.objects.count(), Generation.objects.count(), LedgerEntry.objects.count()


@pytest.fixture
def image(team, owner, project):
    batch = submit(team, owner, project, count=1, seed=500)
    render_all()
    return batch.generations.get()


def test_the_owner_edits_an_image_into_a_grid(owner, team, image):
    client = ApiClient(token_for(owner))
    answer = client.post(
        f"/api/v1/images/{image.pk}/edit",
        {"instructions": ["make the light warmer", "add a second cup"]},
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["kind"], body["source"], body["tier"], body["size"]) == (
        "edit", image.pk, "flash", "1K",
    )  # fmt: skip
    assert body["credits_quoted"] == 2 * FLASH_1K
    assert [(i["parent"], i["made_as"], i["instruction"]) for i in body["images"]] == [
        (image.pk, "edit", "make the light warmer"),
        (image.pk, "edit", "add a second cup"),
    ]
    render_all()
    done = client.get(f"/api/v1/batches/{body['id']}").json()
    assert done["status"] == "finished" and done["progress"]["done"] == 2


def test_a_teammate_varies_the_owners_image(teammate, team, image):
    answer = ApiClient(token_for(teammate)).post(
        f"/api/v1/images/{image.pk}/vary", {"strength": "subtle", "count": 3}
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["kind"], body["source"], body["count"], body["member"]) == (
        "variation", image.pk, 3, teammate.username,
    )  # fmt: skip
    assert {i["made_as"] for i in body["images"]} == {"variation"}


def test_a_stranger_gets_404_and_nothing_is_held(stranger, image):
    theirs = stranger.teams.get()
    fund(theirs, stranger, key="stranger")
    client = ApiClient(token_for(stranger))
    before = counts()
    for path, data in (
        (f"/api/v1/images/{image.pk}/edit", {"instructions": ["red"]}),
        (f"/api/v1/images/{image.pk}/vary", {"strength": "strong"}),
        ("/api/v1/images/999999/edit", {"instructions": ["red"]}),
    ):
        answer = client.post(path, data)
        assert answer.status_code == 404, (path, answer.content)
        assert answer.json()["detail"]
    assert counts() == before
    assert wallet_balance(theirs)[1] == 0


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"instructions": [""]}, "instructions", "Write what to change"),
        ({"instructions": ["x" * 10_001]}, "instructions", "the limit is 10,000"),
        ({"instructions": []}, "instructions", ""),
        ({"instructions": ["red"], "tier": "ultra"}, "tier", ""),
        ({"instructions": ["red"], "tier": "pro", "size": "512"}, "size", "Pro renders at"),
        ({}, "instructions", ""),
    ],
)
def test_a_bad_edit_is_400_with_its_field_and_nothing_held(owner, team, image, data, field, says):
    before, held = counts(), wallet_balance(team)
    answer = ApiClient(token_for(owner)).post(f"/api/v1/images/{image.pk}/edit", data)
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert field in body["errors"] and says in body["detail"] + body["errors"][field]
    assert counts() == before and wallet_balance(team) == held


def test_a_bad_variation_is_400(owner, team, image):
    client = ApiClient(token_for(owner))
    before = counts()
    for data in ({"strength": "medium"}, {"strength": "subtle", "count": 0},
                 {"strength": "subtle", "count": 51}):  # fmt: skip
        answer = client.post(f"/api/v1/images/{image.pk}/vary", data)
        assert answer.status_code == 400, (data, answer.content)
    assert counts() == before


def test_an_unfinished_image_is_refused(owner, team, project):
    queued = submit(team, owner, project, count=1).generations.get()
    before = counts()
    answer = ApiClient(token_for(owner)).post(
        f"/api/v1/images/{queued.pk}/edit", {"instructions": ["red"]}
    )
    assert answer.status_code == 400
    assert "only finished images" in answer.json()["detail"]
    assert counts() == before


def test_a_chain_past_its_limit_is_refused(owner, team, image, settings):
    settings.EDIT_CHAIN_MAX_TURNS = 1
    client = ApiClient(token_for(owner))
    first = client.post(f"/api/v1/images/{image.pk}/edit", {"instructions": ["red"]}).json()
    render_all()
    edited = first["images"][0]["id"]
    before = counts()
    answer = client.post(f"/api/v1/images/{edited}/edit", {"instructions": ["blue"]})
    assert answer.status_code == 400
    assert "chain of 1 edits" in answer.json()["detail"]
    assert counts() == before


def test_an_edit_past_the_members_cap_is_402(teammate, team, image):
    from billing.services import member_cap_set

    member_cap_set(team=team, member=teammate, period="day", tier="", credits=FLASH_1K * 2)
    before = counts()
    answer = ApiClient(token_for(teammate)).post(
        f"/api/v1/images/{image.pk}/edit", {"instructions": ["red", "green", "blue"]}
    )
    assert answer.status_code == 402, answer.content
    assert counts() == before


def test_too_many_images_waiting_is_429_with_retry_after(owner, team, image, settings):
    settings.LANE_MEMBER_OUTSTANDING_CAP = 2
    client = ApiClient(token_for(owner))
    before = counts()
    answer = client.post(f"/api/v1/images/{image.pk}/vary", {"strength": "strong", "count": 3})
    assert answer.status_code == 429 and answer["Retry-After"]
    assert counts() == before


def test_an_identical_edit_costs_nothing(owner, team, image):
    client = ApiClient(token_for(owner))
    client.post(f"/api/v1/images/{image.pk}/edit", {"instructions": ["add a moon"]})
    render_all()
    spent = wallet_balance(team)
    again = client.post(f"/api/v1/images/{image.pk}/edit", {"instructions": ["add a moon"]})
    body = again.json()
    assert again.status_code == 201 and body["credits_quoted"] == 0
    assert body["images"][0]["cached"] and body["images"][0]["status"] == Status.SUCCEEDED
    assert wallet_balance(team) == spent


def test_the_schema_describes_edit_and_vary(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert "post" in spec["paths"]["/api/v1/images/{image_id}/edit"]
    assert "post" in spec["paths"]["/api/v1/images/{image_id}/vary"]
    edit = spec["paths"]["/api/v1/images/{image_id}/edit"]["post"]
    assert {"201", "400", "402", "404", "429"} <= set(edit["responses"])
