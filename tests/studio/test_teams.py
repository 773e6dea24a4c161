"""Teams: who sees what, invites, the team switcher."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from studio.models import Invite, Membership, Role
from studio.services import invite_create

pytestmark = pytest.mark.django_db


def test_owner_and_teammate_see_the_team_stranger_gets_404(
    owner, teammate, stranger, team, client_for
):
    url = reverse("team", args=[team.slug])
    assert client_for(owner).get(url).status_code == 200
    assert client_for(teammate).get(url).status_code == 200
    assert client_for(stranger).get(url).status_code == 404


def test_unknown_team_and_foreign_team_answer_alike(stranger, team, client_for):
    foreign = client_for(stranger).get(reverse("team-members", args=[team.slug]))
    missing = client_for(stranger).get(reverse("team-members", args=["no-such-team"]))
    assert foreign.status_code == missing.status_code == 404
    assert team.name not in foreign.content.decode()


def test_signed_out_visitor_is_sent_to_sign_in(client, team):
    response = client.get(reverse("team", args=[team.slug]))
    assert response.status_code == 404 or response["Location"].startswith("/signin/")


def test_home_lands_on_the_only_team(owner, team, client_for):
    response = client_for(owner).get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("team", args=[team.slug])


def test_team_switcher_lists_every_team(owner, stranger, team, client_for):
    other = stranger.teams.get()
    Membership.objects.create(team=other, user=owner, role=Role.MEMBER)
    page = client_for(owner).get(reverse("team", args=[team.slug])).content.decode()
    assert "Switch team" in page and other.name in page


def test_owner_invites_a_member_link_works_once(owner, team, client_for, client):
    response = client_for(owner).post(reverse("team-invite", args=[team.slug]), {"role": "member"})
    assert response.status_code == 302
    assert Invite.objects.filter(team=team).count() == 1

    token = invite_create(team=team, created_by=owner)
    url = reverse("invite", args=[token])
    signup = {
        "username": "nina",
        "email": "",
        "password1": "a-long-Passphrase-42",
        "password2": "a-long-Passphrase-42",
    }
    joined = client.post(url, signup)
    assert joined.status_code == 302
    assert Membership.objects.filter(team=team, user__username="nina", role=Role.MEMBER).exists()

    again = client.post(url, {**signup, "username": "nina2"})
    assert again.status_code == 404
    assert "already been used" in again.content.decode()
    assert not Membership.objects.filter(user__username="nina2").exists()


def test_expired_invite_is_refused(owner, team, client):
    token = invite_create(team=team, created_by=owner)
    Invite.objects.update(expires=timezone.now() - timedelta(minutes=1))
    response = client.get(reverse("invite", args=[token]))
    assert response.status_code == 404
    assert "expired" in response.content.decode()


def test_member_cannot_create_invites(teammate, team, client_for):
    response = client_for(teammate).post(
        reverse("team-invite", args=[team.slug]), {"role": "admin"}
    )
    assert response.status_code == 403
    assert not Invite.objects.exists()


def test_stranger_cannot_create_invites(stranger, team, client_for):
    response = client_for(stranger).post(
        reverse("team-invite", args=[team.slug]), {"role": "member"}
    )
    assert response.status_code == 404
    assert not Invite.objects.exists()


def test_sign_in_and_out(owner, client):
    response = client.post(
        reverse("signin"), {"username": "olivia", "password": "correct-horse-battery-staple"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    client.post(reverse("signout"))
    assert client.get("/")["Location"].startswith("/signin/")


def test_sign_in_is_throttled_with_retry_after(owner, client, settings):
    for _ in range(settings.SIGNIN_ATTEMPTS_PER_MINUTE):
        response = client.post(reverse("signin"), {"username": "olivia", "password": "wrong"})
        assert response.status_code == 200
    response = client.post(
        reverse("signin"), {"username": "olivia", "password": "correct-horse-battery-staple"}
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_creating_a_team_makes_you_its_owner(owner, client_for):
    response = client_for(owner).post(reverse("team-new"), {"name": "Second Unit"})
    assert response.status_code == 302
    assert Membership.objects.get(team__name="Second Unit").role == Role.OWNER


def test_blank_team_name_is_refused(owner, client_for):
    response = client_for(owner).post(reverse("team-new"), {"name": "   "}, follow=True)
    assert response.redirect_chain == [(reverse("home"), 302)]
    assert 'class="error"' in response.content.decode()
    assert owner.teams.count() == 1
