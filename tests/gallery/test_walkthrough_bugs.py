"""Bugs a first walkthrough found, each as a person meets it."""

import pytest
from django.urls import reverse

from generation.models import Batch, Generation
from studio.models import Membership, Role

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _composer(**fields):
    return {"prompt": "linen teapot", "tier": "flash", "size": "1K", "aspect": "1:1",
            "count": "2", "seed_mode": "random", "seed": "", **fields}  # fmt: skip


def test_locked_with_no_seed_asks_for_one_instead_of_drawing_at_random(
    owner, team, project, client_for
):
    client = client_for(owner)
    url = reverse("batch-submit", args=[team.slug, project.pk])
    response = client.post(url, _composer(seed_mode="locked", seed=" "), **HTMX)
    assert response.status_code == 400
    assert "Enter the seed to lock" in response.content.decode()
    assert not Batch.objects.exists()
    price = client.get(reverse("composer-price", args=[team.slug]), _composer(seed_mode="locked"))
    assert "Enter the seed to lock" in price.content.decode()
    # A random seed needs none, and a locked one with a seed is kept.
    assert client.post(url, _composer(), **HTMX).status_code == 200
    assert client.post(url, _composer(seed_mode="locked", seed="41"), **HTMX).status_code == 200
    assert Batch.objects.filter(seed_locked=True, base_seed=41).exists()


def test_the_price_line_counts_what_the_cache_will_serve(owner, team, project, client_for):
    submit(team, owner, project, seed=900, count=2, aspect="1:1", prompt="linen teapot")
    render_all()
    url = reverse("composer-price", args=[team.slug])
    client = client_for(owner)
    repeat = client.get(url, _composer(seed_mode="locked", seed="900")).content.decode()
    assert (
        '2 × Flash 1K <span class="pixels">(1024 × 1024)</span> = 0 credits' in repeat
        and "all 2 from the cache" in repeat
    )
    # One of three is new: the line charges exactly that one (67 credits at 1K).
    more = client.get(url, _composer(seed_mode="locked", seed="900", count="3")).content.decode()
    assert (
        '3 × Flash 1K <span class="pixels">(1024 × 1024)</span> = 67 credits' in more
        and "2 of 3 from the cache" in more
    )
    fresh = _composer(seed_mode="locked", seed="900", fresh="1")
    assert (
        '2 × Flash 1K <span class="pixels">(1024 × 1024)</span> = 134 credits'
        in client.get(url, fresh).content.decode()
    )
    # And the hold agrees with the line.
    before = Generation.objects.count()
    client.post(reverse("batch-submit", args=[team.slug, project.pk]),
                _composer(seed_mode="locked", seed="900"), **HTMX)  # fmt: skip
    assert Batch.objects.latest("id").credits_quoted == 0
    assert Generation.objects.count() == before + 2


def test_members_are_listed_owner_first(owner, team, client_for):
    from tests.conftest import make_user

    for name, role in (("aaron", Role.MEMBER), ("zoe", Role.ADMIN)):
        Membership.objects.create(team=team, user=make_user(name), role=role)
    page = client_for(owner).get(reverse("team-members", args=[team.slug])).content.decode()
    assert page.index("olivia") < page.index("zoe") < page.index("aaron")


def test_one_image_is_one_image_not_one_images(owner, team, project, client_for):
    submit(team, owner, project, seed=5, count=1)
    render_all()
    client = client_for(owner)
    usage = client.get(reverse("billing-usage", args=[team.slug])).content.decode()
    billing = client.get(reverse("billing", args=[team.slug])).content.decode()
    for page in (usage, billing):
        assert "1 images" not in page and "1 image" in page
    image = Generation.objects.get()
    response = client.post(reverse("images-archive", args=[team.slug]), {"ids": [image.pk]})
    messages = client.get(response["Location"]).content.decode()
    assert "1 image archived" in messages
    download = client.get(reverse("images-download", args=[team.slug]), {"ids": [image.pk]})
    assert "_1-image_" in download["Content-Disposition"]


def test_the_page_follows_the_systems_light_or_dark_preference(client_for, owner, team):
    page = client_for(owner).get(reverse("team", args=[team.slug])).content.decode()
    # No theme is forced on the page: the stylesheet reads prefers-color-scheme
    # until the toggle stores an explicit choice.
    assert 'data-theme="dark"' not in page.split(">", 2)[1]
    from django.contrib.staticfiles import finders

    css = open(finders.find("css/studio.css")).read()
    assert "@media (prefers-color-scheme: light)" in css
    assert ":root:not([data-theme])" in css and '[data-theme="light"]' in css


def test_archiving_a_whole_grid_removes_its_card(owner, team, project, grid, client_for):
    kept = submit(team, owner, project, seed=1, count=1)
    render_all()
    ids = list(grid.generations.values_list("pk", flat=True))
    client = client_for(owner)
    response = client.post(reverse("images-archive", args=[team.slug]), {"ids": ids}, **HTMX)
    assert f'id="grid-{grid.pk}" hx-swap-oob="delete"' in response.content.decode()
    assert f'id="grid-{kept.pk}"' not in response.content.decode()
    page = client.get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert f'id="grid-{grid.pk}"' not in page and f'id="grid-{kept.pk}"' in page


def test_a_refusal_without_javascript_keeps_the_form_and_its_address_leads_home(
    owner, stranger, team, project, client_for
):
    client = client_for(owner)
    url = reverse("batch-submit", args=[team.slug, project.pk])
    refused = client.post(url, _composer(seed_mode="locked"))  # no HX-Request: a plain form post
    assert refused.status_code == 400
    assert "Enter the seed to lock" in refused.content.decode()
    assert "linen teapot" in refused.content.decode()
    assert not Batch.objects.exists()
    # Opening that address again (a reload that is not a re-post) goes back to the project.
    again = client.get(url)
    assert again.status_code == 302
    assert again["Location"] == reverse("project", args=[team.slug, project.pk])
    assert client_for(stranger).get(url).status_code == 404
