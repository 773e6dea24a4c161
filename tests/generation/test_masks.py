"""Region edits: a painted mask says where an edit may change the picture.

Validation and the cache in this process; a real worker renders a masked
edit and charges it exactly; the offline renderer keeps every pixel outside
the mask.
"""

import hashlib
import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image, ImageChops, ImageDraw

from billing.selectors import wallet_balance
from generation import catalog
from generation.imaging import MASK_MAX_BYTES, clean_mask, mask_with_alpha, read_metadata
from generation.models import Batch, Generation, Status, TeamBackend
from generation.providers import RenderRequest
from generation.providers.offline import OfflineProvider
from generation.services import SubmitRefused, generation_edit
from generation.tasks import run_lane

from .test_edits import assert_books_balance, pixels, rendered_draft
from .test_engine import FLASH_1K, fund, wait_for

SIZE_1K_16_9 = catalog.pixel_size("1K", "16:9")


def mask_png(size=SIZE_1K_16_9, box=(0.55, 0.2, 0.9, 0.8), *, mode="L", fmt="PNG") -> bytes:
    """A mask painted white in `box` (unit coordinates) on black, as a browser sends it."""
    width, height = size
    image = Image.new(mode, size, 0)
    if box:
        left, top, right, bottom = box
        fill = 255 if mode == "L" else (255, 255, 255, 255)
        ImageDraw.Draw(image).rectangle(
            (left * width, top * height, right * width, bottom * height), fill=fill
        )
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def stored_files() -> set[str]:
    found = set()

    def walk(path):
        folders, files = default_storage.listdir(path)
        found.update(f"{path}/{name}" for name in files)
        for folder in folders:
            walk(f"{path}/{folder}" if path else folder)

    try:
        walk("teams")
    except FileNotFoundError:
        pass
    return found


# --- the mask itself -----------------------------------------------------------------


def test_a_mask_is_kept_as_black_and_white_of_the_images_size():
    # Canvas paint: white strokes on transparent, anti-aliased at the edges.
    canvas = Image.new("RGBA", (64, 36), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).ellipse((10, 5, 30, 25), fill=(255, 255, 255, 255))
    out = io.BytesIO()
    canvas.save(out, "PNG")
    mask = clean_mask(out.getvalue(), size=(64, 36))
    with Image.open(io.BytesIO(mask.data)) as image:
        assert image.mode == "L" and image.size == (64, 36)
        assert {value for _, value in image.getcolors()} == {0, 255}
        assert image.getpixel((20, 15)) == 255 and image.getpixel((50, 30)) == 0
    assert 0 < mask.painted < 0.5
    assert mask.sha256 == hashlib.sha256(mask.data).hexdigest()


def test_openai_and_comfyui_get_transparent_where_the_mask_is_white():
    mask = clean_mask(mask_png((64, 36), (0, 0, 0.5, 1)), size=(64, 36))
    with Image.open(io.BytesIO(mask_with_alpha(mask.data))) as image:
        assert image.mode == "RGBA" and image.size == (64, 36)
        assert image.getpixel((5, 5))[3] == 0  # painted: to change
        assert image.getpixel((60, 5))[3] == 255  # unpainted: to keep


# --- refusals: in words, nothing held, queued or stored --------------------------------


@pytest.mark.parametrize(
    ("mask", "says"),
    [
        (b"not an image at all", "The mask is not usable: This file is not an image"),
        (mask_png((100, 100)), "The mask is 100 × 100 pixels; it must be the image's own size"),
        (mask_png(box=None), "Nothing is painted on the mask"),
        (b"\x89PNG" + b"\0" * (MASK_MAX_BYTES + 1), "a mask can be up to 8 MB"),
    ],
    ids=["not-an-image", "wrong-size", "empty", "too-large"],
)
def test_a_bad_mask_is_refused_and_nothing_happens(owner, team, transactional_db, mask, says):
    fund(team, owner)
    source = rendered_draft(team, owner)
    before = (Batch.objects.count(), Generation.objects.count(), wallet_balance(team))
    files = stored_files()
    with pytest.raises(SubmitRefused) as refused:
        generation_edit(
            team=team, member=owner, source=source.pk, instructions=["a sail"], mask=mask
        )
    assert says in refused.value.message, refused.value.message
    assert refused.value.code == "invalid" and "mask" in refused.value.errors
    assert (Batch.objects.count(), Generation.objects.count(), wallet_balance(team)) == before
    assert stored_files() == files
    assert run_lane("flash") is None  # nothing was queued


def test_without_the_credits_a_region_edit_holds_and_stores_nothing(owner, team, transactional_db):
    fund(team, owner, amount=FLASH_1K)  # enough for the draft only
    source = rendered_draft(team, owner)
    files = stored_files()
    with pytest.raises(SubmitRefused) as refused:
        generation_edit(
            team=team, member=owner, source=source.pk, instructions=["a sail"], mask=mask_png()
        )
    assert refused.value.code == "credits"
    assert Batch.objects.filter(kind="edit").count() == 0 and stored_files() == files


def test_every_attempt_renders_with_the_stored_mask(owner, team, transactional_db):
    from generation.rendering import _request_for

    fund(team, owner)
    source = rendered_draft(team, owner)
    batch = generation_edit(
        team=team, member=owner, source=source.pk, instructions=["a sail"], mask=mask_png()
    )
    stored = default_storage.open(batch.mask.name).read()
    assert hashlib.sha256(stored).hexdigest() == batch.mask_sha256
    generation = Generation.objects.select_related("batch", "parent__asset").get(batch=batch)
    for _attempt in range(2):  # a retry builds its request again, from the batch
        request, meta = _request_for(generation, deadline=None)
        assert request.mask == stored and meta["mask"] == batch.mask_sha256


