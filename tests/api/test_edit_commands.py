"""The edit and vary commands: the same service as the pages and the API, the price printed."""

import io

import pytest
from django.core.management import CommandError, call_command
from PIL import Image, ImageDraw

from billing.selectors import wallet_balance
from generation.models import Batch, Generation

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db
FLASH_1K = 67


def run(command, *args, **options) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def image(team, owner, project):
    batch = submit(team, owner, project, count=1, seed=520)
    render_all()
    return Generation.objects.select_related("asset").get(batch=batch)


def test_edit_makes_a_grid_of_instructions_and_prints_the_price(owner, team, image):
    out = run(
        "edit", str(image.pk), team=team.slug, user=owner.username,
        instructions=["make the light warmer", "add a moon"],
    )  # fmt: skip
    batch = Batch.objects.get(kind="edit")
    assert f"Edit of image #{image.pk}: grid #{batch.pk}, 2 images on Flash 1K" in out
    assert f"Price: {2 * FLASH_1K} credits held (2 × {FLASH_1K})." in out
    assert "“make the light warmer”" in out and f"/api/v1/batches/{batch.pk}" in out
    assert wallet_balance(team)[1] == 2 * FLASH_1K


def test_edit_with_a_mask_file_and_again_from_the_cache(owner, team, image, tmp_path):
    path = tmp_path / "mask.png"
    mask = Image.new("L", (image.asset.width, image.asset.height), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 200, 200), fill=255)
    mask.save(path)
    options = dict(team=team.slug, user=owner.username, instructions=["a sail"], mask=path)
    out = run("edit", str(image.pk), **options)
    assert "a region edit, with a mask" in out
    assert Batch.objects.get(kind="edit").mask_sha256
    render_all()
    again = run("edit", str(image.pk), **options)
    assert "Price: 0 credits held; 1 from the cache, free." in again


def test_edit_refusals_are_command_errors_and_make_nothing(owner, stranger, team, image, tmp_path):
    small = tmp_path / "small.png"
    Image.new("L", (8, 8), 255).save(small)
    for options, says in (
        (dict(user=owner.username, instructions=[]), "Write what to change"),
        (dict(user=owner.username, instructions=["x"], mask=small), "it must be the image's"),
        (dict(user=owner.username, instructions=["x"], mask=tmp_path / "nope.png"), "Cannot read"),
        (dict(user=stranger.username, instructions=["x"]), "is not a member of"),
    ):
        with pytest.raises(CommandError, match=says):
            run("edit", str(image.pk), team=team.slug, **options)
    assert not Batch.objects.filter(kind="edit").exists()
    assert wallet_balance(team)[1] == 0


def test_vary_prints_the_grid_and_its_price(teammate, team, image):
    out = run("vary", str(image.pk), team=team.slug, user=teammate.username,
              strength="strong", count="3")  # fmt: skip
    batch = Batch.objects.get(kind="variation")
    assert (batch.count, batch.strength, batch.member) == (3, "strong", teammate)
    assert f"Vary strong of image #{image.pk}: grid #{batch.pk}, 3 images" in out
    assert f"Price: {3 * FLASH_1K} credits held (3 × {FLASH_1K})." in out
    with pytest.raises(CommandError, match="between 1 and 50"):
        run("vary", str(image.pk), team=team.slug, user=teammate.username,
            strength="subtle", count="0")  # fmt: skip
