"""Client review: the studio shares images, a client with no account marks them up.

The studio side is tried by owner, teammate and stranger; the client side
by an anonymous browser holding the link (and one holding a wrong one).
"""

import io
import re
import zipfile
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generation.models import Project
from studio.models import ReviewComment, ReviewEvent, ReviewItem, ReviewLink, ReviewMark
from studio.review.services import (
    ReviewRefused,
    review_link_create,
    review_link_deliver,
    review_link_revoke,
)
from tests.gallery.conftest import fund, render_all, submit

pytestmark = pytest.mark.django_db
PROMPT = "ceramic teapot on linen, quokka-7731"


@pytest.fixture
def images(team, owner):
    fund(team, owner)
    project = Project.objects.create(team=team, name="Spring", created_by=owner)
    batch = submit(team, owner, project, count=5, prompt=PROMPT, seed=77)
    render_all()
    return list(batch.generations.order_by("index"))


@pytest.fixture
def shared(team, owner, images):
    link, token = review_link_create(
        team=team, created_by=owner, title="Teapots round 1", note="Pick two, please.",
        generation_ids=[g.pk for g in images],
    )  # fmt: skip
    return link, token


def client_url(token, *parts):
    return "/r/" + token + "/" + "".join(f"{p}/" for p in parts)


def named_client(token, name="Alex"):
    browser = Client()
    assert browser.get(client_url(token)).status_code == 200
    assert browser.post(client_url(token, "name"), {"name": name}).status_code == 302
    return browser


# --- the studio shares -------------------------------------------------------------------