def test_a_model_that_takes_no_mask_refuses_a_region_edit(owner, team, transactional_db, settings):
    fund(team, owner)
    source = rendered_draft(team, owner)
    settings.BACKEND_CHOICES = ["flash:comfyui:sd_xl_turbo_1.0_fp16.safetensors"]
    settings.COMFYUI_INPAINT_WORKFLOW = ""  # this site has no inpainting template
    TeamBackend.objects.create(
        team=team, tier="flash", provider="comfyui", model="sd_xl_turbo_1.0_fp16.safetensors"
    )
    before = (Batch.objects.count(), wallet_balance(team))
    with pytest.raises(SubmitRefused) as refused:
        generation_edit(
            team=team, member=owner, source=source.pk, instructions=["a sail"], mask=mask_png()
        )
    assert "takes no mask and no image guidance" in refused.value.message
    assert (Batch.objects.count(), wallet_balance(team)) == before


def test_the_catalog_says_what_each_model_does_with_a_mask(settings):
    from generation.backends import Backend

    assert Backend("flash", "openai", "gpt-image-2.5-flare").mask == "mask"
    assert Backend("flash", "gemini", "gemini-nano-banana-2.1").mask == "guidance"
    assert Backend("flash", "offline", "gemini-nano-banana-2.1").mask == "mask"
    assert Backend("flash", "comfyui", "sd_xl_turbo_1.0_fp16.safetensors").mask == "mask"
    settings.COMFYUI_INPAINT_WORKFLOW = ""
    assert Backend("flash", "comfyui", "sd_xl_turbo_1.0_fp16.safetensors").mask == ""


# --- the cache: the same mask is a hit, another mask is not ------------------------------


def test_the_same_mask_is_a_cache_hit_at_zero_and_another_mask_is_not(
    owner, team, transactional_db
):
    fund(team, owner)
    source = rendered_draft(team, owner)
    left, right = mask_png(box=(0, 0, 0.4, 1)), mask_png(box=(0.6, 0, 1, 1))

    def edit(mask, words="a red sail"):
        return generation_edit(
            team=team, member=owner, source=source.pk, instructions=[words], mask=mask
        )

    first = edit(left)
    assert first.mask_sha256 and default_storage.exists(first.mask.name)
    assert run_lane("flash") is not None
    spent = wallet_balance(team)

    again = edit(left)
    copy = again.generations.get()
    assert copy.cached and copy.asset_id == first.generations.get().asset_id
    assert again.credits_quoted == 0 and wallet_balance(team) == spent

    other_mask = edit(right).generations.get()
    unmasked = generation_edit(
        team=team, member=owner, source=source.pk, instructions=["a red sail"]
    ).generations.get()
    assert not other_mask.cached and not unmasked.cached
    assert len({copy.fingerprint, other_mask.fingerprint, unmasked.fingerprint}) == 3
    assert wallet_balance(team)[1] == 2 * FLASH_1K
    assert_books_balance()


# --- the offline renderer: the change stays in the region ------------------------------


def test_offline_pixels_outside_the_mask_stay_the_sources():
    source = (
        OfflineProvider()
        .render(RenderRequest("a harbour at dusk", 5, "flash", "1K", "16:9", "offline"))
        .image
    )
    mask = clean_mask(mask_png(), size=SIZE_1K_16_9)

    def render(words, with_mask=True):
        return OfflineProvider().render(
            RenderRequest(
                "a harbour at dusk", 5, "flash", "1K", "16:9", "offline", source=source,
                instruction=words, mask=mask.data if with_mask else b"",
            )
        ).image  # fmt: skip

    region = Image.open(io.BytesIO(mask.data))
    keep = ImageChops.invert(region)
    for words in ("make it teal", "remove the boat", "add two moons", "something else"):
        edited = render(words)
        assert edited == render(words)  # deterministic
        difference = ImageChops.difference(decoded(edited), decoded(source)).convert("L")
        outside = ImageChops.multiply(difference, keep)
        inside = ImageChops.multiply(difference, region)
        assert outside.getbbox() is None, words  # every pixel outside is the source's
        assert inside.getbbox() is not None, words  # and the region did change
    # Without the mask the same words change the picture outside that region too.
    unmasked = ImageChops.difference(decoded(render("make it teal", False)), decoded(source))
    assert ImageChops.multiply(unmasked.convert("L"), keep).getbbox() is not None


# --- with a real worker ---------------------------------------------------------------


@pytest.mark.slow
def test_a_masked_edit_renders_on_a_worker_and_is_charged_exactly(owner, team, both_lanes):
    fund(team, owner)
    source = rendered_draft(team, owner)
    batch = generation_edit(
        team=team,
        member=owner,
        source=source.pk,
        instructions=["make it teal", "add a moon"],
        mask=mask_png(),
    )
    assert wallet_balance(team) == (100_000 - 3 * FLASH_1K, 2 * FLASH_1K)
    assert wait_for(batch) == [Status.SUCCEEDED] * 2
    region = Image.open(io.BytesIO(default_storage.open(batch.mask.name).read()))
    keep = ImageChops.invert(region)
    for edit in batch.generations.select_related("asset"):
        assert edit.credits_charged == FLASH_1K
        meta = read_metadata(pixels(edit))
        assert meta["mask"] == batch.mask_sha256 and meta["instruction"] == edit.instruction
        difference = ImageChops.difference(decoded(pixels(edit)), decoded(pixels(source)))
        assert ImageChops.multiply(difference.convert("L"), keep).getbbox() is None
    assert wallet_balance(team) == (100_000 - 3 * FLASH_1K, 0)
    assert_books_balance()
