"""Owners route each tier to one of the backends the site offers."""

import pytest
from django.urls import reverse

from billing.services import wallet_top_up
from generation.backends import backend_for
from generation.models import TeamBackend
from generation.requests import parse_batch_request
from generation.services import batch_submit

pytestmark = pytest.mark.django_db

OFFERED = ["flash:openai:gpt-image-1-mini", "pro:comfyui:quality.json"]


@pytest.fixture(autouse=True)
def offered(settings):
    settings.BACKEND_CHOICES = OFFERED


def url(team):
    return reverse("team-backends", args=[team.slug])


def test_everyone_in_the_team_sees_the_backends_stranger_gets_404(
    owner, teammate, stranger, team, client_for
):
    assert client_for(owner).get(url(team)).status_code == 200
    page = client_for(teammate).get(url(team))
    assert page.status_code == 200 and "Only the team" in page.content.decode()
    assert client_for(stranger).get(url(team)).status_code == 404


def test_owner_routes_flash_to_another_backend_and_new_batches_use_it(
    owner, team, client_for, settings
):
    pro_default = f"{settings.PRO_PROVIDER}:{settings.PRO_MODEL}"
    response = client_for(owner).post(
        url(team), {"flash": "openai:gpt-image-1-mini", "pro": pro_default}
    )
    assert response.status_code == 302
    assert backend_for(team, "flash").provider == "openai"
    wallet_top_up(team=team, amount=10_000, actor=owner, note="t", idempotency_key="t")
    request = parse_batch_request({"prompt": "fox", "tier": "flash", "size": "1K", "aspect": "1:1"})
    batch = batch_submit(team=team, member=owner, request=request)
    assert (batch.provider, batch.model) == ("openai", "gpt-image-1-mini")
    assert set(batch.generations.values_list("provider", flat=True)) == {"openai"}


def test_a_teammate_cannot_change_backends(teammate, team, client_for):
    response = client_for(teammate).post(url(team), {"flash": "openai:gpt-image-1-mini"})
    assert response.status_code == 403
    assert not TeamBackend.objects.exists()


def test_a_backend_the_site_does_not_offer_is_refused(owner, team, client_for):
    response = client_for(owner).post(url(team), {"flash": "midjourney:v7", "pro": "x:y"})
    assert response.status_code == 400
    assert not TeamBackend.objects.exists()


def test_a_choice_the_site_withdrew_falls_back_to_the_default(owner, team, settings):
    TeamBackend.objects.create(team=team, tier="flash", provider="openai", model="gpt-image-1-mini")
    assert backend_for(team, "flash").provider == "openai"
    settings.BACKEND_CHOICES = []
    assert backend_for(team, "flash").provider == settings.FLASH_PROVIDER


def test_the_backends_price_is_quoted_and_held(owner, team, client_for):
    from billing.models import Price
    from billing.selectors import wallet_balance

    Price.objects.create(
        tier="flash", size="1K", provider="openai", model="gpt-image-1-mini", credits=40
    )
    TeamBackend.objects.create(team=team, tier="flash", provider="openai", model="gpt-image-1-mini")
    price_line = client_for(owner).get(
        reverse("composer-price", args=[team.slug]),
        {"prompt": "fox", "tier": "flash", "size": "1K", "aspect": "1:1", "count": "3"},
    )
    assert "120 credits" in price_line.content.decode()
    assert "OpenAI" in price_line.content.decode()
    wallet_top_up(team=team, amount=1_000, actor=owner, note="t", idempotency_key="t2")
    request = parse_batch_request(
        {"prompt": "fox", "tier": "flash", "size": "1K", "aspect": "1:1", "count": 3}
    )
    batch_submit(team=team, member=owner, request=request)
    assert wallet_balance(team) == (1_000 - 120, 120)
