"""The offline renderer: stable, exact, varied, steerable by references, Pro richer.

Speed is measured in bench/, not asserted here.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageChops, ImageFilter, ImageStat

from generation import catalog
from generation.providers import (
    PermanentError,
    RenderRequest,
    model_for,
    provider_for,
)
from generation.providers.gemini import GeminiProvider
from generation.providers.offline import OfflineProvider, render_image

REPO = Path(__file__).resolve().parents[2]
PROMPTS = ("a red fox in snow, studio light", "neon city at night", "Character: Mia", "dunes")


def request(prompt="a red fox in snow", seed=7, tier="flash", size="512", aspect="1:1", refs=()):
    return RenderRequest(prompt, seed, tier, size, aspect, "gemini-3.1-flash-image", refs)


def render(**kwargs) -> Image.Image:
    result = OfflineProvider().render(request(**kwargs))
    return Image.open(io.BytesIO(result.image))


def difference(first: Image.Image, second: Image.Image) -> float:
    """Mean absolute difference per channel, 0–255."""
    if first.size != second.size:
        second = second.resize(first.size)
    return sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3


def encoded(color, image_format="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buffer, format=image_format)
    return buffer.getvalue()


def test_returns_png_with_the_configured_model():
    result = OfflineProvider().render(request())
    assert result.mime_type == "image/png"
    assert result.image.startswith(b"\x89PNG")
    assert result.model == "gemini-3.1-flash-image"
    assert result.usage == {}


def test_same_request_gives_the_same_pixels():
    refs = (encoded((200, 40, 40)),)
    first = OfflineProvider().render(request(refs=refs, tier="pro", size="1K"))
    second = OfflineProvider().render(request(refs=refs, tier="pro", size="1K"))
    assert first.image == second.image


def test_same_pixels_in_another_process_with_another_hash_seed():
    # hash() is salted per process; the renderer must not depend on it.
    code = (
        "import hashlib; from generation.providers.base import RenderRequest; "
        "from generation.providers.offline import render_image; "
        "image = render_image(RenderRequest('neon city', 3, 'pro', '1K', "
        "'16:9', 'm')); print(hashlib.sha256(image.tobytes()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "DJANGO_SETTINGS_MODULE": "studio.settings"}
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    here = render_image(RenderRequest("neon city", 3, "pro", "1K", "16:9", "m"))
    assert other == hashlib.sha256(here.tobytes()).hexdigest()


EXACT_CASES = [
    (tier, size, aspect)
    for tier in catalog.TIERS
    for size in catalog.SIZES[tier]
    if size != "4K"
    for aspect in catalog.ASPECTS[tier]
] + [("flash", "4K", "21:9"), ("flash", "4K", "1:8"), ("pro", "4K", "9:16")]


@pytest.mark.parametrize(("tier", "size", "aspect"), EXACT_CASES)
def test_exact_pixel_size(tier, size, aspect):
    image = render(tier=tier, size=size, aspect=aspect)
    assert image.format == "PNG"
    assert image.mode == "RGB"
    assert image.size == catalog.pixel_size(size, aspect)


def test_different_prompts_differ_substantially():
    images = [render(prompt=prompt) for prompt in PROMPTS]
    for index, first in enumerate(images):
        for second in images[index + 1 :]:
            assert difference(first, second) > 12


def test_different_seeds_differ_substantially():
    for prompt in PROMPTS:
        assert difference(render(prompt=prompt, seed=1), render(prompt=prompt, seed=2)) > 12


def test_pictures_are_compositions_not_noise():
    # Smooth shapes and gradients: neighbouring pixels mostly agree.
    image = render(tier="pro", size="1K").convert("L")
    edges = ImageStat.Stat(image.filter(ImageFilter.FIND_EDGES)).mean[0]
    assert edges < 10


def test_references_pull_the_palette_toward_their_colors():
    red, blue = encoded((230, 20, 20)), encoded((20, 20, 230), "JPEG")
    for prompt in PROMPTS:
        plain = render(prompt=prompt)
        reddish = render(prompt=prompt, refs=(red,))
        bluish = render(prompt=prompt, refs=(blue,))
        assert difference(plain, reddish) > 12
        assert difference(reddish, bluish) > 12
        red_mean, blue_mean = ImageStat.Stat(reddish).mean, ImageStat.Stat(bluish).mean
        assert red_mean[0] > red_mean[2]
        assert blue_mean[2] > blue_mean[0]


def test_webp_and_unreadable_references_still_render():
    webp = encoded((40, 200, 40), "WEBP")
    assert difference(render(), render(refs=(webp,))) > 12
    garbled = render(refs=(b"not an image",))
    assert garbled.size == (512, 512)


def test_pro_is_richer_than_flash():
    for prompt in PROMPTS:
        flash = render(prompt=prompt, size="1K")
        pro = render(prompt=prompt, size="1K", tier="pro")
        assert difference(flash, pro) > 6
        # More layers, lighting and finer texture: more distinct colors and more detail.
        flash_colors = len(flash.getcolors(1 << 24))
        pro_colors = len(pro.getcolors(1 << 24))
        assert pro_colors > 2 * flash_colors

        def detail(image):
            return ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0]

        assert detail(pro) > detail(flash)


def test_a_size_the_tier_does_not_offer_is_refused():
    with pytest.raises(PermanentError, match="Pro does not offer 512"):
        OfflineProvider().render(request(tier="pro", size="512"))


def test_latency_setting_delays_the_answer(settings):
    settings.OFFLINE_FLASH_LATENCY = 0.3
    started = time.monotonic()
    OfflineProvider().render(request())
    assert time.monotonic() - started >= 0.3


# --- choosing a provider ------------------------------------------------------


def test_offline_is_the_default_for_both_tiers(settings):
    settings.FLASH_PROVIDER = settings.PRO_PROVIDER = "offline"
    for tier in catalog.TIERS:
        provider = provider_for(tier)
        assert provider.name == "offline"
        assert provider.label == "Offline renderer"


def test_model_ids_come_from_settings(settings):
    settings.FLASH_MODEL = "gemini-nano-banana-2.1"
    settings.PRO_MODEL = "gemini-3-pro-image"
    assert model_for("flash") == "gemini-nano-banana-2.1"
    assert model_for("pro") == "gemini-3-pro-image"


def test_gemini_provider_is_built_from_settings(settings):
    settings.PRO_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = "key-1"
    settings.GEMINI_API_BASE = "http://127.0.0.1:9/"
    provider = provider_for("pro")
    assert isinstance(provider, GeminiProvider)
    assert (provider.name, provider.label) == ("gemini", "Gemini")
    assert provider.api_key == "key-1"
    assert provider.api_base == "http://127.0.0.1:9"


def test_unknown_provider_is_a_configuration_error(settings):
    settings.FLASH_PROVIDER = "midjourney"
    with pytest.raises(ImproperlyConfigured, match="FLASH_PROVIDER"):
        provider_for("flash")


def test_unknown_tier_is_refused():
    with pytest.raises(ValueError):
        provider_for("ultra")


def _draft_png(prompt: str, seed: int, refs=()) -> bytes:
    """A Flash draft as the pipeline stores it: the render with its parameters embedded."""
    from generation.imaging import make_renditions

    result = OfflineProvider().render(request(prompt=prompt, seed=seed, size="1K", refs=refs))
    meta = {"prompt": prompt, "seed": seed, "tier": "flash", "size": "1K", "aspect": "1:1",
            "model": "m", "provider": "offline", "parent": None, "generation": 1,
            "references": [hashlib.sha256(r).hexdigest() for r in refs]}  # fmt: skip
    return make_renditions(result.image, meta).original


def _small(image: Image.Image) -> Image.Image:
    # Compositions compared at a size where Pro's finer detail averages out.
    return image.convert("RGB").resize((48, 48), Image.Resampling.BOX)


@pytest.mark.parametrize("refs", [(), (encoded((200, 60, 40)),)])
def test_a_pro_render_of_a_draft_keeps_its_composition(refs):
    for prompt in PROMPTS:
        draft_png = _draft_png(prompt, 11, refs)
        draft = Image.open(io.BytesIO(draft_png))
        promoted = render(prompt=prompt, seed=11, tier="pro", size="2K", refs=(*refs, draft_png))
        unrelated = render(prompt=prompt, seed=12, tier="pro", size="2K", refs=refs)
        kept = difference(_small(draft), _small(promoted))
        other = difference(_small(draft), _small(unrelated))
        # Same shapes and layout (lit and shaded), unlike another seed's picture.
        assert kept < 18, (prompt, kept)
        assert other > 2 * kept, (prompt, kept, other)
        # Still a Pro render: more detail than the draft, not a copy of it.
        assert difference(draft.resize(promoted.size), promoted) > 3
        again = render(prompt=prompt, seed=11, tier="pro", size="2K", refs=(*refs, draft_png))
        assert again.tobytes() == promoted.tobytes()


def test_a_reference_that_is_not_the_draft_still_steers_a_pro_render():
    # A plain PNG as the last reference is a reference, not a draft to follow.
    red = encoded((230, 20, 20))
    plain = render(tier="pro", size="1K")
    assert difference(plain, render(tier="pro", size="1K", refs=(red,))) > 12
