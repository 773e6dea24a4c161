"""Culling without a browser: reject and rate, coming back to a place, compare, and
the promote dialog saying what the server would refuse, before the click."""

import pytest
from django.urls import reverse

from billing.models import MemberCap
from billing.selectors import wallet_of
from generation.models import Generation

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_teammate_rejects_an_image_it_leaves_the_view_and_comes_back(
    owner, teammate, team, project, grid, client_for
):
    image = grid.generations.order_by("index").first()
    url = reverse("image-reject", args=[team.slug, image.pk])
    response = client_for(teammate).post(url, {"rejected": "1"}, **HTMX)
    body = response.content.decode()
    assert f'id="tile-{image.pk}"' in body and "is-rejected" in body
    image.refresh_from_db()
    assert image.rejected and not image.archived

    page = reverse("project", args=[team.slug, project.pk])
    default = client_for(owner).get(page).content.decode()
    assert 'class="grids" data-grids' in default  # rejected tiles are hidden by its CSS
    shown = client_for(owner).get(page + "?rejected=1").content.decode()
    assert 'class="grids show-rejected"' in shown and "Hide rejected" in shown

    client_for(owner).post(url, {"rejected": "0"})  # undo
    image.refresh_from_db()
    assert not image.rejected


def test_ratings_are_one_to_five_and_zero_clears(owner, team, grid, client_for):
    image = grid.generations.first()
    url = reverse("image-rate", args=[team.slug, image.pk])
    client = client_for(owner)
    response = client.post(url, {"rating": "4"}, **HTMX)
    assert 'title="Rated 4 of 5"' in response.content.decode()
    for bad in ("6", "-1", "x", ""):
        assert client.post(url, {"rating": bad}).status_code == 400
    assert Generation.objects.get(pk=image.pk).rating == 4
    client.post(url, {"rating": "0"})
    assert Generation.objects.get(pk=image.pk).rating == 0


def test_a_tile_is_one_tab_stop(owner, team, grid, client_for):
    body = client_for(owner).get(reverse("history", args=[team.slug])).content.decode()
    tile = body[body.index('<figure class="tile') : body.index("</figure>")]
    # The image link is the stop; every other control in the tile takes the tile's keys.
    assert tile.count("<a ") + tile.count("<button") + tile.count("<input") == (
        1 + tile.count('tabindex="-1"')
    )


def test_through_loads_every_grid_down_to_an_older_one(owner, team, project, client_for):
    batches = [submit(team, owner, project, count=1, seed=s) for s in range(6)]
    page = reverse("project", args=[team.slug, project.pk])
    client = client_for(owner)
    assert client.get(page).content.decode().count('<section class="grid') == 3
    body = client.get(page + f"?through={batches[0].pk}").content.decode()
    assert body.count('<section class="grid') == 6 and "Show older grids" not in body
    body = client.get(page + f"?through={batches[2].pk}").content.decode()
    assert body.count('<section class="grid') == 4 and "Show older grids" in body
    # An unknown or foreign batch id is the plain first page.
    assert client.get(page + "?through=999999").content.decode().count('<section class="grid') == 3


def test_compare_two_to_four_images_of_the_team_only(owner, team, project, stranger, client_for):
    batch = submit(team, owner, project, count=5, size="512")
    render_all()
    ids = list(batch.generations.order_by("index").values_list("pk", flat=True))
    url = reverse("compare-many", args=[team.slug])
    client = client_for(owner)
    body = client.get(url + "?ids=" + ",".join(map(str, ids))).content.decode()
    assert body.count("data-zoom ") + body.count("data-zoom>") == 4  # at most four
    assert f"?through={batch.pk}#tile-{ids[0]}" in body  # Esc goes back to the first's tile
    assert client.get(url + f"?ids={ids[0]}").status_code == 404
    assert client_for(stranger).get(url + f"?ids={ids[0]},{ids[1]}").status_code == 404


# --- the promote dialog says what the server would refuse ---------------------------


def _dialog(client, team, ids):
    url = reverse("promote-confirm", args=[team.slug])
    return client.post(url, {"ids": ids}, **HTMX).content.decode()


def test_more_drafts_than_a_pro_batch_takes_disables_promote(
    owner, team, project, client_for, settings
):
    settings.PRO_MAX_COUNT = 2
    batch = submit(team, owner, project, count=3, size="512")
    render_all()
    ids = list(batch.generations.values_list("pk", flat=True))
    body = _dialog(client_for(owner), team, ids)
    assert body.count("disabled") == 2
    assert "Pro renders at most 2 images at a time; 3 are chosen." in body
    assert "disabled" not in _dialog(client_for(owner), team, ids[:2])


def test_a_used_up_member_limit_disables_promote_with_the_reason(
    owner, team, project, grid, client_for
):
    MemberCap.objects.create(wallet=wallet_of(team), member=owner, period="day", tier="pro",
                             credits=200)  # fmt: skip
    ids = list(grid.generations.values_list("pk", flat=True)[:1])
    body = _dialog(client_for(owner), team, ids)
    # 2K costs 134, 4K 240: only 4K is over the 200 left.
    assert body.count("disabled") == 1 and 'aria-describedby="promote-why-4K"' in body
    assert "200 credits left" in body


def test_a_full_pro_lane_disables_promote(owner, team, project, grid, client_for, settings):
    settings.LANE_MEMBER_OUTSTANDING_CAP = 1
    ids = list(grid.generations.values_list("pk", flat=True)[:2])
    body = _dialog(client_for(owner), team, ids)
    assert body.count("disabled") == 2 and "the limit is 1" in body


def test_the_standalone_promote_page_posts_as_a_plain_form(owner, team, grid, client_for):
    image = grid.generations.first()
    url = reverse("promote-confirm", args=[team.slug]) + f"?ids={image.pk}"
    page = client_for(owner).get(url).content.decode()
    assert 'class="promote-form' in page and "hx-post" not in page.split("promote-form")[0][-300:]
    assert 'hx-target="#dialog-body"' in _dialog(client_for(owner), team, [image.pk])
