"""The clients' marks in the studio's own grid, in a real browser: two contexts.

The studio keeps its project page open; a client with no account, on a
phone, picks two images and comments on one. The studio's grid shows both
pick badges without a reload (its own poll), the viewer shows the comment
with its pin, and the history's "Client picks" filter shows exactly the two.
"""

import re

import pytest

from generation.models import Project
from studio.review.services import review_link_create
from tests.conftest import screenshot_path, sign_in
from tests.gallery.conftest import fund, render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# The grid's poll asks every 5 s once it is finished; a mark shows within two rounds.
LIVE_TIMEOUT = 15_000


def test_client_picks_show_live_in_the_studio_grid(chromium_browser, live_server, owner, team):
    fund(team, owner, key="picks-browser")
    project = Project.objects.create(team=team, name="Teapots", created_by=owner)
    batch = submit(team, owner, project, count=5, prompt="ceramic teapot, steam", seed=21)
    render_all()
    drafts = list(batch.generations.order_by("index"))
    _, token = review_link_create(
        team=team, created_by=owner, title="Teapots, first look",
        generation_ids=[g.pk for g in drafts], watermark=True,
    )  # fmt: skip

    studio_context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    client_context = chromium_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    errors = []
    try:
        studio = studio_context.new_page()
        studio.on("pageerror", lambda error: errors.append(str(error)))
        studio.set_default_timeout(20_000)
        studio.base_url = live_server.url
        sign_in(studio, owner.username)
        studio.goto(f"{live_server.url}/t/{team.slug}/projects/{project.pk}/")
        studio.locator(f"#tile-{drafts[0].pk}").wait_for()
        assert studio.locator(".tile-client").count() == 0
        studio.evaluate("window.notReloaded = true")

        # The client, on a phone, with no account.
        client = client_context.new_page()
        client.set_default_timeout(20_000)
        client.goto(f"{live_server.url}/r/{token}/")
        client.fill("input[name=name]", "Alex from Acme")
        client.get_by_role("button", name="Start reviewing").click()
        client.locator(".review-who", has_text="Alex from Acme").wait_for()
        for position in (2, 4):
            client.locator(f"#image-{position}").get_by_role("button", name="✓ Pick").click()
            client.locator(f"#image-{position}.pick").wait_for()
        client.locator("#image-4 a.review-tile-image").click()
        client.wait_for_url(re.compile(r"/r/[\w-]+/4/$"))
        client.fill("textarea[name=body]", "Love the steam <b>warmer</b>?")
        box = client.locator("[data-zoomable]").bounding_box()
        client.locator("[data-zoomable]").click(
            position={"x": box["width"] * 0.3, "y": box["height"] * 0.6}
        )
        client.get_by_role("button", name="Comment").click()
        client.locator(".review-comment", has_text="Love the steam").wait_for()

        # The studio's open grid: both pick badges and the comment count, no reload.
        for draft in (drafts[1], drafts[3]):
            studio.locator(f"#tile-{draft.pk} .client-pick").wait_for(timeout=LIVE_TIMEOUT)
        studio.locator(f"#tile-{drafts[3].pk} .client-comments", has_text="1").wait_for(
            timeout=LIVE_TIMEOUT
        )
        assert studio.evaluate("window.notReloaded") is True
        assert studio.locator(".tile-client").count() == 2
        assert studio.locator(f"#tile-{drafts[0].pk} .tile-client").count() == 0
        # Still one tab stop per tile.
        stops = studio.evaluate(
            f"""() => [...document.querySelectorAll('#grid-{batch.pk} .tiles *')]
            .filter(el => el.tabIndex >= 0
                && el.matches('a[href], button, input:not([type=hidden])')).length"""
        )
        assert stops == 5
        label = studio.locator(f"#tile-{drafts[1].pk} a.tile-image").get_attribute(
            "aria-describedby"
        )
        assert "picked by 1 client" in studio.locator(f"#{label}").text_content()
        studio.locator(f"#grid-{batch.pk}").screenshot(
            path=str(screenshot_path("grid-client-badges.png"))
        )

        # The viewer over the grid shows the comment, as text, with its pin.
        studio.locator(f"#tile-{drafts[3].pk} a.tile-image").click()
        comments = studio.locator(".viewer [data-viewer-comments]")
        comments.locator(".viewer-comment", has_text="Love the steam").wait_for()
        assert "<b>warmer</b>" in comments.inner_text()  # escaped, shown as typed
        assert "Alex from Acme" in comments.inner_text()
        pin = studio.locator(".viewer [data-zoom] .viewer-pin")
        pin.wait_for()
        image = studio.locator(".viewer [data-zoom] img").bounding_box()
        spot = pin.bounding_box()
        centre_x = (spot["x"] + spot["width"] / 2 - image["x"]) / image["width"]
        centre_y = (spot["y"] + spot["height"] / 2 - image["y"]) / image["height"]
        assert centre_x == pytest.approx(0.3, abs=0.03)
        assert centre_y == pytest.approx(0.6, abs=0.03)
        studio.screenshot(path=str(screenshot_path("viewer-client-comments.png")))
        # An image nobody commented on shows no comments.
        studio.keyboard.press("ArrowLeft")
        studio.wait_for_function("() => document.querySelector('.viewer').dataset.tileId !== ''")
        studio.wait_for_function(
            "() => document.querySelector('.viewer [data-viewer-comments]').hidden"
        )
        studio.keyboard.press("Escape")

        # The history's "Client picks" filter: exactly the two, in the URL's state.
        studio.goto(f"{live_server.url}/t/{team.slug}/history/")
        studio.select_option("select[name=picks]", "any")
        studio.get_by_role("button", name="Search").click()
        studio.wait_for_url(re.compile(r"picks=any"))
        shown = studio.eval_on_selector_all(".history-tiles .tile", "els => els.map(e => e.id)")
        assert sorted(shown) == sorted(f"tile-{d.pk}" for d in (drafts[1], drafts[3]))
        studio.get_by_role("button", name="Promote client picks to Pro…").click()
        studio.get_by_role("button", name=re.compile(r"Promote at 4K · \d+ credits")).wait_for()
        assert errors == []
    finally:
        studio_context.close()
        client_context.close()
