"""The clients' marks in the studio's own grid: badges, the "Client picks" filter, the
live poll, comments in the viewer, watermarked previews, and a delivery back to review.

Every new page is tried by owner, teammate and stranger.
"""

import io
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generation.models import Project
from generation.selectors import to_micros
from studio.models import ReviewEvent, ReviewLink
from studio.review.services import review_link_create, review_link_deliver, review_link_revoke
from tests.gallery.conftest import fund, render_all, submit

pytestmark = pytest.mark.django_db
STOP_POLLING = 286


@pytest.fixture
def project(team, owner):
    fund(team, owner)
    return Project.objects.create(team=team, name="Spring", created_by=owner)


@pytest.fixture
def images(team, owner, project):
    batch = submit(team, owner, project, count=5, prompt="teapot on linen", seed=77)
    render_all()
    return list(batch.generations.order_by("index"))


def share(team, owner, generations, **options):
    return review_link_create(
        team=team,
        created_by=owner,
        title=options.pop("title", "Round 1"),
        generation_ids=[g.pk for g in generations],
        **options,
    )


def client_url(token, *parts):
    return "/r/" + token + "/" + "".join(f"{p}/" for p in parts)


def reviewer(token, name):
    browser = Client()
    browser.get(client_url(token))
    browser.post(client_url(token, "name"), {"name": name})
    return browser


def tile_html(html: str, pk: int) -> str:
    match = re.search(rf'<figure[^>]* id="tile-{pk}".*?</figure>', html, re.S)
    assert match, pk
    return match.group(0)


def badge(html: str, pk: int) -> str:
    match = re.search(r'<span class="tile-client".*?</span></span>', tile_html(html, pk), re.S)
    return match.group(0) if match else ""


# --- badges ---------------------------------------------------------------------------------


def test_tiles_show_what_clients_did_over_every_link(owner, team, project, images, client_for):
    _, first = share(team, owner, images)
    _, second = share(team, owner, images[:2], title="Round 2")
    alex, sam = reviewer(first, "Alex"), reviewer(second, "Sam")
    alex.post(client_url(first, 1, "mark"), {"verdict": "pick"})
    sam.post(client_url(second, 1, "mark"), {"verdict": "pick"})
    alex.post(client_url(first, 2, "mark"), {"verdict": "reject"})
    alex.post(client_url(first, 2, "mark"), {"rating": "4"})
    sam.post(client_url(second, 2, "mark"), {"rating": "5"})
    alex.post(client_url(first, 3, "comment"), {"body": "Warmer?"})
    alex.post(client_url(first, 3, "comment"), {"body": "And brighter", "x": ".5", "y": ".5"})

    html = client_for(owner).get(reverse("project", args=[team.slug, project.pk])).content.decode()
    one, two, three = (
        badge(html, images[0].pk),
        badge(html, images[1].pk),
        badge(html, images[2].pk),
    )
    assert "✓ 2" in one and "picked by 2 clients" in one
    assert "✕" in two and "4.5★" in two and "rated 4.5 of 5" in two and "✓" not in two
    assert "✎ 2" in three and "2 comments" in three
    assert badge(html, images[3].pk) == "" and badge(html, images[4].pk) == ""
    # One pick shows no count.
    alex.post(client_url(first, 4, "mark"), {"verdict": "pick"})
    html = client_for(owner).get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert re.search(r'class="client-pick" aria-hidden="true">✓</span>', badge(html, images[3].pk))
    # Badges add no tab stop: the tile's link stays its only one, and describes them.
    for pk in (images[0].pk, images[2].pk):
        marks = badge(html, pk)
        assert not re.search(r"<(a|button|input|select|textarea)\b|tabindex", marks)
        assert f'aria-describedby="client-{pk}"' in tile_html(html, pk)
        assert len(re.findall(r"<a\b(?![^>]*tabindex=\"-1\")", tile_html(html, pk))) == 1


def test_teammates_see_the_badges_strangers_see_nothing(
    owner, teammate, stranger, team, project, images, client_for
):
    _, token = share(team, owner, images)
    reviewer(token, "Alex").post(client_url(token, 1, "mark"), {"verdict": "pick"})
    url = reverse("project", args=[team.slug, project.pk])
    assert "picked by 1 client" in client_for(owner).get(url).content.decode()
    assert "picked by 1 client" in client_for(teammate).get(url).content.decode()
    assert client_for(stranger).get(url).status_code == 404


