"""A tier offers what its routed model can make, from the model's catalog entry:
held against the openai SDK's own types and the shared Gemini reference, and
seen where a person sees it (the composer, the price line, the Backends page)."""

from __future__ import annotations

import typing

import pytest
from openai.types.image_model import ImageModel

from billing.models import LedgerEntry
from generation import catalog, model_catalog
from generation.models import Batch
from generation.requests import parse_batch_request
from generation.services import SubmitRefused, batch_submit
from tests.fakes.openai_server import _any_size_ok
from tests.reliability.conftest import fund

SDK_MODELS = set(typing.get_args(ImageModel))


def test_every_openai_model_we_know_is_one_the_sdk_names():
    ours = {model for (provider, model) in model_catalog.ENTRIES if provider == "openai"}
    assert ours <= SDK_MODELS
    # The SDK marks gpt-image-1 as shut down; so does the catalog, and no default uses it.
    assert model_catalog.entry_for("openai", "gpt-image-1").shut_down.isoformat() == "2026-10-23"


def test_every_size_a_2x_model_offers_follows_the_sdk_rules():
    """Both sides divisible by 16, aspect within 1:3–3:1, at most 3840 × 2160."""
    for model in ("gpt-image-2", "gpt-image-2.5-sunburst", "gpt-image-2.5-flare"):
        for tier in catalog.TIERS:
            offer = model_catalog.offer(tier, "openai", model)
            assert "4K" not in offer.sizes
            assert not {"1:4", "4:1", "1:8", "8:1"} & set(offer.aspects)
            for size in offer.sizes:
                for aspect in offer.aspects:
                    width, height = offer.pixel_size(size, aspect)
                    assert _any_size_ok(f"{width}x{height}"), (model, size, aspect)


def test_the_current_flash_model_has_no_512_and_the_old_one_says_it_is_deprecated():
    current = model_catalog.offer("flash", "gemini", "gemini-nano-banana-2.1")
    assert current.sizes == ("1K", "2K", "4K")
    old = model_catalog.entry_for("gemini", "gemini-3.1-flash-image")
    assert old.retirement == "deprecated on 2026-10-06; use gemini-nano-banana-2.1 instead"
    # Models we do not know (a ComfyUI workflow, the offline renderer) offer the whole tier.
    assert (
        model_catalog.offer("flash", "offline", "gemini-nano-banana-2.1").sizes
        == (catalog.SIZES["flash"])
    )


@pytest.fixture
def on_openai(settings, team, owner):
    settings.PRO_PROVIDER, settings.PRO_MODEL = "openai", "gpt-image-2.5-sunburst"
    settings.OPENAI_API_KEY = "sk-test"
    fund(team, owner)
    return team


def _request(**fields):
    data = {"prompt": "a lighthouse", "tier": "pro", "size": "4K", "aspect": "16:9", "count": 2}
    return parse_batch_request({**data, **fields})


def test_pro_4k_on_openai_is_refused_up_front_and_nothing_is_held(on_openai, owner):
    entries = LedgerEntry.objects.count()
    with pytest.raises(SubmitRefused) as refused:
        batch_submit(team=on_openai, member=owner, request=_request())
    assert refused.value.errors == {
        "size": "Pro on gpt-image-2.5-sunburst renders at 1K, 2K, not 4K."
    }
    assert LedgerEntry.objects.count() == entries
    assert not Batch.objects.exists()


def test_the_price_line_shows_the_real_pixels_and_the_hold_their_price(
    on_openai, owner, client_for
):
    from billing.services import unit_price

    client = client_for(owner)
    url = f"/t/{on_openai.slug}/composer/price/"
    line = client.get(url, {"prompt": "x", "tier": "pro", "size": "2K", "aspect": "16:9",
                            "count": "2"}).content.decode()  # fmt: skip
    price = unit_price(tier="pro", size="2K", provider="openai", model="gpt-image-2.5-sunburst")
    assert f'2 × Pro 2K <span class="pixels">(2688 × 1536)</span> = {2 * price:,} credits' in line
    refused = client.get(url, {"prompt": "x", "tier": "pro", "size": "4K", "aspect": "16:9",
                               "count": "2"}).content.decode()  # fmt: skip
    assert "renders at 1K, 2K, not 4K" in refused

    batch = batch_submit(team=on_openai, member=owner, request=_request(size="2K"))
    hold = LedgerEntry.objects.get(kind="hold")
    assert hold.held_delta == batch.credits_quoted == 2 * price


def test_the_composer_offers_exactly_what_each_tier_can_make(on_openai, owner, client_for):
    from generation.services import project_create

    project = project_create(team=on_openai, member=owner, name="Lighthouses")
    page = client_for(owner).get(f"/t/{on_openai.slug}/projects/{project.pk}/").content.decode()
    # Pro runs on gpt-image-2.5-sunburst, which cannot make 4K or 1:4; Flash (offline) can.
    assert 'data-tiers="flash"><input type="radio" name="size" value="4K"' in page
    assert 'data-tiers="flash pro"><input type="radio" name="size" value="2K"' in page
    assert 'data-tiers="flash" title="1:4"' in page


def test_owners_see_a_deprecated_model_in_use_with_its_date(settings, owner, team, client_for):
    settings.FLASH_PROVIDER, settings.FLASH_MODEL = "gemini", "gemini-3.1-flash-image"
    page = client_for(owner).get(f"/t/{team.slug}/backends/").content.decode()
    assert (
        "gemini-3.1-flash-image was deprecated on 2026-10-06; use gemini-nano-banana-2.1 "
        "instead." in page
    )