def test_an_owner_shares_a_selection_and_sees_the_link_once(owner, team, images, client_for):
    studio = client_for(owner)
    form = studio.get(reverse("review-new", args=[team.slug]), {"ids": [g.pk for g in images]})
    assert form.status_code == 200 and form.content.count(b'name="ids"') == 5
    response = studio.post(
        reverse("review-new", args=[team.slug]),
        {"ids": [g.pk for g in images[:3]], "title": "Round 1", "note": "Hi", "password": ""},
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    url = re.search(rb'value="(http://testserver/r/[^"]+/)"', response.content).group(1).decode()
    token = url.rsplit("/", 2)[1]
    assert len(token) >= 43  # 32 random bytes, base64: 256 bits
    link = ReviewLink.objects.get()
    assert link.token_hash == ReviewLink.hash_token(token) and token not in link.token_hash
    assert list(link.items.values_list("generation_id", flat=True)) == [g.pk for g in images[:3]]
    # The token is never shown again.
    detail = studio.get(reverse("review-detail", args=[team.slug, link.pk]))
    listing = studio.get(reverse("review-list", args=[team.slug]))
    assert token.encode() not in detail.content and token.encode() not in listing.content
    assert b"Round 1" in listing.content


def test_a_link_can_name_a_whole_grid_or_project(owner, team, images, client_for):
    studio = client_for(owner)
    batch = images[0].batch
    for source in ({"batch": batch.pk}, {"project": batch.project_id}):
        response = studio.post(reverse("review-new", args=[team.slug]), {**source, "title": "All"})
        assert response.status_code == 201
    assert [link.items.count() for link in ReviewLink.objects.all()] == [5, 5]


def test_members_may_not_share_and_strangers_see_nothing(
    owner, teammate, stranger, team, shared, client_for
):
    link, _ = shared
    urls = [
        reverse("review-list", args=[team.slug]),
        reverse("review-new", args=[team.slug]),
        reverse("review-detail", args=[team.slug, link.pk]),
        reverse("review-activity-csv", args=[team.slug, link.pk]),
    ]
    for url in urls:
        assert client_for(owner).get(url).status_code == 200, url
        assert client_for(teammate).get(url).status_code == 403, url
        assert client_for(stranger).get(url).status_code == 404, url
    for action in ("review-revoke", "review-deliver"):
        url = reverse(action, args=[team.slug, link.pk])
        assert client_for(teammate).post(url).status_code == 403
        assert client_for(stranger).post(url).status_code == 404
    with pytest.raises(ReviewRefused):
        review_link_create(team=team, created_by=teammate, title="x", generation_ids=[1])
    link.refresh_from_db()
    assert link.revoked_at is None and link.kind == "review"


def test_only_the_teams_finished_images_can_be_shared(owner, team, stranger, images):
    from generation.models import Generation

    fund(stranger.teams.get(), stranger, key="stranger")
    theirs = submit(stranger.teams.get(), stranger, None, count=1)
    render_all()
    with pytest.raises(ReviewRefused):
        review_link_create(
            team=team, created_by=owner, title="x", generation_ids=[theirs.generations.get().pk]
        )
    link, _ = review_link_create(
        team=team, created_by=owner, title="x",
        generation_ids=[images[0].pk, theirs.generations.get().pk],
    )  # fmt: skip
    assert list(link.items.values_list("generation_id", flat=True)) == [images[0].pk]
    assert Generation.objects.filter(team=team).count() == 5


# --- the client's page ---------------------------------------------------------------------


def test_the_client_page_needs_no_account_and_shows_previews_only(team, shared, images):
    link, token = shared
    browser = Client()
    page = browser.get(client_url(token))
    assert page.status_code == 200
    html = page.content.decode()
    assert team.name in html and "Teapots round 1" in html and "Pick two, please." in html
    assert page["X-Robots-Tag"].startswith("noindex")
    assert page["Referrer-Policy"] == "same-origin"
    assert '<meta name="referrer" content="same-origin">' in html
    assert '<meta name="robots" content="noindex' in html
    assert PROMPT not in html and "seed" not in html.lower()
    assert f"/t/{team.slug}/" not in html
    assert html.count('<li class="review-tile') == 5
    for position in range(1, 6):
        for kind in ("thumb", "preview"):
            response = browser.get(client_url(token, position, kind))
            assert response.status_code == 200
            data = b"".join(response.streaming_content)
            assert PROMPT.encode() not in data and b"seed" not in data
            Image.open(io.BytesIO(data)).verify()
            assert "no-cache" in response["Cache-Control"]
        # Never the original before delivery.
        assert browser.get(client_url(token, position, "original")).status_code == 404
    image_page = browser.get(client_url(token, 2))
    assert image_page.status_code == 200 and PROMPT not in image_page.content.decode()


def test_a_link_that_shows_prompts_shows_them(owner, team, images):
    _, token = review_link_create(
        team=team, created_by=owner, title="Open", generation_ids=[images[0].pk], show_prompts=True
    )
    assert PROMPT in Client().get(client_url(token, 1)).content.decode()


def test_guessed_revoked_and_expired_tokens_answer_404(owner, team, shared, images):
    link, token = shared
    browser = named_client(token)
    assert browser.get(client_url(token, 1, "preview")).status_code == 200
    assert Client().get(client_url(token[:-2] + "xx")).status_code == 404
    assert Client().get(client_url("x" * 500)).status_code == 404
    review_link_revoke(link=link)
    # The same browser, the same image it had open: gone on the next request.
    for path in (client_url(token), client_url(token, 1), client_url(token, 1, "preview")):
        assert browser.get(path).status_code == 404, path
    assert browser.post(client_url(token, 1, "mark"), {"verdict": "pick"}).status_code == 404
    assert not ReviewMark.objects.exists()

    expired, expired_token = review_link_create(
        team=team, created_by=owner, title="Old", generation_ids=[images[0].pk],
        expires_at=timezone.now() + timedelta(minutes=5),
    )  # fmt: skip
    assert Client().get(client_url(expired_token)).status_code == 200
    ReviewLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    assert Client().get(client_url(expired_token)).status_code == 404
    assert Client().get(client_url(expired_token, 1, "thumb")).status_code == 404


def test_guessing_tokens_is_rate_limited_per_address(shared):
    from studio.throttle import REVIEW_MISSES_PER_MINUTE

    browser = Client()
    statuses = [
        browser.get(client_url(f"guess-{n}")).status_code
        for n in range(REVIEW_MISSES_PER_MINUTE + 1)
    ]
    assert set(statuses[:-1]) == {404} and statuses[-1] == 429


def test_the_client_gives_a_name_once_then_picks_rejects_rates_and_comments(shared):
    link, token = shared
    browser = Client()
    page = browser.get(client_url(token)).content.decode()
    assert 'name="name"' in page and "review-mark" not in page
    refused = browser.post(client_url(token, 1, "mark"), {"verdict": "pick"})
    assert refused.status_code == 400 and not ReviewMark.objects.exists()
    browser.post(client_url(token, "name"), {"name": "  Alex   from Acme "})
    page = browser.get(client_url(token)).content.decode()
    assert "Alex from Acme" in page and 'name="name"' not in page
    for position in (2, 4):
        response = browser.post(client_url(token, position, "mark"), {"verdict": "pick"})
        assert response.status_code == 302 and response["Location"].endswith(f"#image-{position}")
    browser.post(client_url(token, 5, "mark"), {"verdict": "reject"})
    browser.post(client_url(token, 2, "mark"), {"rating": "5", "back": "image"})
    comment = browser.post(
        client_url(token, 4, "comment"),
        {"body": "Warmer light here", "x": "0.25", "y": "0.75", "back": "image"},
    )
    assert comment.status_code == 302 and comment["Location"] == client_url(token, 4)
    marks = {
        (m.item.position, m.verdict, m.rating)
        for m in ReviewMark.objects.select_related("item").filter(client_name="Alex from Acme")
    }
    assert marks == {(2, "pick", 5), (4, "pick", None), (5, "reject", None)}
    (note,) = ReviewComment.objects.all()
    assert (note.item.position, note.x, note.y) == (4, 0.25, 0.75)
    assert browser.get(client_url(token)).content.decode().count("review-tile pick") == 2
    # Pressing "pick" again clears it.
    browser.post(client_url(token, 4, "mark"), {"verdict": ""})
    assert ReviewMark.objects.get(item__position=4).verdict == ""
    kinds = sorted(ReviewEvent.objects.values_list("kind", flat=True))
    assert kinds == sorted(["view", "pick", "pick", "reject", "rating", "comment", "unmark"])


def test_bad_input_changes_nothing(shared, images, team, owner):
    link, token = shared
    browser = named_client(token)
    before = (
        ReviewMark.objects.count(),
        ReviewComment.objects.count(),
        ReviewEvent.objects.count(),
    )
    other, _ = review_link_create(
        team=team, created_by=owner, title="Other", generation_ids=[images[0].pk]
    )
    attempts = [
        # An image not in the link: its place is past the end, or another link's.
        (client_url(token, 6, "mark"), {"verdict": "pick"}, 404),
        (client_url(token, 0, "mark"), {"verdict": "pick"}, 404),
        (client_url(token, 99, "comment"), {"body": "hi"}, 404),
        (client_url(token, 1, "mark"), {"verdict": "love"}, 400),
        (client_url(token, 1, "mark"), {"rating": "6"}, 400),
        (client_url(token, 1, "mark"), {"rating": "three"}, 400),
        (client_url(token, 1, "comment"), {"body": "x" * 10_000}, 400),
        (client_url(token, 1, "comment"), {"body": "   "}, 400),
        (client_url(token, 1, "comment"), {"body": "ok", "x": "1.5", "y": "0.2"}, 400),
        (client_url(token, 1, "comment"), {"body": "ok", "x": "nan", "y": "0.2"}, 400),
        (client_url(token, 1, "comment"), {"body": "ok", "x": "0.5"}, 400),
    ]
    for url, data, status in attempts:
        response = browser.post(url, data)
        assert response.status_code == status, (url, data, response.status_code)
    long = browser.post(client_url(token, 1, "comment"), {"body": "x" * 10_000})
    assert b"at most 2,000 characters" in long.content
    after = (ReviewMark.objects.count(), ReviewComment.objects.count(), ReviewEvent.objects.count())
    assert after == before
    assert not other.items.get().marks.exists()
    # Images are addressed by place, so no number reaches another of the team's images.
    for position in (0, 6, 10**9):
        assert browser.get(client_url(token, position, "preview")).status_code == 404


def test_markup_in_names_and_comments_is_shown_as_text(owner, team, shared, client_for):
    link, token = shared
    browser = named_client(token, name="<b>Eve</b>")
    script = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    browser.post(client_url(token, 1, "comment"), {"body": script})
    for page in (
        browser.get(client_url(token, 1)),
        client_for(owner).get(reverse("review-detail", args=[team.slug, link.pk])),
    ):
        html = page.content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Eve" not in html
        assert "&lt;script&gt;alert" in html and "&lt;b&gt;Eve&lt;/b&gt;" in html


# --- passwords ------------------------------------------------------------------------------


def test_a_password_link_asks_once_per_session_and_limits_guesses(owner, team, images, settings):
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    link, token = review_link_create(
        team=team, created_by=owner, title="Secret", generation_ids=[g.pk for g in images],
        password="tea for two",
    )  # fmt: skip
    assert link.password.startswith("pbkdf2_") and "tea" not in link.password
    browser = Client()
    page = browser.get(client_url(token))
    assert page.status_code == 200 and b'type="password"' in page.content
    assert b"review-tile" not in page.content and page["X-Robots-Tag"].startswith("noindex")
    assert browser.get(client_url(token, 1, "thumb")).status_code == 404
    assert browser.get(client_url(token, 1)).status_code == 404
    for _ in range(3):
        wrong = browser.post(client_url(token, "unlock"), {"password": "coffee"})
        assert wrong.status_code == 403 and b"not right" in wrong.content
    throttled = browser.post(client_url(token, "unlock"), {"password": "tea for two"})
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    # Another address is not held back by this one's guesses.
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    assert (
        elsewhere.post(client_url(token, "unlock"), {"password": "tea for two"}).status_code == 302
    )
    assert elsewhere.get(client_url(token, 1, "thumb")).status_code == 200
    assert b"review-tile" in elsewhere.get(client_url(token)).content
    # A new password locks every session out again.
    from django.contrib.auth.hashers import make_password

    ReviewLink.objects.filter(pk=link.pk).update(password=make_password("new one"))
    assert elsewhere.get(client_url(token, 1, "thumb")).status_code == 404


# --- the studio follows the link ---------------------------------------------------------------


def test_the_studio_sees_picks_filters_them_and_promotes_them(owner, team, shared, client_for):
    link, token = shared
    browser = named_client(token)
    for position in (2, 4):
        browser.post(client_url(token, position, "mark"), {"verdict": "pick"})
    studio = client_for(owner)
    page = studio.get(reverse("review-detail", args=[team.slug, link.pk]))
    html = page.content.decode()
    assert "Client picks (2)" in html and "✓ Alex" in html
    picks = studio.get(reverse("review-detail", args=[team.slug, link.pk]), {"picks": "1"})
    assert picks.content.decode().count('class="review-tile pick"') == 2
    assert b'review-tile"' not in picks.content
    listing = studio.get(reverse("review-list", args=[team.slug])).content.decode()
    assert re.search(
        r'<td class="num">5</td>\s*<td class="num">1</td>\s*<td class="num">2</td>', listing
    )
    picked = [i.generation_id for i in link.items.filter(position__in=(2, 4))]
    action = re.search(r'action="([^"]+/selection/promote/)"', html).group(1)
    ids = re.findall(r'name="ids" value="(\d+)"', html)
    assert [int(i) for i in ids] == picked
    confirm = studio.get(action, {"ids": ids})
    assert b"Promote at 4K" in confirm.content
    promoted = studio.post(reverse("promote", args=[team.slug]), {"ids": ids, "size": "4K"})
    assert promoted.status_code == 302
    render_all("pro")
    assert review_link_deliver(link=link) == 2
    assert sorted(link.items.exclude(final=None).values_list("position", flat=True)) == [2, 4]


def test_activity_csv_is_safe_from_formulas(owner, team, shared, client_for):
    link, token = shared
    browser = named_client(token, name='=HYPERLINK("http://evil")')
    browser.post(client_url(token, 1, "mark"), {"verdict": "pick"})
    response = client_for(owner).get(reverse("review-activity-csv", args=[team.slug, link.pk]))
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    assert text.splitlines()[0] == "time,event,client,image,detail"
    assert "pick" in text and "view" in text


# --- delivery -------------------------------------------------------------------------------------


def test_a_delivery_serves_originals_without_prompts_and_enforces_its_limit(shared, images):
    link, token = shared
    browser = named_client(token)
    assert browser.post(client_url(token, "download")).status_code == 404
    review_link_deliver(link=link, download_limit=2)
    page = browser.get(client_url(token)).content.decode()
    assert "Download all" in page and "2 downloads left" in page
    response = browser.post(client_url(token, "download"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert names == [f"teapots-round-1_{n:03d}.png" for n in range(1, 6)]
    for name in names:
        data = archive.read(name)
        assert PROMPT.encode() not in data and b"parameters" not in data
        image = Image.open(io.BytesIO(data))
        assert image.size == (images[0].asset.width, images[0].asset.height)
        assert not image.text
    single = browser.get(client_url(token, 3, "original"))
    assert single.status_code == 200 and "attachment" in single["Content-Disposition"]
    b"".join(single.streaming_content)
    past = browser.post(client_url(token, "download"))
    assert past.status_code == 403 and b"download limit is reached" in past.content
    assert browser.get(client_url(token, 3, "original")).status_code == 403
    link.refresh_from_db()
    assert link.downloads == 2
    assert ReviewEvent.objects.filter(kind="download").count() == 2


def test_a_revoked_delivery_downloads_nothing(shared):
    link, token = shared
    review_link_deliver(link=link)
    browser = named_client(token)
    review_link_revoke(link=link)
    assert browser.post(client_url(token, "download")).status_code == 404
    link.refresh_from_db()
    assert link.downloads == 0


def test_items_keep_their_place_when_the_final_is_delivered(shared):
    link, _ = shared
    assert list(ReviewItem.objects.filter(link=link).values_list("position", flat=True)) == [
        1, 2, 3, 4, 5,
    ]  # fmt: skip


def test_a_dead_link_answers_the_plain_404_with_noindex(shared):
    link, token = shared
    review_link_revoke(link=link)
    response = Client().get(client_url(token))
    assert response.status_code == 404 and response["X-Robots-Tag"].startswith("noindex")
    assert b"Teapots round 1" not in response.content
    with pytest.raises(ReviewRefused):
        review_link_deliver(link=link)


def test_revalidating_an_original_already_downloaded_is_not_another_download(shared):
    link, token = shared
    review_link_deliver(link=link, download_limit=1)
    browser = named_client(token)
    first = browser.get(client_url(token, 1, "original"))
    assert first.status_code == 200
    b"".join(first.streaming_content)
    again = browser.get(client_url(token, 1, "original"), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    link.refresh_from_db()
    assert link.downloads == 1
    review_link_revoke(link=link)
    gone = browser.get(client_url(token, 1, "original"), HTTP_IF_NONE_MATCH=first["ETag"])
    assert gone.status_code == 404


def test_a_deleted_teams_links_answer_404(team, shared):
    link, token = shared
    team.deleted_at = timezone.now()
    team.save(update_fields=["deleted_at"])
    assert Client().get(client_url(token)).status_code == 404
    assert Client().get(client_url(token, 1, "thumb")).status_code == 404


def test_marks_and_comments_are_rate_limited_per_link_and_address(shared, monkeypatch):
    monkeypatch.setattr("studio.throttle.REVIEW_WRITES_PER_MINUTE", 3)
    link, token = shared
    browser = named_client(token)
    statuses = [
        browser.post(client_url(token, 1, "comment"), {"body": f"note {n}"}).status_code
        for n in range(4)
    ]
    assert statuses == [302, 302, 302, 429]
    assert ReviewComment.objects.count() == 3
    elsewhere = named_client(token)
    elsewhere.defaults["REMOTE_ADDR"] = "203.0.113.7"
    assert elsewhere.post(client_url(token, 1, "mark"), {"verdict": "pick"}).status_code == 302
