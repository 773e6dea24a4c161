"""Every endpoint of the API, tried with the owner's, a teammate's and a stranger's token."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from billing.models import LedgerEntry
from billing.selectors import wallet_balance
from billing.services import member_cap_set
from generation import selectors
from generation.imaging import read_metadata
from generation.models import Batch, Generation, Status
from studio.models import ApiToken, Membership
from studio.views.media import download_name

from .conftest import ApiClient, fund, render_all, submit, token_for

pytestmark = pytest.mark.django_db
GRID = {"prompt": "a paper boat on a pond", "tier": "flash", "size": "1K", "aspect": "16:9",
        "count": 4}  # fmt: skip


def counts():
    return Batch.objects.count(), Generation.objects.count(), LedgerEntry.objects.count()


def endpoints(batch_id: int, image_id: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("post", "/api/v1/batches", GRID),
        ("get", f"/api/v1/batches/{batch_id}", None),
        ("post", f"/api/v1/batches/{batch_id}/cancel", None),
        ("get", "/api/v1/images", None),
        ("post", "/api/v1/images/promote", {"ids": [image_id], "size": "2K"}),
        ("get", f"/api/v1/images/{image_id}/download", None),
        ("get", "/api/v1/balance", None),
    ]


# --- tokens ----------------------------------------------------------------------------


def test_no_token_a_garbage_token_or_a_revoked_one_gets_401_everywhere(owner, team, grid):
    image = grid.generations.first()
    revoked = token_for(owner)
    ApiToken.objects.update(revoked_at=timezone.now())
    before = counts()
    for token in (None, "garbage", "cs_" + "x" * 43, revoked):
        client = ApiClient(token)
        for method, path, data in endpoints(grid.pk, image.pk):
            response = getattr(client, method)(path, data)
            assert response.status_code == 401, (token, path, response.content[:200])
            assert response["WWW-Authenticate"].startswith("Bearer")
            assert "Bearer" in response.json()["detail"]
    # Another scheme, or the token in a query string, is not a bearer token.
    live = token_for(owner)
    client = ApiClient(None)
    assert (
        client.client.get("/api/v1/balance", HTTP_AUTHORIZATION=f"Basic {live}").status_code == 401
    )
    assert client.get("/api/v1/balance", {"token": live}).status_code == 401
    assert counts() == before


def test_a_token_stops_working_when_its_person_leaves_the_team(owner, teammate, team):
    token = token_for(teammate)
    client = ApiClient(token)
    assert client.get("/api/v1/balance").status_code == 200
    Membership.objects.filter(team=team, user=teammate).delete()
    assert client.get("/api/v1/balance").status_code == 401
    # Invited back, the old token stays revoked.
    Membership.objects.create(team=team, user=teammate, role="member")
    assert client.get("/api/v1/balance").status_code == 401


def test_a_deactivated_account_cannot_use_its_tokens(owner, team):
    client = ApiClient(token_for(owner))
    owner.is_active = False
    owner.save()
    assert client.get("/api/v1/balance").status_code == 401


def test_only_the_hash_is_stored_and_last_use_is_written_at_most_once_a_minute(
    owner, team, django_assert_num_queries
):
    secret = token_for(owner)
    row = ApiToken.objects.get()
    assert secret.startswith("cs_") and len(secret) > 40
    assert secret not in (row.token_hash, row.hint) and row.hint == secret[:10]
    assert row.last_used_at is None
    client = ApiClient(secret)
    client.get("/api/v1/balance")
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    client.get("/api/v1/balance")
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/v1/balance")
    assert ApiToken.objects.get().last_used_at > first - timedelta(seconds=1)


# --- submit ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["owner", "teammate"])
def test_members_submit_a_grid_into_the_token_team(persona, request, team, project):
    user = request.getfixturevalue(persona)
    response = ApiClient(token_for(user, team)).post(
        "/api/v1/batches", {**GRID, "seed": 42, "project": project.pk}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    batch = Batch.objects.get(pk=body["id"])
    assert batch.team == team and batch.member == user and batch.project == project
    assert body["status"] == "queued" and body["member"] == user.username
    assert body["progress"]["total"] == 4 and body["progress"]["queued"] == 4
    assert [image["seed"] for image in body["images"]] == [42, 43, 44, 45]
    assert all(image["download_url"] is None for image in body["images"])
    assert body["credits_quoted"] == 4 * 67


def test_a_stranger_cannot_file_a_grid_under_the_team_project(stranger, project):
    fund(stranger.teams.get(), stranger, key="stranger")
    before = counts()
    response = ApiClient(token_for(stranger)).post(
        "/api/v1/batches", {**GRID, "project": project.pk}
    )
    assert response.status_code == 404
    assert counts() == before


@pytest.mark.parametrize(
    "change, field",
    [
        ({"tier": "ultra"}, "tier"),
        ({"size": "8K"}, "size"),
        ({"aspect": "7:5"}, "aspect"),
        ({"count": 51}, "count"),
        ({"count": "many"}, "count"),
        ({"prompt": "   "}, "prompt"),
        ({"seed": -5}, "seed"),
        ({"references": [999999]}, "references"),
        ({"tier": "pro", "size": "512"}, "size"),
    ],
)
def test_an_invalid_grid_is_400_with_field_errors_and_creates_nothing(
    owner, team, project, change, field
):
    before = counts()
    response = ApiClient(token_for(owner)).post("/api/v1/batches", {**GRID, **change})
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"], body
    assert body["detail"]
    assert counts() == before


def test_a_body_that_is_not_json_is_400(owner, team, project):
    client = ApiClient(token_for(owner))
    response = client.client.post(
        "/api/v1/batches", "prompt=x", content_type="application/json", **client.headers
    )
    assert response.status_code == 400


def test_not_enough_credits_is_402_in_words_and_creates_nothing(stranger):
    # The stranger's team has never been funded.
    before = counts()
    response = ApiClient(token_for(stranger)).post("/api/v1/batches", GRID)
    assert response.status_code == 402, response.content
    assert "credit" in response.json()["detail"].lower()
    assert counts() == before


def test_a_member_cap_is_402_too(owner, teammate, team, project):
    member_cap_set(team=team, member=teammate, period="day", tier="", credits=100)
    before = counts()
    response = ApiClient(token_for(teammate)).post("/api/v1/batches", GRID)
    assert response.status_code == 402
    assert "limit" in response.json()["detail"]
    assert counts() == before


def test_the_submit_limit_is_shared_with_the_pages_and_answers_429(
    owner, teammate, team, project, client_for, settings
):
    settings.SUBMITS_PER_MINUTE = 2
    page = client_for(owner).post(
        f"/t/{team.slug}/projects/{project.pk}/submit/", {**GRID, "count": "1"}
    )
    assert page.status_code == 302
    client = ApiClient(token_for(owner))
    assert client.post("/api/v1/batches", {**GRID, "count": 1}).status_code == 201
    before = counts()
    refused = client.post("/api/v1/batches", {**GRID, "count": 1})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Try again in" in refused.json()["detail"]
    assert client.post("/api/v1/images/promote", {"ids": [1], "size": "2K"}).status_code == 429
    assert counts() == before
    # Per member: the teammate's token still submits.
    assert ApiClient(token_for(teammate)).post("/api/v1/batches", GRID).status_code == 201


def test_too_many_images_waiting_is_429_with_retry_after(owner, team, project, settings):
    settings.LANE_MEMBER_OUTSTANDING_CAP = 5
    client = ApiClient(token_for(owner))
    assert client.post("/api/v1/batches", GRID).status_code == 201
    before = counts()
    refused = client.post("/api/v1/batches", GRID)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "the limit is 5" in refused.json()["detail"]
    assert counts() == before


# --- one batch -------------------------------------------------------------------------


def test_reading_a_batch_owner_and_teammate_see_it_a_stranger_gets_404(
    owner, teammate, stranger, team, grid
):
    Generation.objects.filter(batch=grid, index=2).update(
        status=Status.FAILED, error="The provider timed out."
    )
    for user in (owner, teammate):
        response = ApiClient(token_for(user, team)).get(f"/api/v1/batches/{grid.pk}")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "finished"
        assert body["progress"] == {
            "total": 3, "done": 2, "cached": 0, "failed": 1, "blocked": 0, "canceled": 0,
            "queued": 0, "running": 0, "finished": 3, "eta_seconds": None, "waiting_for": "",
        }  # fmt: skip
        images = body["images"]
        assert [image["seed"] for image in images] == [500, 501, 502]
        assert images[2]["status"] == "failed" and images[2]["error"] == "The provider timed out."
        assert images[2]["download_url"] is None
        assert images[0]["download_url"].endswith(f"/api/v1/images/{images[0]['id']}/download")
        assert images[0]["page_url"].endswith(f"/t/{team.slug}/images/{images[0]['id']}/")
    stranger_client = ApiClient(token_for(stranger))
    assert stranger_client.get(f"/api/v1/batches/{grid.pk}").status_code == 404
    assert stranger_client.get("/api/v1/batches/999999").status_code == 404


def test_cancel_releases_the_queued_images_and_a_stranger_cannot(
    owner, teammate, stranger, team, project
):
    batch = submit(team, owner, project, count=4)
    available = wallet_balance(team)[0]
    assert (
        ApiClient(token_for(stranger)).post(f"/api/v1/batches/{batch.pk}/cancel").status_code == 404
    )
    assert Generation.objects.filter(batch=batch, status=Status.QUEUED).count() == 4
    # A teammate may cancel, as on the grid page.
    response = ApiClient(token_for(teammate, team)).post(f"/api/v1/batches/{batch.pk}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["canceled"] == 4
    assert body["batch"]["progress"]["canceled"] == 4 and body["batch"]["status"] == "finished"
    assert wallet_balance(team)[0] == available + 4 * 67  # four Flash 1K images released
    again = ApiClient(token_for(owner)).post(f"/api/v1/batches/{batch.pk}/cancel")
    assert again.json()["canceled"] == 0


# --- images ----------------------------------------------------------------------------


def test_image_list_shows_the_team_images_to_members_and_none_to_a_stranger(
    owner, teammate, stranger, team, grid
):
    ids = set(grid.generations.values_list("pk", flat=True))
    for user in (owner, teammate):
        body = ApiClient(token_for(user, team)).get("/api/v1/images").json()
        assert {image["id"] for image in body["images"]} == ids
        assert body["next_cursor"] == ""
        assert body["images"][0]["member"] == "olivia"
    body = ApiClient(token_for(stranger)).get("/api/v1/images").json()
    assert body["images"] == []


def test_image_list_filters(owner, teammate, team, project, grid):
    other = submit(team, teammate, project, prompt="brass lamp on a desk", size="512", count=2)
    render_all()
    lamp = set(other.generations.values_list("pk", flat=True))
    teapots = set(grid.generations.values_list("pk", flat=True))
    starred = grid.generations.first()
    Generation.objects.filter(pk=starred.pk).update(starred=True)
    client = ApiClient(token_for(owner))

    def ids(**params):
        response = client.get("/api/v1/images", params)
        assert response.status_code == 200, response.content
        return {image["id"] for image in response.json()["images"]}

    assert ids(q="LAMP") == lamp
    assert ids(starred="true") == {starred.pk}
    assert ids(size="512") == lamp
    assert ids(size="1K") == teapots
    assert ids(tier="pro") == set()
    assert ids(member="theo") == lamp
    assert ids(status="succeeded") == lamp | teapots
    assert ids(status="failed") == set()
    today = timezone.localdate()
    assert ids(since=today.isoformat(), until=today.isoformat()) == lamp | teapots
    assert ids(until=(today - timedelta(days=1)).isoformat()) == set()
    assert ids(since=(today + timedelta(days=1)).isoformat()) == set()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"tier": "ultra"}, "tier"),
        ({"size": "9K"}, "size"),
        ({"status": "lost"}, "status"),
        ({"since": "last tuesday"}, "since"),
        ({"member": "nobody"}, "member"),
        ({"cursor": "!!!"}, "cursor"),
    ],
)
def test_bad_filters_are_400_naming_the_field(owner, team, params, field):
    response = ApiClient(token_for(owner)).get("/api/v1/images", params)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()


def test_image_list_pages_with_a_cursor(owner, team, grid, monkeypatch):
    monkeypatch.setattr(selectors, "HISTORY_PER_PAGE", 2)
    client = ApiClient(token_for(owner))
    seen, cursor, pages = [], "", 0
    while True:
        body = client.get("/api/v1/images", {"cursor": cursor} if cursor else {}).json()
        seen += [image["id"] for image in body["images"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 2
    assert seen == sorted(grid.generations.values_list("pk", flat=True), reverse=True)


def test_promote_owner_and_teammate_a_stranger_gets_404(owner, teammate, stranger, team, grid):
    draft = grid.generations.first()
    stranger_client = ApiClient(token_for(stranger))
    before = counts()
    assert (
        stranger_client.post(
            "/api/v1/images/promote", {"ids": [draft.pk], "size": "2K"}
        ).status_code
        == 404
    )
    assert counts() == before
    for user, size in ((owner, "2K"), (teammate, "4K")):
        response = ApiClient(token_for(user, team)).post(
            "/api/v1/images/promote", {"ids": [draft.pk], "size": size}
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["tier"] == "pro" and body["size"] == size and body["is_promotion"]
        assert body["member"] == user.username
        assert body["images"][0]["seed"] == draft.seed


def test_promote_refusals(owner, team, grid):
    client = ApiClient(token_for(owner))
    draft = grid.generations.first()
    before = counts()
    assert (
        client.post("/api/v1/images/promote", {"ids": [draft.pk], "size": "8K"}).status_code == 400
    )
    assert client.post("/api/v1/images/promote", {"ids": [], "size": "2K"}).status_code == 400
    assert client.post("/api/v1/images/promote", {"ids": [999999], "size": "2K"}).status_code == 404
    Generation.objects.filter(pk=draft.pk).update(status=Status.FAILED)
    refused = client.post("/api/v1/images/promote", {"ids": [draft.pk], "size": "2K"})
    assert refused.status_code == 400 and "finished" in refused.json()["detail"]
    assert counts() == before


def test_download_the_original_with_its_metadata(owner, teammate, stranger, team, grid):
    image = grid.generations.select_related("asset").first()
    for user in (owner, teammate):
        response = ApiClient(token_for(user, team)).get(f"/api/v1/images/{image.pk}/download")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert download_name(image) in response["Content-Disposition"]
        data = b"".join(response.streaming_content)
        meta = read_metadata(data)
        assert meta["seed"] == image.seed and meta["prompt"] == image.prompt
        assert Image.open(io.BytesIO(data)).size == (image.asset.width, image.asset.height)
    assert (
        ApiClient(token_for(stranger)).get(f"/api/v1/images/{image.pk}/download").status_code == 404
    )


def test_download_of_an_unfinished_image_is_409(owner, team, project):
    batch = submit(team, owner, project, count=1)
    image = batch.generations.get()
    response = ApiClient(token_for(owner)).get(f"/api/v1/images/{image.pk}/download")
    assert response.status_code == 409
    assert "queued" in response.json()["detail"]


# --- balance ---------------------------------------------------------------------------


def test_balance_is_the_token_team_and_the_caller_limits(owner, teammate, stranger, team, grid):
    member_cap_set(team=team, member=teammate, period="month", tier="pro", credits=1000)
    available, held = wallet_balance(team)
    body = ApiClient(token_for(owner)).get("/api/v1/balance").json()
    assert body == {"team": team.slug, "available": available, "held": held, "limits": []}
    body = ApiClient(token_for(teammate, team)).get("/api/v1/balance").json()
    assert body["available"] == available
    assert body["limits"] == [{"label": "your Pro limit this month", "left": 1000, "limit": 1000}]
    body = ApiClient(token_for(stranger)).get("/api/v1/balance").json()
    assert body["team"] != team.slug and body["available"] == 0


def test_the_interactive_docs_page_is_not_served(owner, team, client):
    assert client.get("/api/v1/docs").status_code == 404
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_a_browser_session_does_not_authenticate_the_api(owner, team, project, client_for):
    """Only the bearer header counts, so a cross-site form riding the cookie gets nowhere
    (which is why the API needs no CSRF token)."""
    browser = client_for(owner)
    before = counts()
    for path, data in (("/api/v1/batches", GRID), ("/api/v1/images/promote", {"ids": [1]})):
        assert browser.post(path, data, content_type="application/json").status_code == 401
        assert browser.post(path, data).status_code == 401
    assert browser.get("/api/v1/balance").status_code == 401
    assert counts() == before
