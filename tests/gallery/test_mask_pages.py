"""The edit form with a painted mask, and the viewer's edit panel: owner, teammate, stranger."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageDraw

from billing.selectors import wallet_balance
from generation.models import Batch, Generation, TeamBackend

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(team, owner, project):
    batch = submit(team, owner, project, count=1, seed=700)
    render_all()
    return Generation.objects.select_related("asset").get(batch=batch)


def painted(size, box=(10, 10, 200, 150)) -> SimpleUploadedFile:
    mask = Image.new("L", size, 0)
    if box:
        ImageDraw.Draw(mask).rectangle(box, fill=255)
    out = io.BytesIO()
    mask.save(out, "PNG")
    return SimpleUploadedFile("mask.png", out.getvalue(), content_type="image/png")


def counts():
    return Batch.objects.count(), Generation.objects.count()


def test_the_image_page_offers_the_mask_editor_and_says_what_each_tier_does(
    owner, team, image, client_for
):
    page = client_for(owner).get(reverse("image", args=[team.slug, image.pk])).content.decode()
    assert 'enctype="multipart/form-data"' in page and "data-mask-editor hidden" in page
    assert f'width="{image.asset.width}" height="{image.asset.height}"' in page
    assert 'data-mask-note="flash" data-mask-kind="mask"' in page  # offline: a hard mask
    assert 'data-key="e"' in page and "<kbd>E</kbd> edit" in page


def test_a_gemini_tier_says_the_mask_is_guidance(owner, team, image, client_for, settings):
    settings.BACKEND_CHOICES = ["pro:gemini:gemini-3-pro-image"]
    settings.PRO_PROVIDER, settings.PRO_MODEL = "gemini", "gemini-3-pro-image"
    page = client_for(owner).get(reverse("image", args=[team.slug, image.pk])).content.decode()
    assert 'data-mask-note="pro" data-mask-kind="guidance"' in page
    assert "the mask is guidance, not a hard mask" in page


def test_the_owner_sends_a_mask_with_the_edit(owner, team, image, client_for):
    response = client_for(owner).post(
        reverse("image-edit", args=[team.slug, image.pk]),
        {
            "instructions": "a red sail",
            "tier": "flash",
            "mask": painted((image.asset.width, image.asset.height)),
        },
    )
    assert response.status_code == 302
    batch = Batch.objects.get(kind="edit")
    assert batch.mask_sha256 and batch.mask.name.endswith(f"{batch.mask_sha256}.png")
    render_all()
    edit = batch.generations.get()
    assert edit.status == "succeeded"


def test_a_teammate_too_and_a_stranger_gets_404(teammate, stranger, team, image, client_for):
    url = reverse("image-edit", args=[team.slug, image.pk])
    size = (image.asset.width, image.asset.height)
    answer = client_for(teammate).post(url, {"instructions": "a sail", "mask": painted(size)})
    assert answer.status_code == 302 and Batch.objects.get(kind="edit").member == teammate
    before = counts()
    answer = client_for(stranger).post(url, {"instructions": "a sail", "mask": painted(size)})
    assert answer.status_code == 404 and counts() == before


@pytest.mark.parametrize(
    ("mask", "says"),
    [
        (lambda size: painted((50, 50)), "it must be the image&#x27;s own size"),
        (lambda size: painted(size, box=None), "Nothing is painted on the mask"),
        (
            lambda size: SimpleUploadedFile("mask.png", b"GIF89a not really", "image/png"),
            "The mask is not usable",
        ),
    ],
    ids=["wrong-size", "empty", "not-an-image"],
)
def test_a_bad_mask_is_refused_on_the_page_and_makes_nothing(
    owner, team, image, client_for, mask, says
):
    before, held = counts(), wallet_balance(team)
    response = client_for(owner).post(
        reverse("image-edit", args=[team.slug, image.pk]),
        {"instructions": "a sail", "mask": mask((image.asset.width, image.asset.height))},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert says in body and 'role="alert"' in body
    assert counts() == before and wallet_balance(team) == held


def test_a_model_without_masks_refuses_on_the_page(owner, team, image, client_for, settings):
    settings.BACKEND_CHOICES = ["flash:comfyui:sd_xl_turbo_1.0_fp16.safetensors"]
    settings.COMFYUI_INPAINT_WORKFLOW = ""
    TeamBackend.objects.create(
        team=team, tier="flash", provider="comfyui", model="sd_xl_turbo_1.0_fp16.safetensors"
    )
    before = counts()
    response = client_for(owner).post(
        reverse("image-edit", args=[team.slug, image.pk]),
        {"instructions": "a sail", "mask": painted((image.asset.width, image.asset.height))},
    )
    assert response.status_code == 400
    assert "takes no mask and no image guidance" in response.content.decode()
    assert counts() == before


def test_the_viewers_edit_panel_for_owner_teammate_and_stranger(
    owner, teammate, stranger, team, image, client_for
):
    url = reverse("image-edit-panel", args=[team.slug, image.pk])
    for person in (owner, teammate):
        response = client_for(person).get(url)
        assert response.status_code == 200
        body = response.content.decode()
        assert f"Edit image #{image.pk}" in body and "data-mask-editor" in body
        assert "<html" not in body  # the partial alone
    assert client_for(stranger).get(url).status_code == 404


def test_tiles_offer_edit_among_their_actions(owner, team, project, image, client_for):
    page = client_for(owner).get(reverse("project", args=[team.slug, project.pk]))
    assert f'href="/t/{team.slug}/images/{image.pk}/#iterate"' in page.content.decode()
    assert 'data-action="edit"' in page.content.decode()


def test_a_region_edits_page_says_it_was_made_in_a_painted_region(owner, team, image, client_for):
    client = client_for(owner)
    client.post(
        reverse("image-edit", args=[team.slug, image.pk]),
        {"instructions": "a sail", "mask": painted((image.asset.width, image.asset.height))},
    )
    render_all()
    edit = Batch.objects.get(kind="edit").generations.get()
    page = client.get(reverse("image", args=[team.slug, edit.pk])).content.decode()
    assert f"#{image.pk}</a>, in a painted region: “a sail”" in page
