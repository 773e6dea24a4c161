"""The image page's edit and vary forms, its version tree, and comparing any two of its nodes."""

import pytest
from django.urls import reverse

from billing.selectors import wallet_balance
from generation.models import Batch, Generation
from generation.services import generation_edit, generation_promote, generation_vary

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(team, owner, project):
    batch = submit(team, owner, project, count=1, seed=500)
    render_all()
    return batch.generations.get()


def counts():
    return Batch.objects.count(), Generation.objects.count()


def test_the_owner_edits_from_the_image_page(owner, team, project, image, client_for):
    client = client_for(owner)
    page = client.get(reverse("image", args=[team.slug, image.pk])).content.decode()
    assert reverse("image-edit", args=[team.slug, image.pk]) in page
    assert "Edit with words" in page and "Vary subtle" in page and "Vary strong" in page

    response = client.post(
        reverse("image-edit", args=[team.slug, image.pk]),
        {"instructions": "make the light warmer\n\nadd a second cup\n", "tier": "flash"},
    )
    batch = Batch.objects.get(kind="edit")
    assert response.status_code == 302
    assert response["Location"] == reverse("project", args=[team.slug, project.pk]) + (
        f"#grid-{batch.pk}"
    )
    assert list(batch.generations.values_list("instruction", flat=True)) == [
        "make the light warmer",
        "add a second cup",
    ]


def test_a_teammate_varies_and_a_stranger_gets_404(teammate, stranger, team, image, client_for):
    url = reverse("image-vary", args=[team.slug, image.pk])
    response = client_for(teammate).post(url, {"strength": "strong", "count": "2"})
    assert response.status_code == 302
    batch = Batch.objects.get(kind="variation")
    assert (batch.member, batch.count, batch.strength) == (teammate, 2, "strong")

    before = counts()
    for path in (url, reverse("image-edit", args=[team.slug, image.pk])):
        answer = client_for(stranger).post(path, {"strength": "subtle", "instructions": "x"})
        assert answer.status_code == 404
    assert counts() == before


def test_a_refused_edit_says_why_on_the_page_and_makes_nothing(owner, team, image, client_for):
    before, held = counts(), wallet_balance(team)
    response = client_for(owner).post(
        reverse("image-edit", args=[team.slug, image.pk]), {"instructions": "x" * 10_001}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "the limit is 10,000" in body and 'role="alert"' in body
    assert counts() == before and wallet_balance(team) == held


def test_the_version_tree_shows_each_edge_and_compares_any_two(owner, team, image, client_for):
    first = generation_edit(team=team, member=owner, source=image.pk, instructions=["make it blue"])
    render_all()
    edit = first.generations.get()
    second = generation_edit(team=team, member=owner, source=edit.pk, instructions=["add a moon"])
    render_all()
    chained = second.generations.get()
    generation_vary(team=team, member=owner, source=image.pk, strength="subtle", count=1)
    render_all()
    pro = generation_promote(team=team, member=owner, generation_ids=[chained.pk], size="2K")
    render_all("pro")
    pro_image = pro.generations.get()

    client = client_for(owner)
    page = client.get(reverse("image", args=[team.slug, chained.pk])).content.decode()
    assert "Version tree" in page
    assert page.count("data-tree-node=") == 5
    assert "“make it blue”" in page and "“add a moon”" in page and "subtle variation" in page
    assert f'Edit 2 of <a href="{reverse("image", args=[team.slug, edit.pk])}"' in page
    compare = reverse("compare", args=[team.slug, chained.pk]) + f"?with={image.pk}"
    assert compare in page

    body = client.get(compare).content.decode()
    assert f"Compare #{image.pk} and #{chained.pk}" in body
    assert reverse("generation-image", args=[team.slug, image.pk, "preview"]) in body
    assert "“add a moon”" in body
    slider = client.get(compare + "&mode=slider")
    assert slider.status_code == 200 and f"with={image.pk}&amp;mode=side" in slider.content.decode()

    # The Pro render of the chain's last edit hangs under it, and compares with the draft.
    body = client.get(
        reverse("compare", args=[team.slug, pro_image.pk]) + f"?with={image.pk}"
    ).content.decode()
    assert reverse("generation-image", args=[team.slug, pro_image.pk, "preview"]) in body


def test_compare_refuses_images_of_another_tree_or_team(owner, stranger, team, project, image,
                                                        client_for):  # fmt: skip
    other = submit(team, owner, project, count=1, seed=9)
    render_all()
    unrelated = other.generations.get()
    client = client_for(owner)
    for query in (f"?with={unrelated.pk}", "?with=abc", "?with=", f"?with={image.pk}"):
        url = reverse("compare", args=[team.slug, image.pk]) + query
        assert client.get(url).status_code == 404, query
    url = reverse("compare", args=[team.slug, image.pk]) + f"?with={image.pk}"
    assert client_for(stranger).get(url).status_code == 404


def test_a_chain_at_its_limit_offers_no_edit_form(owner, team, image, client_for, settings):
    settings.EDIT_CHAIN_MAX_TURNS = 1
    batch = generation_edit(team=team, member=owner, source=image.pk, instructions=["red"])
    render_all()
    edit = batch.generations.get()
    page = client_for(owner).get(reverse("image", args=[team.slug, edit.pk])).content.decode()
    assert "the most one conversation keeps (1)" in page
    assert reverse("image-edit", args=[team.slug, edit.pk]) not in page
    assert reverse("image-vary", args=[team.slug, edit.pk]) in page


def test_an_edit_grid_names_its_source_on_the_project_page(owner, team, project, image,
                                                           client_for):  # fmt: skip
    generation_edit(team=team, member=owner, source=image.pk, instructions=["red", "blue"])
    generation_vary(team=team, member=owner, source=image.pk, strength="strong", count=1)
    page = client_for(owner).get(reverse("project", args=[team.slug, project.pk])).content
    page = page.decode()
    assert f"edits of #{image.pk}" in page and f"strong variations of #{image.pk}" in page
    assert reverse("image", args=[team.slug, image.pk]) in page


def test_the_price_lines_say_what_an_edit_and_a_variation_cost(owner, team, image, client_for):
    page = client_for(owner).get(reverse("image", args=[team.slug, image.pk])).content.decode()
    assert "Flash 1K 67 credits · Pro 1K 134 credits" in page
    assert "4 × Flash 1K = 268 credits" in page
