"""Finding an image again: words in any order, a project, newest/oldest/starred."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generation import selectors
from generation.models import Generation, Project

from .conftest import submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _ids(body: str) -> list[int]:
    return [int(x.split('"')[0]) for x in body.split('id="tile-')[1:]]


def _walk(client, url: str, query: dict) -> list[int]:
    """Every page of a history query, following its cursor."""
    seen, page = [], client.get(url, query)
    while True:
        body = page.content.decode()
        seen += _ids(body)
        if "cursor=" not in body:
            return seen
        cursor = body.split("cursor=")[1].split('"')[0]
        page = client.get(url, {**query, "cursor": cursor}, **HTMX)


def test_every_word_in_any_order_and_case(owner, teammate, team, project, client_for):
    submit(team, owner, project, prompt="Tall grass field at golden hour", count=2)
    submit(team, owner, project, prompt="golden retriever on a beach", count=1)
    submit(team, owner, project, prompt="grass texture, macro", count=1)
    url = reverse("history", args=[team.slug])
    for client in (client_for(owner), client_for(teammate)):
        body = client.get(url, {"q": "grass golden"}).content.decode()
        assert body.count('class="tile ') == 2
        assert len(_ids(client.get(url, {"q": "  GOLDEN   Hour "}).content.decode())) == 2
        assert len(_ids(client.get(url, {"q": "golden"}).content.decode())) == 3
        assert not _ids(client.get(url, {"q": "grass sunset"}).content.decode())


def test_a_stranger_finds_nothing_of_the_team(owner, stranger, team, project, client_for):
    submit(team, owner, project, prompt="secret product shot", count=1)
    other = stranger.teams.get()
    body = client_for(stranger).get(reverse("history", args=[other.slug]), {"q": "secret"})
    assert not _ids(body.content.decode())
    assert client_for(stranger).get(reverse("history", args=[team.slug])).status_code == 404


def test_history_tiles_show_prompt_tier_size_and_date(owner, team, project, client_for):
    submit(team, owner, project, prompt="linen teapot, window light", count=1, size="512")
    body = client_for(owner).get(reverse("history", args=[team.slug])).content.decode()
    caption = body.split('class="history-caption"')[1].split("</p>")[0]
    assert "linen teapot, window light" in caption and "Flash 512" in caption
    assert timezone.localdate().strftime("%Y") in caption


def test_filter_by_project(owner, team, project, client_for):
    elsewhere = Project.objects.create(team=team, name="Lookbook", created_by=owner)
    submit(team, owner, project, prompt="fox", count=2)
    submit(team, owner, elsewhere, prompt="fox", count=3)
    url = reverse("history", args=[team.slug])
    client = client_for(owner)
    assert len(_ids(client.get(url, {"project": elsewhere.pk}).content.decode())) == 3
    assert len(_ids(client.get(url, {"project": project.pk, "q": "fox"}).content.decode())) == 2


@pytest.mark.parametrize("sort", ["newest", "oldest", "starred"])
def test_each_sort_walks_every_image_once_in_order(owner, team, project, client_for, sort):
    batch = submit(team, owner, project, prompt="fox", count=9)
    rows = list(batch.generations.order_by("index"))
    start = timezone.now() - timedelta(hours=1)
    for i, row in enumerate(rows):
        # Two images share a timestamp, so the id breaks the tie.
        row.created = start + timedelta(minutes=i // 2)
        row.starred = i % 3 == 0
        row.save(update_fields=["created", "starred"])
    order = {
        "newest": ("-created", "-id"),
        "oldest": ("created", "id"),
        "starred": ("-starred", "-created", "-id"),
    }[sort]
    expected = list(Generation.objects.order_by(*order).values_list("pk", flat=True))
    selectors.HISTORY_PER_PAGE = 2
    try:
        seen = _walk(client_for(owner), reverse("history", args=[team.slug]), {"sort": sort})
    finally:
        selectors.HISTORY_PER_PAGE = 60
    assert seen == expected