def test_a_page_of_tiles_costs_the_same_queries_however_many_marks(
    owner, team, project, images, client_for
):
    studio = client_for(owner)
    project_url = reverse("project", args=[team.slug, project.pk])
    history_url = reverse("history", args=[team.slug])
    _, token = share(team, owner, images[:1])
    reviewer(token, "Alex").post(client_url(token, 1, "mark"), {"verdict": "pick"})
    studio.get(project_url)  # warm the lane-pace and session caches

    def queries(url, **params):
        with CaptureQueriesContext(connection) as captured:
            assert studio.get(url, params).status_code == 200
        return len(captured)

    few = (queries(project_url), queries(history_url), queries(history_url, picks="any"))
    # More grids, more links, more clients, more marks and comments on more images.
    submit(team, owner, project, count=4, seed=5)
    render_all()
    everything = list(project.batches.all().values_list("generations__pk", flat=True))
    for n in range(3):
        _, token = review_link_create(
            team=team, created_by=owner, title=f"Link {n}", generation_ids=everything
        )
        for name in ("Alex", "Sam"):
            browser = reviewer(token, name)
            for position in range(1, 8):
                browser.post(client_url(token, position, "mark"), {"verdict": "pick"})
                browser.post(client_url(token, position, "comment"), {"body": "hm"})
    many = (queries(project_url), queries(history_url), queries(history_url, picks="any"))
    assert many == few, (few, many)


# --- the "Client picks" filter ----------------------------------------------------------------


def test_the_client_picks_filter_shows_exactly_the_picks_and_promotes_them(
    owner, teammate, stranger, team, images, client_for
):
    first_link, first = share(team, owner, images)
    second_link, second = share(team, owner, images, title="Round 2")
    reviewer(first, "Alex").post(client_url(first, 2, "mark"), {"verdict": "pick"})
    reviewer(first, "Alex").post(client_url(first, 3, "mark"), {"verdict": "reject"})
    reviewer(second, "Sam").post(client_url(second, 4, "mark"), {"verdict": "pick"})
    url = reverse("history", args=[team.slug])
    for person in (owner, teammate):
        page = client_for(person).get(url, {"picks": "any"})
        html = page.content.decode()
        assert set(map(int, re.findall(r'id="tile-(\d+)"', html))) == {images[1].pk, images[3].pk}
        assert '<option value="any" selected>' in html  # the filter is in the URL's state
        assert "Promote client picks to Pro…" in html
    only_first = client_for(owner).get(url, {"picks": first_link.pk}).content.decode()
    assert set(map(int, re.findall(r'id="tile-(\d+)"', only_first))) == {images[1].pk}
    assert f'<option value="{first_link.pk}" selected>' in only_first
    # Combined with the other filters like any of them.
    assert (
        'id="tile-'
        not in client_for(owner).get(url, {"picks": "any", "starred": "1"}).content.decode()
    )
    # The button goes through the usual promote page, with its prices.
    ids = re.findall(r'name="ids" value="(\d+)"', only_first.split("client-picks-bar")[1])
    assert list(map(int, ids))[:1] == [images[1].pk]
    confirm = client_for(owner).get(reverse("promote-confirm", args=[team.slug]), {"ids": ids[:1]})
    assert confirm.status_code == 200 and re.search(
        rb"Promote at 4K \xc2\xb7 [\d,]+ credits", confirm.content
    )
    assert client_for(stranger).get(url, {"picks": "any"}).status_code == 404


def test_a_picks_filter_naming_no_link_of_the_team_is_refused_in_words(
    owner, team, images, stranger, client_for
):
    fund(stranger.teams.get(), stranger, key="stranger")
    theirs = submit(stranger.teams.get(), stranger, None, count=1)
    render_all()
    other_link, _ = review_link_create(
        team=stranger.teams.get(), created_by=stranger, title="Theirs",
        generation_ids=[theirs.generations.get().pk],
    )  # fmt: skip
    url = reverse("history", args=[team.slug])
    for value in ("abc", str(other_link.pk), "999999"):
        page = client_for(owner).get(url, {"picks": value})
        assert page.status_code == 400
        assert b"Client picks: choose one of the team&#x27;s review links." in page.content
        assert b'id="tile-' not in page.content and b"Theirs" not in page.content


