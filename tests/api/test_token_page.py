"""The API tokens page: make a token (shown once), see when it was used, revoke it."""

import re

import pytest

from studio.models import ApiToken

from .conftest import ApiClient, token_for

pytestmark = pytest.mark.django_db


def url(team):
    return f"/t/{team.slug}/api-tokens/"


def test_members_see_the_page_and_a_stranger_gets_404(owner, teammate, stranger, team, client_for):
    for user in (owner, teammate):
        response = client_for(user).get(url(team))
        assert response.status_code == 200
        assert "API tokens" in response.content.decode()
    assert client_for(stranger).get(url(team)).status_code == 404
    assert client_for(stranger).post(url(team), {"name": "mine"}).status_code == 404
    assert not ApiToken.objects.exists()


def test_the_team_nav_links_to_the_page(owner, team, client_for):
    assert f'href="{url(team)}"' in client_for(owner).get(f"/t/{team.slug}/").content.decode()


def test_a_new_token_is_shown_once_and_works(teammate, team, client_for):
    client = client_for(teammate)
    response = client.post(url(team), {"name": "  render   farm "}, follow=True)
    # Post/redirect/get: the secret is shown on the page the redirect lands on.
    assert response.redirect_chain[0][1] == 302 and response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    secret = re.search(r'value="(cs_[A-Za-z0-9_-]+)"', page).group(1)
    token = ApiToken.objects.get()
    assert token.user == teammate and token.team == team and token.name == "render farm"
    assert token.token_hash == ApiToken.hash_token(secret)
    # Shown once: the list afterwards has only its first characters.
    listing = client.get(url(team)).content.decode()
    assert secret not in listing and token.hint in listing and "never" in listing
    assert ApiClient(secret).get("/api/v1/balance").status_code == 200
    assert "never" not in client.get(url(team)).content.decode().split("Your tokens")[1]


def test_a_token_needs_a_name(owner, team, client_for):
    response = client_for(owner).post(url(team), {"name": "   "}, follow=True)
    assert response.redirect_chain == [(url(team), 302)]
    assert 'class="message error"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_reloading_after_a_new_token_makes_no_second_one(owner, teammate, team, client_for):
    client = client_for(owner)
    response = client.post(url(team), {"name": "farm"})
    assert response.status_code == 302
    shown = client.get(response["Location"]).content.decode()
    assert 'value="cs_' in shown
    # A reload is a GET of the page it landed on: no second token, and the
    # secret is not shown again.
    reloaded = client.get(response["Location"]).content.decode()
    assert ApiToken.objects.count() == 1
    assert 'value="cs_' not in reloaded
    # Nobody else can open that address to read the secret.
    other = client.post(url(team), {"name": "second"})
    assert 'value="cs_' not in client_for(teammate).get(other["Location"]).content.decode()
    assert 'value="cs_' in client.get(other["Location"]).content.decode()


def test_revoking_ends_the_token_at_once(owner, team, client_for):
    secret = token_for(owner)
    api = ApiClient(secret)
    assert api.get("/api/v1/balance").status_code == 200
    token = ApiToken.objects.get()
    response = client_for(owner).post(f"{url(team)}{token.pk}/revoke/")
    assert response.status_code == 302
    assert api.get("/api/v1/balance").status_code == 401
    assert token.hint not in client_for(owner).get(url(team)).content.decode()


def test_a_member_revokes_only_their_own_an_owner_any_in_the_team(
    owner, teammate, stranger, team, client_for
):
    token_for(owner, name="owner key")
    token_for(teammate, team, name="theo key")
    owner_token = ApiToken.objects.get(user=owner)
    theo_token = ApiToken.objects.get(user=teammate)
    # A teammate cannot revoke the owner's token, nor see it listed.
    assert "owner key" not in client_for(teammate).get(url(team)).content.decode()
    assert client_for(teammate).post(f"{url(team)}{owner_token.pk}/revoke/").status_code == 404
    # A stranger reaches nothing in the team.
    assert client_for(stranger).post(f"{url(team)}{theo_token.pk}/revoke/").status_code == 404
    stranger_slug = stranger.teams.get().slug
    stranger_url = f"/t/{stranger_slug}/api-tokens/{theo_token.pk}/revoke/"
    assert client_for(stranger).post(stranger_url).status_code == 404
    assert ApiToken.objects.active().count() == 2
    # The owner sees every member's token and can revoke it.
    page = client_for(owner).get(url(team)).content.decode()
    assert "theo key" in page and "All tokens in the team" in page
    assert client_for(owner).post(f"{url(team)}{theo_token.pk}/revoke/").status_code == 302
    assert list(ApiToken.objects.active()) == [owner_token]


def test_revoke_is_post_only(owner, team, client_for):
    token_for(owner)
    token = ApiToken.objects.get()
    assert client_for(owner).get(f"{url(team)}{token.pk}/revoke/").status_code == 405
    assert ApiToken.objects.active().count() == 1
