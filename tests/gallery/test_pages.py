"""The gallery's pages and actions, each tried by owner, teammate and stranger."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from billing.selectors import wallet_balance
from generation.imaging import read_metadata
from generation.models import Batch, Generation, Project, Status
from generation.selectors import to_micros

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _urls(team, project, batch, image):
    slug = team.slug
    return [
        reverse("team", args=[slug]),
        reverse("project", args=[slug, project.pk]),
        reverse("project-older", args=[slug, project.pk]),
        reverse("composer-price", args=[slug]) + "?prompt=x&tier=flash&size=1K&aspect=1:1&count=2",
        reverse("batch-poll", args=[slug, batch.pk]),
        reverse("image", args=[slug, image.pk]),
        reverse("history", args=[slug]) + "?q=teapot&starred=&tier=flash",
        reverse("promote-confirm", args=[slug]) + f"?ids={image.pk}",
        reverse("images-download", args=[slug]) + f"?ids={image.pk}",
        reverse("image-reuse", args=[slug, image.pk]),
    ]


def test_every_page_answers_owner_and_teammate_and_hides_from_stranger(
    owner, teammate, stranger, team, project, grid, client_for
):
    image = grid.generations.first()
    for url in _urls(team, project, grid, image):
        for user in (owner, teammate):
            response = client_for(user).get(url)
            assert response.status_code in (200, 286, 302), (url, user, response.status_code)
        assert client_for(stranger).get(url).status_code == 404, url


def test_state_changing_views_refuse_a_stranger_and_change_nothing(
    owner, stranger, team, project, grid, client_for
):
    image = grid.generations.first()
    slug = team.slug
    client = client_for(stranger)
    posts = [
        (reverse("project-new", args=[slug]), {"name": "Mine now"}),
        (reverse("project-rename", args=[slug, project.pk]), {"name": "Mine now"}),
        (reverse("project-archive", args=[slug, project.pk]), {"archived": "1"}),
        (reverse("batch-submit", args=[slug, project.pk]), {"prompt": "x", "tier": "flash"}),
        (reverse("batch-cancel", args=[slug, grid.pk]), {}),
        (reverse("image-star", args=[slug, image.pk]), {"starred": "1"}),
        (reverse("image-reject", args=[slug, image.pk]), {"rejected": "1"}),
        (reverse("image-rate", args=[slug, image.pk]), {"rating": "5"}),
        (reverse("promote", args=[slug]), {"ids": [image.pk], "size": "2K"}),
        (reverse("images-archive", args=[slug]), {"ids": [image.pk]}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    image.refresh_from_db()
    project.refresh_from_db()
    assert (project.name, project.archived) == ("Spring campaign", False)
    assert not image.starred and not image.archived
    assert not image.rejected and image.rating == 0
    assert Batch.objects.filter(team=team).count() == 1
    assert Project.objects.filter(team=team).count() == 1


def test_state_changing_views_need_post(owner, team, project, grid, client_for):
    image = grid.generations.first()
    client = client_for(owner)
    assert client.get(reverse("image-star", args=[team.slug, image.pk])).status_code == 405
    # The composer's address is where a refusal without JavaScript is drawn;
    # opening it again goes back to the project and submits nothing.
    again = client.get(reverse("batch-submit", args=[team.slug, project.pk]))
    assert again.status_code == 302 and Batch.objects.filter(team=team).count() == 1
    assert client.get(reverse("promote", args=[team.slug])).status_code == 405


# --- projects ------------------------------------------------------------------------


def test_projects_create_rename_archive_restore(owner, teammate, team, client_for):
    client = client_for(teammate)
    response = client.post(reverse("project-new", args=[team.slug]), {"name": "  Lookbook  "})
    project = Project.objects.get(team=team)
    assert response["Location"] == reverse("project", args=[team.slug, project.pk])
    assert project.name == "Lookbook" and project.created_by == teammate

    # A refused name comes back on the projects page (post/redirect/get), error shown once.
    refused = client.post(reverse("project-new", args=[team.slug]), {"name": " "}, follow=True)
    assert refused.redirect_chain == [(reverse("team", args=[team.slug]), 302)]
    assert "Give the project a name." in refused.content.decode()
    again = client.get(reverse("team", args=[team.slug])).content.decode()
    assert "Give the project a name." not in again
    assert Project.objects.filter(team=team).count() == 1

    url = reverse("project-rename", args=[team.slug, project.pk])
    response = client.post(url, {"name": "Lookbook SS26"}, **HTMX)
    assert "Lookbook SS26" in response.content.decode()
    home = client.get(reverse("team", args=[team.slug])).content.decode()
    assert "Lookbook SS26" in home

    client.post(reverse("project-archive", args=[team.slug, project.pk]), {"archived": "1"})
    listing = client.get(reverse("team", args=[team.slug])).content.decode()
    assert 'project-name">Lookbook SS26' not in listing
    archived = client.get(reverse("team", args=[team.slug]) + "?archived=1").content.decode()
    assert "Lookbook SS26" in archived
    client.post(reverse("project-archive", args=[team.slug, project.pk]), {"archived": "0"})
    assert not Project.objects.get(pk=project.pk).archived


# --- the composer ---------------------------------------------------------------------


def test_price_line_states_price_balance_and_limits(owner, team, project, client_for):
    from billing.services import member_cap_set

    member_cap_set(team=team, member=owner, period="month", tier="pro", credits=4600)
    url = reverse("composer-price", args=[team.slug])
    query = "?prompt=fox&tier=flash&size=1K&aspect=1:1&count=50&seed_mode=random"
    text = client_for(owner).get(url + query).content.decode()
    assert '50 × Flash 1K <span class="pixels">(1024 × 1024)</span> = 3,350 credits' in text
    assert "200,000 available" in text
    assert "Pro limit" in text and "4,600 left" in text

    text = client_for(owner).get(url + query.replace("count=50", "count=51")).content.decode()
    assert "between 1 and 50" in text


def test_submit_by_htmx_returns_the_new_grid_and_signals_credits(owner, team, project, client_for):
    url = reverse("batch-submit", args=[team.slug, project.pk])
    data = {"prompt": "linen teapot", "tier": "flash", "size": "1K", "aspect": "16:9",
            "count": "4", "seed_mode": "locked", "seed": "77"}  # fmt: skip
    response = client_for(owner).post(url, data, **HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == "credits-changed"
    batch = Batch.objects.get(team=team)
    body = response.content.decode()
    assert f'id="grid-{batch.pk}"' in body and body.count('class="tile ') == 4
    assert "0/4" in body and 'hx-trigger="every 1s"' in body
    assert [g.seed for g in batch.generations.all()] == [77, 78, 79, 80]
    assert batch.project == project and batch.seed_locked


def test_submit_errors_come_back_next_to_their_fields(owner, team, project, client_for):
    url = reverse("batch-submit", args=[team.slug, project.pk])
    data = {"prompt": "", "tier": "pro", "size": "512", "aspect": "1:8", "count": "9"}
    response = client_for(owner).post(url, data, **HTMX)
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#composer"
    body = response.content.decode()
    assert 'id="prompt-error"' in body and "Write a prompt first." in body
    assert "Pro renders at 1K, 2K, 4K." in body
    assert not Batch.objects.exists()

    # Without htmx the whole page comes back with the same errors.
    response = client_for(owner).post(url, data)
    assert response.status_code == 400 and "Write a prompt first." in response.content.decode()


def test_submit_without_enough_credits_is_402_and_holds_nothing(
    owner, teammate, team, project, client_for
):
    url = reverse("batch-submit", args=[team.slug, project.pk])
    data = {"prompt": "a castle", "tier": "pro", "size": "4K", "aspect": "1:1", "count": "8"}
    from billing.services import member_cap_set

    member_cap_set(team=team, member=teammate, period="day", tier="pro", credits=1000)
    available = wallet_balance(team)
    response = client_for(teammate).post(url, data, **HTMX)
    assert response.status_code == 402
    assert "limit" in response.content.decode()
    assert wallet_balance(team) == available and not Batch.objects.exists()


def test_use_these_settings_fills_the_composer(owner, team, project, grid, client_for):
    image = grid.generations.get(index=1)
    response = client_for(owner).get(reverse("image-reuse", args=[team.slug, image.pk]), **HTMX)
    body = response.content.decode()
    assert f'value="{image.seed}"' in body
    assert 'value="4:3" checked' in body
    assert "ceramic teapot on linen</textarea>" in body

    plain = client_for(owner).get(reverse("image-reuse", args=[team.slug, image.pk]))
    assert plain.status_code == 302 and f"from={image.pk}" in plain["Location"]
    page = client_for(owner).get(plain["Location"]).content.decode()
    assert f'value="{image.seed}"' in page


def test_reference_uploaded_on_the_spot_is_ticked(owner, team, project, client_for):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = "mia.png"
    response = client_for(owner).post(
        reverse("reference-new", args=[team.slug]),
        {"image": buffer, "reference_name": "Character: Mia"},
        **HTMX,
    )
    assert response.status_code == 200
    reference = team.references.get()
    assert reference.name == "Character: Mia"
    assert f'value="{reference.pk}" checked' in response.content.decode()

    bad = io.BytesIO(b"not an image")
    bad.name = "x.png"
    response = client_for(owner).post(
        reverse("reference-new", args=[team.slug]), {"image": bad}, **HTMX
    )
    assert response.status_code == 400 and 'class="error"' in response.content.decode()


def test_a_refused_upload_without_htmx_says_why_on_the_project_page(
    owner, team, project, client_for
):
    bad = io.BytesIO(b"not an image")
    bad.name = "x.png"
    client = client_for(owner)
    response = client.post(
        reverse("reference-new", args=[team.slug]),
        {"image": bad, "project": project.pk},
        follow=True,
    )
    assert response.status_code == 200
    assert "not an image we can read" in response.content.decode()
    assert not team.references.exists()


# --- the draft grid and its poll ---------------------------------------------------------


def test_poll_sends_only_changes_and_stops_when_the_batch_is_done(owner, team, project, client_for):
    batch = submit(team, owner, project, count=3)
    url = reverse("batch-poll", args=[team.slug, batch.pk])
    client = client_for(owner)

    first = client.get(url)
    assert first.status_code == 200
    assert first.content.decode().count('hx-swap-oob="true"') == 1 + 3  # progress + tiles
    assert "#1 in lane" in first.content.decode()

    quiet_since = to_micros(timezone.now() + timedelta(seconds=5))
    quiet = client.get(f"{url}?since={quiet_since}&place=1")
    assert quiet.status_code == 200 and 'id="tile-' not in quiet.content.decode()
    assert "HX-Trigger" not in quiet

    since = to_micros(timezone.now() - timedelta(milliseconds=1))
    render_all()
    done = client.get(f"{url}?since={since}&place=1")
    assert done.status_code == 286
    body = done.content.decode()
    assert body.count('class="tile state-succeeded') == 3
    assert "3/3" in body and "every 1s" not in body
    assert done["HX-Trigger"] == "credits-changed"


def test_project_page_shows_finished_grids_without_polling(owner, team, project, grid, client_for):
    body = client_for(owner).get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert "3/3" in body
    assert "every 1s" not in body
    assert body.count('alt="ceramic teapot on linen"') == 3
    assert 'class="tile-image ar-43"' in body


def test_failed_and_blocked_tiles_say_why(owner, team, project, client_for):
    batch = submit(team, owner, project, count=2)
    first, second = batch.generations.all()
    Generation.objects.filter(pk=first.pk).update(
        status=Status.BLOCKED, error="The provider blocked this prompt as unsafe."
    )
    Generation.objects.filter(pk=second.pk).update(
        status=Status.FAILED, error="The model could not render this request."
    )
    body = client_for(owner).get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert "The provider blocked this prompt as unsafe." in body
    assert "The model could not render this request." in body
    assert "1 failed" in body and "1 blocked" in body


def test_project_page_query_count_does_not_grow_with_images(owner, team, project, client_for):
    client = client_for(owner)
    url = reverse("project", args=[team.slug, project.pk])
    submit(team, owner, project, count=2)
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for _ in range(5):
        submit(team, owner, project, count=20)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)
    assert response.content.decode().count('class="tile ') == 3 * 20  # the newest three grids
    assert "Show older grids" in response.content.decode()
    assert len(large) == len(small), [q["sql"] for q in large.captured_queries]


def test_poll_costs_a_few_queries(owner, team, project, client_for):
    batch = submit(team, owner, project, count=50)
    client = client_for(owner)
    url = reverse("batch-poll", args=[team.slug, batch.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    view_queries = [q for q in queries.captured_queries if "django_session" not in q["sql"]
                    and 'FROM "auth_user"' not in q["sql"]]  # fmt: skip
    # membership, the batch's images, the lane position of its queued images,
    # the clients' marks on review links (which also say whether to keep asking)
    assert len(view_queries) <= 4, [q["sql"] for q in view_queries]


# --- actions ---------------------------------------------------------------------------


def test_star_toggles_and_returns_the_button(owner, teammate, team, grid, client_for):
    image = grid.generations.first()
    url = reverse("image-star", args=[team.slug, image.pk])
    response = client_for(teammate).post(url, {"starred": "1"}, **HTMX)
    assert 'aria-pressed="true"' in response.content.decode()
    image.refresh_from_db()
    assert image.starred
    client_for(owner).post(url, {"starred": "0"})
    image.refresh_from_db()
    assert not image.starred


def test_promote_shows_prices_first_then_makes_a_pro_grid(owner, team, project, grid, client_for):
    ids = list(grid.generations.values_list("pk", flat=True)[:2])
    client = client_for(owner)
    confirm = client.post(reverse("promote-confirm", args=[team.slug]), {"ids": ids}, **HTMX)
    body = confirm.content.decode()
    assert "Promote at 2K · 268 credits" in body and "Promote at 4K · 480 credits" in body
    assert not Batch.objects.filter(tier="pro").exists()

    response = client.post(
        reverse("promote", args=[team.slug]), {"ids": ids, "size": "4K"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver" + reverse("project", args=[team.slug, project.pk]),
    )  # fmt: skip
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#grids"
    assert "credits-changed" in response["HX-Trigger"]
    promotion = Batch.objects.get(tier="pro")
    assert promotion.project == project and promotion.count == 2
    assert sorted(promotion.generations.values_list("parent_id", flat=True)) == sorted(ids)


def test_promote_refuses_a_pro_image_with_a_reason(owner, team, project, grid, client_for):
    image = grid.generations.first()
    Generation.objects.filter(pk=image.pk).update(tier="pro")
    response = client_for(owner).post(
        reverse("promote", args=[team.slug]), {"ids": [image.pk], "size": "2K"}, **HTMX
    )
    assert response.status_code == 400
    assert "already Pro" in response.content.decode()


def test_archive_removes_tiles_from_the_grid(owner, team, project, grid, client_for):
    ids = list(grid.generations.values_list("pk", flat=True)[:2])
    response = client_for(owner).post(
        reverse("images-archive", args=[team.slug]), {"ids": ids}, **HTMX
    )
    body = response.content.decode()
    assert all(f'id="tile-{pk}" hx-swap-oob="delete"' in body for pk in ids)
    page = client_for(owner).get(reverse("project", args=[team.slug, project.pk])).content.decode()
    assert page.count('class="tile ') == 1


def test_zip_download_streams_originals_with_their_metadata(owner, team, grid, client_for):
    ids = list(grid.generations.values_list("pk", flat=True))
    response = client_for(owner).post(reverse("images-download", args=[team.slug]), {"ids": ids})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = [n for n in archive.namelist() if not n.startswith("manifest.")]
    assert len(names) == 3
    assert all(n.startswith("ceramic-teapot-on-linen_seed50") and n.endswith(".png") for n in names)
    meta = read_metadata(archive.read(names[0]))
    assert meta["prompt"] == "ceramic teapot on linen" and meta["seed"] == 500


def test_zip_download_ignores_another_teams_images(owner, stranger, team, grid, client_for):
    ids = list(grid.generations.values_list("pk", flat=True))
    stranger_team = stranger.teams.get()
    response = client_for(stranger).post(
        reverse("images-download", args=[stranger_team.slug]), {"ids": ids}
    )
    assert response.status_code == 400


# --- the image page, compare, history ----------------------------------------------------


def test_image_page_shows_parameters_cost_author_and_lineage(
    owner, team, project, grid, client_for
):
    from generation.services import generation_promote

    draft = grid.generations.get(index=0)
    promotion = generation_promote(team=team, member=owner, generation_ids=[draft.pk], size="2K")
    render_all("pro")
    pro = promotion.generations.get()
    body = client_for(owner).get(reverse("image", args=[team.slug, draft.pk])).content.decode()
    assert "ceramic teapot on linen" in body and "500" in body and "4:3" in body
    assert "67 credits" in body and "olivia" in body and "Offline renderer" in body
    assert f"Pro 2K #{pro.pk}" in body
    assert 'data-key="ArrowRight"' in body and 'data-key="ArrowLeft"' not in body

    body = client_for(owner).get(reverse("image", args=[team.slug, pro.pk])).content.decode()
    assert f"#{draft.pk}" in body and reverse("compare", args=[team.slug, pro.pk]) in body

    for url in (reverse("compare", args=[team.slug, pro.pk]),
                reverse("compare", args=[team.slug, draft.pk]) + "?mode=slider"):  # fmt: skip
        body = client_for(owner).get(url).content.decode()
        assert reverse("generation-image", args=[team.slug, draft.pk, "preview"]) in body
        assert reverse("generation-image", args=[team.slug, pro.pk, "preview"]) in body
    other = grid.generations.get(index=2)
    assert client_for(owner).get(reverse("compare", args=[team.slug, other.pk])).status_code == 404


def test_history_filters_and_walks_pages_with_a_cursor(
    owner, teammate, team, project, client_for, settings
):
    from generation import selectors

    submit(team, owner, project, prompt="red fox in snow", count=5)
    submit(team, teammate, project, prompt="blue whale", count=4, tier="flash", size="512")
    client = client_for(owner)
    url = reverse("history", args=[team.slug])
    assert client.get(url + "?q=FOX").content.decode().count('class="tile ') == 5
    assert client.get(url + f"?member={teammate.pk}").content.decode().count('class="tile ') == 4
    assert client.get(url + "?size=512").content.decode().count('class="tile ') == 4
    assert client.get(url + "?status=succeeded").content.decode().count('class="tile ') == 0
    today = timezone.localdate().isoformat()
    assert client.get(url + f"?from={today}&to={today}").content.decode().count('class="tile ') == 9
    assert client.get(url + "?to=2001-01-01").content.decode().count('class="tile ') == 0

    selectors.HISTORY_PER_PAGE = 4
    try:
        seen = []
        page = client.get(url)
        while True:
            body = page.content.decode()
            seen += [int(x.split('"')[0]) for x in body.split('id="tile-')[1:]]
            if "cursor=" not in body:
                break
            cursor = body.split("cursor=")[1].split('"')[0]
            page = client.get(url + f"?cursor={cursor}", **HTMX)
        assert seen == list(
            Generation.objects.filter(team=team)
            .order_by("-created", "-id")
            .values_list("pk", flat=True)
        )
    finally:
        selectors.HISTORY_PER_PAGE = 60


def test_cancel_releases_queued_images_and_returns_the_grid(
    owner, teammate, team, project, client_for
):
    # A member cancels their own grid; a teammate's is refused (tests/studio/test_roles.py).
    batch = submit(team, teammate, project, count=4)
    held = wallet_balance(team)[1]
    assert held == 4 * 67
    response = client_for(teammate).post(
        reverse("batch-cancel", args=[team.slug, batch.pk]), **HTMX
    )
    body = response.content.decode()
    assert response["HX-Trigger"] == "credits-changed"
    assert "4 canceled" in body and "Cancel queued" not in body
    assert wallet_balance(team) == (200_000, 0)
    assert set(batch.generations.values_list("status", flat=True)) == {Status.CANCELED}


def test_odd_ids_in_query_strings_are_ignored_not_a_server_error(owner, team, project, client_for):
    client = client_for(owner)
    assert client.get(reverse("history", args=[team.slug]), {"member": "²"}).status_code == 200
    page = reverse("project", args=[team.slug, project.pk])
    assert client.get(page, {"from": "9" * 25}).status_code == 200