# --- live: the grid's own poll --------------------------------------------------------------


def poll(studio, team, batch_id, since):
    return studio.get(reverse("batch-poll", args=[team.slug, batch_id]), {"since": since})


def test_a_finished_grid_on_a_live_link_keeps_polling_for_the_clients_marks(
    owner, teammate, stranger, team, project, images, client_for
):
    studio = client_for(owner)
    batch_id = images[0].batch_id
    page = studio.get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert 'hx-trigger="every' not in page  # a finished grid nobody reviews asks nothing
    assert poll(studio, team, batch_id, to_micros(images[0].changed_at)).status_code == STOP_POLLING

    link, token = share(team, owner, images)
    page = studio.get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert 'hx-trigger="every 5s"' in page
    assert re.search(r"poll/\?since=(\d+)", page)
    # Later than the tiles' last change (the page's own `since` reaches back a second).
    since = to_micros(timezone.now())
    quiet = poll(studio, team, batch_id, since)
    assert quiet.status_code == 200 and b"<figure" not in quiet.content
    reviewer(token, "Alex").post(client_url(token, 2, "mark"), {"verdict": "pick"})
    answer = poll(studio, team, batch_id, since)
    assert answer.status_code == 200 and b'hx-trigger="every 5s"' in answer.content
    html = answer.content.decode()
    assert re.findall(r'id="tile-(\d+)"', html) == [str(images[1].pk)]
    assert 'hx-swap-oob="true"' in tile_html(html, images[1].pk)
    assert "picked by 1 client" in badge(html, images[1].pk)
    # The tile's version moved with the mark, so the browser swaps it in.
    before = re.search(r'data-version="([^"]+)"', tile_html(page, images[1].pk)).group(1)
    after = re.search(r'data-version="([^"]+)"', tile_html(html, images[1].pk)).group(1)
    assert before != after
    # A teammate's grid gets the same; a stranger gets nothing.
    theirs = poll(client_for(teammate), team, batch_id, since).content.decode()
    assert "picked by 1 client" in badge(theirs, images[1].pk)
    assert poll(client_for(stranger), team, batch_id, since).status_code == 404
    review_link_revoke(link=link)
    assert poll(studio, team, batch_id, since).status_code == STOP_POLLING


# --- comments in the viewer -------------------------------------------------------------------


def test_the_viewer_gets_the_clients_comments_as_escaped_text(
    owner, teammate, stranger, team, images, client_for
):
    _, token = share(team, owner, images, title="Round <1>")
    browser = reviewer(token, "<b>Eve</b>")
    browser.post(client_url(token, 3, "comment"), {"body": "Plain one"})
    browser.post(
        client_url(token, 3, "comment"),
        {"body": '<script>alert("x")</script> warmer', "x": "0.25", "y": "0.75"},
    )
    url = reverse("review-image-comments", args=[team.slug, images[2].pk])
    for person in (owner, teammate):
        page = client_for(person).get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "Client comments (2)" in html and "Plain one" in html
        assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;Eve" in html
        assert "Round &lt;1&gt;" in html
        assert re.search(r'class="viewer-pin" style="left: 25.0%; top: 75.0%"[^>]*>2<', html)
    assert client_for(stranger).get(url).status_code == 404
    # The image page, the viewer's fallback without scripts, lists them in words.
    page = client_for(teammate).get(reverse("image", args=[team.slug, images[2].pk]))
    html = page.content.decode()
    assert "Client comments (2)" in html and "pinned at 25% across, 75% down" in html
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    assert "viewer-pins" not in html
    none = client_for(owner).get(reverse("review-image-comments", args=[team.slug, images[0].pk]))
    assert b"No client comments." in none.content
    # Another team's image, or none at all, is a 404 like any other.
    assert (
        client_for(owner).get(reverse("review-image-comments", args=[team.slug, 10**9])).status_code
        == 404
    )


# --- watermarks ---------------------------------------------------------------------------------


def read(response) -> bytes:
    return b"".join(response.streaming_content)


