"""Prices per provider and model: the most specific row wins, and a hold keeps its price."""

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing.models import Hold, LedgerEntry, Price
from billing.prices import price_table
from billing.selectors import wallet_balance
from billing.services import Refusal, hold_capture, hold_place, quote, unit_price
from tests.conftest import make_user

from .conftest import fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed():
    """Flash 1K: the default 67, OpenAI 80, its gpt-image-1 model 90, ComfyUI 20."""
    Price.objects.create(tier="flash", size="1K", provider="openai", credits=80)
    Price.objects.create(
        tier="flash", size="1K", provider="openai", model="gpt-image-1", credits=90
    )
    Price.objects.create(tier="flash", size="1K", provider="comfyui", credits=20)


def test_existing_prices_are_the_defaults_for_any_provider():
    assert set(Price.objects.values_list("provider", "model")) == {("", "")}
    assert unit_price(tier="pro", size="4K") == 240
    assert unit_price(tier="pro", size="4K", provider="openai", model="gpt-image-1") == 240


@pytest.mark.usefixtures("routed")
@pytest.mark.parametrize(
    ("provider", "model", "credits"),
    [
        ("", "", 67),  # no backend named: the default
        ("gemini", "gemini-2.5-flash-image", 67),  # no row for gemini: the default
        ("openai", "", 80),  # the provider's row
        ("openai", "gpt-image-1-mini", 80),  # a model without a row: the provider's row
        ("openai", "gpt-image-1", 90),  # provider + model: the most specific
        ("OpenAI ", "gpt-image-1", 90),  # provider names are matched without case
        ("comfyui", "gpt-image-1", 20),  # another provider's model row does not apply
        ("offline", "", 67),
    ],
)
def test_the_most_specific_price_wins(provider, model, credits):
    assert unit_price(tier="flash", size="1K", provider=provider, model=model) == credits
    assert quote(tier="flash", size="1K", count=3, provider=provider, model=model) == 3 * credits


@pytest.mark.usefixtures("routed")
def test_other_tiers_and_sizes_keep_their_own_defaults():
    assert unit_price(tier="flash", size="2K", provider="openai", model="gpt-image-1") == 101
    assert unit_price(tier="pro", size="1K", provider="comfyui") == 134
    with pytest.raises(Refusal) as refused:
        unit_price(tier="pro", size="512", provider="openai")
    assert refused.value.code == "unknown_price"


@pytest.mark.usefixtures("routed")
def test_a_hold_copies_the_price_it_was_quoted(team, owner):
    fund(team, 10_000)
    quoted = quote(tier="flash", size="1K", count=4, provider="openai", model="gpt-image-1")
    with transaction.atomic():
        hold = hold_place(
            team=team,
            member=owner,
            tier="flash",
            size="1K",
            count=4,
            key="routed",
            provider="openai",
            model="gpt-image-1",
        )
    assert hold.unit_price * hold.count == quoted == 360
    stored = Hold.objects.get(pk=hold.pk)
    assert (stored.provider, stored.model, stored.unit_price) == ("openai", "gpt-image-1", 90)
    assert wallet_balance(team) == (10_000 - 360, 360)
    # A later price change moves nothing already held: captures charge the hold's price.
    price = Price.objects.get(tier="flash", size="1K", provider="openai", model="gpt-image-1")
    price.credits = 500
    price.save()
    assert unit_price(tier="flash", size="1K", provider="openai", model="gpt-image-1") == 500
    assert hold_capture(hold_id=hold.pk, images=4, key="routed:done")
    assert wallet_balance(team) == (10_000 - 360, 0)
    capture = LedgerEntry.objects.get(idempotency_key="capture:routed:done")
    assert capture.held_delta == -360


def test_a_hold_without_a_backend_takes_the_default_price(team, owner):
    fund(team, 1_000)
    Price.objects.create(tier="pro", size="2K", provider="openai", credits=1)
    hold = hold_place(team=team, member=owner, tier="pro", size="2K", count=1, key="plain")
    assert (hold.unit_price, hold.provider, hold.model) == (134, "", "")


def test_a_saved_price_is_seen_at_once_and_a_rolled_back_one_never_kept():
    assert unit_price(tier="pro", size="1K") == 134
    price = Price.objects.get(tier="pro", size="1K", provider="", model="")
    with pytest.raises(RuntimeError), transaction.atomic():
        price.credits = 999
        price.save()
        assert unit_price(tier="pro", size="1K") == 999
        raise RuntimeError("changed my mind")
    assert unit_price(tier="pro", size="1K") == 134
    assert price_table()[("pro", "1K", "", "")] == 134


def test_rows_added_without_signals_are_found():
    Price.objects.bulk_create([Price(tier="pro", size="8K", credits=480)])
    assert unit_price(tier="pro", size="8K") == 480


def test_one_row_per_tier_size_provider_and_model():
    Price.objects.create(tier="pro", size="4K", provider="openai", credits=300)
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(tier="pro", size="4K", provider="openai", credits=301)
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(tier="pro", size="4K", credits=1)  # a second default
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(tier="pro", size="4K", model="gpt-image-1", credits=1)


def test_price_admin_adds_a_provider_price_and_refuses_a_model_without_provider(client_for):
    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_price", "change_price", "view_price"])
    )
    client = client_for(clerk)
    url = reverse("admin:billing_price_add")
    form = {"tier": "pro", "size": "4K", "provider": "ComfyUI", "model": "", "credits": "40"}
    assert client.post(url, form).status_code == 302
    assert unit_price(tier="pro", size="4K", provider="comfyui") == 40
    orphan = client.post(url, {**form, "provider": "", "model": "sdxl"})
    assert orphan.status_code == 200
    assert "Choose the provider this model belongs to." in orphan.content.decode()
    duplicate = client.post(url, form)
    assert duplicate.status_code == 200
    assert Price.objects.filter(tier="pro", size="4K").count() == 2
    listing = client.get(reverse("admin:billing_price_changelist"))
    assert listing.status_code == 200 and "comfyui" in listing.content.decode()
