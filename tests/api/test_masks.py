"""Region edits through the API: the mask as base64, the same refusals as the pages."""

import base64
import io

import pytest
from PIL import Image, ImageDraw

from billing.selectors import wallet_balance
from generation.models import Batch, Generation

from .conftest import ApiClient, fund, render_all, submit, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(team, owner, project):
    batch = submit(team, owner, project, count=1, seed=510)
    render_all()
    return Generation.objects.select_related("asset").get(batch=batch)


def mask_b64(size, box=(0, 0, 100, 100)) -> str:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    out = io.BytesIO()
    mask.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_a_region_edit_with_a_base64_mask(owner, team, image):
    client = ApiClient(token_for(owner))
    size = (image.asset.width, image.asset.height)
    answer = client.post(
        f"/api/v1/images/{image.pk}/edit",
        {"instructions": ["a red sail"], "mask": "data:image/png;base64," + mask_b64(size)},
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["mask"] == Batch.objects.get(pk=body["id"]).mask_sha256
    render_all()
    assert client.get(f"/api/v1/batches/{body['id']}").json()["progress"]["done"] == 1


@pytest.mark.parametrize(
    ("mask", "says"),
    [
        ("%%% not base64", "The mask is not valid base64."),
        (base64.b64encode(b"plain text").decode(), "The mask is not usable"),
        (mask_b64((32, 32)), "it must be the image's own size"),
    ],
    ids=["not-base64", "not-an-image", "wrong-size"],
)
def test_a_bad_mask_is_a_400_and_nothing_is_held(owner, team, image, mask, says):
    before = (Batch.objects.count(), wallet_balance(team))
    answer = ApiClient(token_for(owner)).post(
        f"/api/v1/images/{image.pk}/edit", {"instructions": ["a sail"], "mask": mask}
    )
    assert answer.status_code == 400, answer.content
    assert says in answer.json()["detail"] and "mask" in answer.json()["errors"]
    assert (Batch.objects.count(), wallet_balance(team)) == before


def test_a_stranger_gets_404_for_a_region_edit(stranger, image):
    theirs = stranger.teams.get()
    fund(theirs, stranger)
    size = (image.asset.width, image.asset.height)
    answer = ApiClient(token_for(stranger)).post(
        f"/api/v1/images/{image.pk}/edit", {"instructions": ["x"], "mask": mask_b64(size)}
    )
    assert answer.status_code == 404
