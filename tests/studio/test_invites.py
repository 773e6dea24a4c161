"""Joining through an invite: the link is used once, whatever the race, and says how long it lasts.

The race runs against the live server with real HTTP clients in threads, so
each attempt is its own request, connection and transaction, as in
production (run it on PostgreSQL with DATABASE_URL=postgres://…).
"""

import html
import re
import threading
from datetime import timedelta

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from studio.models import Invite, Membership, Role
from studio.services import invite_create
from tests.conftest import make_user

RACERS = 15
PASSPHRASE = "a-long-Passphrase-42"


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    # Fifteen sign-ups at once: hashing at full strength would only slow the race down.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _signup(username: str) -> dict:
    return {"username": username, "email": "", "password1": PASSPHRASE, "password2": PASSPHRASE}


@pytest.mark.django_db(transaction=True)
def test_one_invite_raced_fifteen_ways_makes_one_member_and_no_other_account(
    owner, team, live_server
):
    token = invite_create(team=team, created_by=owner)
    url = live_server.url + reverse("invite", args=[token])
    ready = threading.Barrier(RACERS)
    answers: dict[int, httpx.Response] = {}

    def race(n: int) -> None:
        with httpx.Client(timeout=60) as client:
            form = client.get(url)
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            ready.wait()
            answers[n] = client.post(
                url, data={**_signup(f"racer{n}"), "csrfmiddlewaretoken": csrf}
            )

    threads = [threading.Thread(target=race, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [answer for answer in answers.values() if answer.status_code == 302]
    assert len(winners) == 1 and len(answers) == RACERS
    # The others were told, whether they lost at the spending update (410) or
    # arrived after the winner had committed (404).
    for answer in answers.values():
        if answer is not winners[0]:
            assert answer.status_code in (404, 410)
            assert re.search(r"(just|already) been used", html.unescape(answer.text))
    racers = get_user_model().objects.filter(username__startswith="racer")
    assert racers.count() == 1
    winner = racers.get()
    assert Membership.objects.filter(team=team, role=Role.MEMBER).get().user == winner
    assert Invite.objects.get().used_by == winner


@pytest.mark.django_db
def test_a_signed_in_person_joins_once(owner, team, stranger, client_for):
    token = invite_create(team=team, created_by=owner)
    client = client_for(stranger)
    url = reverse("invite", args=[token])
    assert client.post(url).status_code == 302
    assert Membership.objects.get(team=team, user=stranger).role == Role.MEMBER
    again = client.post(url)
    assert again.status_code == 404 and "already been used" in again.content.decode()


@pytest.mark.django_db
def test_a_member_opening_another_invite_does_not_spend_it(owner, team, teammate, client_for):
    token = invite_create(team=team, created_by=owner)
    response = client_for(teammate).post(reverse("invite", args=[token]))
    assert response.status_code == 410
    assert "already a member" in response.content.decode()
    assert Invite.objects.usable().count() == 1


@pytest.mark.django_db
def test_a_username_taken_meanwhile_spends_nothing(owner, team, client):
    token = invite_create(team=team, created_by=owner)
    from studio.forms import SignUpForm
    from studio.services import invite_accept

    form = SignUpForm(_signup("nina"))
    assert form.is_valid()
    make_user("nina")  # someone else takes the name after the form was checked
    from studio.services import InviteError

    with pytest.raises(InviteError, match="taken a moment ago"):
        invite_accept(token=token, new_user=form.save(commit=False))
    assert Invite.objects.usable().count() == 1
    assert not Membership.objects.filter(team=team, user__username="nina").exists()


@pytest.mark.django_db
def test_the_invite_page_states_its_validity(owner, team, client, client_for, settings):
    settings.INVITE_VALID_DAYS = 3
    token = invite_create(team=team, created_by=owner)
    expires = Invite.objects.get().expires
    assert timedelta(days=3) - (expires - timezone.now()) < timedelta(minutes=1)
    page = client.get(reverse("invite", args=[token])).content.decode()
    assert "works once" in page and "invites last 3 days" in page
    assert "valid until" in page and str(timezone.localtime(expires).year) in page

    members = client_for(owner)
    created = members.post(reverse("team-invite", args=[team.slug]), {"role": "member"})
    listing = members.get(created["Location"]).content.decode()
    assert "works once, for 3 days" in listing
    assert "expires after 3 days" in listing
