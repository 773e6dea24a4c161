"""Rate limits: submits (grids and promotions) per member per minute, and sign-in attempts."""

from django.test import Client

from billing.models import LedgerEntry
from generation.models import Batch, Generation, Project
from generation.tasks import run_lane
from tests.conftest import PASSWORD

from .conftest import fund, submit

GRID = {"prompt": "a fox", "tier": "flash", "size": "512", "aspect": "1:1", "count": "1"}


def counts():
    return LedgerEntry.objects.count(), Batch.objects.count(), Generation.objects.count()


def test_submits_per_member_per_minute(owner, teammate, team, db, settings):
    settings.SUBMITS_PER_MINUTE = 3
    fund(team, owner)
    project = Project.objects.create(team=team, name="Limits", created_by=owner)
    url = f"/t/{team.slug}/projects/{project.pk}/submit/"
    client = Client()
    client.force_login(owner)
    for n in range(3):
        response = client.post(url, {**GRID, "seed": str(n)})
        assert response.status_code == 302, response.content[:500]
    before = counts()
    refused = client.post(url, {**GRID, "seed": "99"})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Try again in" in refused.content.decode()
    assert counts() == before, "a refused submit created something"
    # The limit is per member: a teammate still submits.
    other = Client()
    other.force_login(teammate)
    assert other.post(url, {**GRID, "seed": "7"}).status_code == 302


def test_promotions_count_against_the_same_limit(owner, team, db, settings):
    settings.SUBMITS_PER_MINUTE = 2
    fund(team, owner)
    draft = submit(team, owner, count=1, size="512")
    while run_lane("flash"):
        pass
    pk = draft.generations.get().pk
    client = Client()
    client.force_login(owner)
    url = f"/t/{team.slug}/selection/promote/go/"
    for _ in range(2):
        assert client.post(url, {"ids": [pk], "size": "2K"}).status_code == 302
    before = counts()
    refused = client.post(url, {"ids": [pk], "size": "2K"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Try again in" in refused.content.decode()
    assert counts() == before


def test_sign_in_attempts_are_limited_even_for_the_right_password(owner, db, settings):
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    client = Client()
    for _ in range(3):
        response = client.post("/signin/", {"username": "olivia", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    refused = client.post("/signin/", {"username": "olivia", "password": PASSWORD})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Try again in" in refused.content.decode()
    assert "_auth_user_id" not in client.session
