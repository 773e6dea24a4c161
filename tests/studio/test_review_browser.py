"""Client review in a real browser: the studio and a client on a phone, two contexts.

The studio shares five drafts; the client, with no account, picks two and
comments on one; the studio sees the picks appear on the link's open page,
promotes them to Pro 4K, switches the link to delivery; the client downloads
the ZIP of finals; revoking the link makes the client's next request a 404.
"""

import re
import zipfile

import pytest

from generation.models import Generation, Project
from studio.models import ReviewComment, ReviewLink, ReviewMark
from tests.conftest import screenshot_path, sign_in
from tests.gallery.conftest import fund, render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_share_pick_comment_promote_deliver_revoke(chromium_browser, live_server, owner, team):
    fund(team, owner, key="review-browser")
    project = Project.objects.create(team=team, name="Teapots", created_by=owner)
    batch = submit(team, owner, project, count=5, prompt="ceramic teapot, secret-prompt-9", seed=9)
    render_all()
    drafts = list(batch.generations.order_by("index"))

    studio_context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    client_context = chromium_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    try:
        studio = studio_context.new_page()
        studio.set_default_timeout(20_000)
        studio.base_url = live_server.url
        sign_in(studio, owner.username)

        # The studio selects the five drafts and shares them.
        studio.goto(f"{live_server.url}/t/{team.slug}/projects/{project.pk}/")
        for draft in drafts:
            studio.locator(f"#tile-{draft.pk} input[data-pick]").check(force=True)
        studio.get_by_role("button", name="Share for review…").click()
        studio.wait_for_url(re.compile(r"/review/new/$"))
        studio.fill("input[name=title]", "Teapots, first look")
        studio.fill("textarea[name=note]", "Pick your two favourites.")
        studio.get_by_role("button", name="Create link").click()
        url = studio.locator("[data-review-url]").input_value()
        assert re.fullmatch(rf"{re.escape(live_server.url)}/r/[\w-]{{43}}/", url)
        link = ReviewLink.objects.get()
        assert link.items.count() == 5
        # The studio keeps the link's page open while the client works.
        studio.get_by_role("link", name="Follow this link's picks and comments").click()
        studio.get_by_role("link", name="Client picks (0)").wait_for()
        studio.evaluate("window.notReloaded = true")

        # The client, on a phone, with no account.
        client = client_context.new_page()
        client.set_default_timeout(20_000)
        response = client.goto(url)
        assert response.status == 200 and response.headers["x-robots-tag"].startswith("noindex")
        assert team.name in client.locator(".review-header").inner_text()
        assert "secret-prompt-9" not in client.content()
        client.fill("input[name=name]", "Alex from Acme")
        client.get_by_role("button", name="Start reviewing").click()
        client.locator(".review-who", has_text="Alex from Acme").wait_for()
        # Nothing wider than the phone.
        assert client.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        client.wait_for_function(
            "() => [...document.querySelectorAll('.review-tile img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        for position in (2, 4):
            tile = client.locator(f"#image-{position}")
            tile.get_by_role("button", name="✓ Pick").click()
            client.locator(f"#image-{position}.pick").wait_for()

        # The lightbox: open image 4, pin a comment on it.
        client.locator("#image-4 a.review-tile-image").click()
        client.wait_for_url(re.compile(r"/r/[\w-]+/4/$"))
        client.fill("textarea[name=body]", "Love the steam — a little warmer?")
        box = client.locator("[data-zoomable]").bounding_box()
        client.locator("[data-zoomable]").click(
            position={"x": box["width"] * 0.3, "y": box["height"] * 0.6}
        )
        assert float(client.locator("[data-pin-x]").input_value()) == pytest.approx(0.3, abs=0.02)
        client.get_by_role("button", name="Comment").click()
        client.locator(".review-comment", has_text="a little warmer").wait_for()
        client.locator(".review-pin", has_text="1").wait_for()
        client.keyboard.press("ArrowRight")
        client.wait_for_url(re.compile(r"/r/[\w-]+/5/$"))
        client.keyboard.press("Escape")
        client.wait_for_url(re.compile(r"/r/[\w-]+/#image-5$"))

        client.evaluate("window.scrollTo(0, 0)")
        client.screenshot(path=str(screenshot_path("client-review.png")), full_page=True)

        assert ReviewMark.objects.filter(verdict="pick").count() == 2
        comment = ReviewComment.objects.get()
        assert comment.item.position == 4 and comment.x == pytest.approx(0.3, abs=0.02)

        # The open page shows both picks and the comment as they arrive (it polls).
        studio.get_by_role("link", name="Client picks (2)").wait_for()
        studio.locator("#review-activity", has_text="a little warmer").wait_for()
        assert studio.locator(".review-tile.pick").count() == 2
        assert studio.evaluate("window.notReloaded") is True
        studio.goto(f"{live_server.url}/t/{team.slug}/review/")
        row = studio.locator("tr", has_text="Teapots, first look")
        assert re.search(r"5\s+1\s+2\s+1\s+0", row.inner_text())  # images views picks …
        row.get_by_role("link", name="Teapots, first look").click()
        studio.get_by_role("button", name="Promote client picks to Pro…").click()
        studio.get_by_role("button", name=re.compile(r"Promote at 4K · \d+ credits")).click()
        studio.wait_for_url(re.compile(r"/projects/\d+/"))
        render_all("pro")
        pro = Generation.objects.filter(team=team, tier="pro", status="succeeded")
        assert sorted(pro.values_list("parent_id", flat=True)) == [drafts[1].pk, drafts[3].pk]

        # Switch to delivery; the client downloads the ZIP of finals.
        studio.goto(f"{live_server.url}/t/{team.slug}/review/{link.pk}/")
        studio.get_by_role("button", name="Switch to delivery").click()
        studio.locator(".message", has_text="2 of them Pro renders").wait_for()
        client.reload()
        with client.expect_download() as download:
            client.get_by_role("button", name=re.compile("Download all")).click()
        archive = zipfile.ZipFile(download.value.path())
        assert len(archive.namelist()) == 5
        sizes = sorted(len(archive.read(name)) for name in archive.namelist())
        assert sizes[-1] > sizes[0]  # the two Pro 4K finals are the big ones
        assert all(b"secret-prompt-9" not in archive.read(n) for n in archive.namelist())

        # Revoking ends the client's access on the very next request.
        studio.get_by_role("button", name="Revoke link").click()
        studio.locator(".message", has_text="revoked").wait_for()
        assert client.reload().status == 404
        image = client.request.get(url + "1/preview/")
        assert image.status == 404
    finally:
        studio_context.close()
        client_context.close()
