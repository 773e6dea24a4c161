"""Rate limits: submits (grids and promotions) per member per minute, and sign-in attempts."""

import pytest
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


# --- sign-in under attack -----------------------------------------------------------------
#
# The limits must slow a guesser down without handing anyone a way to lock a
# person out: every limit is keyed on the guesser's own address, so a correct
# password from anywhere else always gets in.

PROXY = "172.18.0.1"  # the reverse proxy every request comes through


@pytest.fixture
def fast_hashing(settings, owner):
    """Hundreds of sign-ins: hash with MD5 (test only) so each is not a third of a second."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    owner.set_password(PASSWORD)
    owner.save()


def through_proxy(client_address: str, spoofed: str = "") -> Client:
    """A client behind the one trusted proxy, which appends its peer to X-Forwarded-For."""
    forwarded = f"{spoofed}, {client_address}" if spoofed else client_address
    return Client(REMOTE_ADDR=PROXY, headers={"X-Forwarded-For": forwarded})


def test_junk_through_the_proxy_does_not_lock_out_a_correct_password(fast_hashing, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    # 200 junk attempts, from 50 client addresses, at the owner and at made-up names.
    for n in range(200):
        username = "olivia" if n % 2 else f"nobody{n}"
        attacker = through_proxy(f"203.0.113.{n % 50}")
        attacker.post("/signin/", {"username": username, "password": f"guess-{n}"})
    person = through_proxy("198.51.100.7")
    response = person.post("/signin/", {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in person.session


def test_a_client_behind_the_proxy_is_still_limited_whatever_it_writes_in_the_header(
    owner, db, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    answers = []
    for n in range(8):
        # A fresh made-up address on the left each time: the proxy's entry on the right wins.
        attacker = through_proxy("203.0.113.66", spoofed=f"10.0.0.{n}")
        answers.append(
            attacker.post("/signin/", {"username": "olivia", "password": f"guess-{n}"}).status_code
        )
    assert answers == [200] * 3 + [429] * 5


def test_hammering_a_username_from_one_address_does_not_stop_its_owner_elsewhere(
    owner, db, settings
):
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    answers = [
        attacker.post("/signin/", {"username": "olivia", "password": f"guess-{n}"}).status_code
        for n in range(30)
    ]
    assert answers[:3] == [200] * 3 and set(answers[3:]) == {429}
    person = Client(REMOTE_ADDR="198.51.100.7")
    response = person.post("/signin/", {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in person.session


def test_spraying_many_usernames_from_one_address_is_limited(fast_hashing, settings):
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    answers = [
        attacker.post("/signin/", {"username": f"user{n}", "password": "Summer2026!"}).status_code
        for n in range(20)
    ]
    assert answers == [200] * 12 + [429] * 8  # four times the per-name limit
    # Correct sign-ins from a shared address are not failures and use none of its budget.
    office = Client(REMOTE_ADDR="198.51.100.20")
    for _ in range(20):
        assert (
            office.post("/signin/", {"username": "olivia", "password": PASSWORD}).status_code == 302
        )
        office.post("/signout/")