def test_previews_carry_the_team_name_only_when_the_link_asks(owner, team, images, settings):
    plain_link, plain = share(team, owner, images[:1])
    marked_link, marked = share(team, owner, images[:1], watermark=True)
    assert (plain_link.watermark, marked_link.watermark) == (False, True)
    asset = images[0].asset
    for kind, stored in (("preview", asset.preview), ("thumb", asset.thumbnail)):
        plain_bytes = read(Client().get(client_url(plain, 1, kind)))
        response = Client().get(client_url(marked, 1, kind))
        marked_bytes = read(response)
        assert response["Content-Type"] == "image/webp" and "no-cache" in response["Cache-Control"]
        with stored.open("rb") as handle:
            original = handle.read()
        assert plain_bytes == original or kind == "preview"  # a 1K preview is its stripped original
        watermarked = Image.open(io.BytesIO(marked_bytes))
        clean = Image.open(io.BytesIO(plain_bytes)).convert("RGB")
        assert watermarked.size == clean.size
        # The text changes a good part of the picture, faintly.
        pixels = zip(watermarked.convert("L").tobytes(), clean.convert("L").tobytes(), strict=True)
        diff = sum(1 for a, b in pixels if abs(a - b) > 12)
        assert diff > watermarked.width * watermarked.height * 0.02
        # Asked again, the same stored copy: same ETag, and a 304 for the browser that has it.
        again = Client().get(client_url(marked, 1, kind), HTTP_IF_NONE_MATCH=response["ETag"])
        assert again.status_code == 304
    # A delivery serves the finals untouched.
    review_link_deliver(link=marked_link)
    final = read(Client().get(client_url(marked, 1, "original")))
    assert Image.open(io.BytesIO(final)).format == "PNG"


def test_the_share_form_offers_the_watermark_and_keeps_the_choice(owner, team, images, client_for):
    studio = client_for(owner)
    url = reverse("review-new", args=[team.slug])
    form = studio.get(url, {"ids": [images[0].pk]}).content.decode()
    assert re.search(r'name="watermark" value="1" checked', form) and team.name in form
    studio.post(url, {"ids": [images[0].pk], "title": "With", "watermark": "1"})
    studio.post(url, {"ids": [images[0].pk], "title": "Without"})
    assert dict(ReviewLink.objects.values_list("title", "watermark")) == {
        "With": True,
        "Without": False,
    }
    refused = studio.post(url, {"ids": [images[0].pk], "title": " "}).content.decode()
    assert not re.search(r'name="watermark" value="1" checked', refused)


# --- a delivery back to review ----------------------------------------------------------------


def test_a_delivery_switches_back_to_review(owner, teammate, stranger, team, images, client_for):
    link, token = share(team, owner, images[:2])
    studio = client_for(owner)
    detail = reverse("review-detail", args=[team.slug, link.pk])
    reopen = reverse("review-reopen", args=[team.slug, link.pk])
    studio.post(reverse("review-deliver", args=[team.slug, link.pk]))
    browser = reviewer(token, "Alex")
    assert browser.get(client_url(token, 1, "original")).status_code == 200
    assert b"Switch back to review" in studio.get(detail).content
    assert client_for(teammate).post(reopen).status_code == 403
    assert client_for(stranger).post(reopen).status_code == 404
    link.refresh_from_db()
    assert link.kind == "delivery"

    response = studio.post(reopen, follow=True)
    assert b"is a review again" in response.content
    link.refresh_from_db()
    assert link.kind == "review"
    assert browser.get(client_url(token, 1, "original")).status_code == 404
    assert browser.get(client_url(token, 1, "preview")).status_code == 200
    assert browser.post(client_url(token, "download")).status_code == 404
    page = browser.get(client_url(token)).content.decode()
    assert "Download all" not in page
    events = list(ReviewEvent.objects.filter(link=link).values_list("kind", "detail"))
    assert ("deliver", f"by {owner.username}") in events
    assert ("reopen", f"by {owner.username}") in events
    assert "Switched back to review" in studio.get(detail).content.decode()
    # Again: nothing to switch, nothing recorded twice.
    studio.post(reopen)
    assert ReviewEvent.objects.filter(link=link, kind="reopen").count() == 1
    review_link_revoke(link=link)
    studio.post(reopen)
    assert ReviewEvent.objects.filter(link=link, kind="reopen").count() == 1
