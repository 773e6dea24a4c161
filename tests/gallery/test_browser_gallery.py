"""The gallery in a real browser: Chromium, the live server, real workers of both lanes.

One walk through a designer's day keeps the run lean (workers start once):
draft a 12-image grid, star two, promote them to Pro 4K, compare, watch the
header balance, drive the lightbox with the keyboard. A stranger then tries
the same URLs from another team.
"""

import re

import pytest

from billing.selectors import wallet_balance
from generation.models import Batch, Generation, Project

from ..conftest import screenshot_path, sign_in
from .conftest import fund, render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RENDER_TIMEOUT = 60_000
FLASH_1K, PRO_4K = 67, 240
FUNDS = 50_000


def header_credits(page) -> int:
    text = page.locator("#header-balance .credits").inner_text()
    return int(re.sub(r"\D", "", text))


def wait_for_credits(page, expected: int) -> None:
    page.wait_for_function(
        "n => Number((document.querySelector('#header-balance .credits') || {textContent: ''})"
        ".textContent.replace(/\\D/g, '')) === n",
        arg=expected,
        timeout=RENDER_TIMEOUT,
    )


def test_a_designers_day_draft_star_promote_compare_keys(browser_page, owner, team, both_lanes):
    fund(team, owner, FUNDS, key="browser")
    page = browser_page
    sign_in(page, owner.username)

    # A project, then the composer.
    page.fill("#project-name", "Teapots")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    assert header_credits(page) == FUNDS

    page.fill("#prompt", "Ceramic teapot on a linen tablecloth, soft window light")
    page.locator("label.aspect[title='16:9']").click()
    page.fill("input[name=count]", "12")
    page.locator("input[name=count]").dispatch_event("change")
    price = page.locator("#price-line")
    price.get_by_text("12 × Flash 1K (1024 × 1024) = 804 credits").wait_for()
    assert "50,000 available" in price.inner_text()

    # (a) Submit: the grid appears at once and fills in without a reload.
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Draft grid").click()
    grid = page.locator("section.grid").first
    grid.wait_for()
    grid.locator(".progress-count", has_text="12/12").wait_for(timeout=RENDER_TIMEOUT)
    thumbnails = grid.locator(".tile img")
    assert thumbnails.count() == 12
    page.wait_for_function(
        "() => [...document.querySelectorAll('section.grid .tile img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    assert page.evaluate("window.notReloaded") is True
    # The poll stopped: a finished grid has no poller asking for more.
    assert grid.locator("[hx-trigger]").count() == 0 or "every" not in (
        grid.locator(".poller").get_attribute("hx-trigger") or ""
    )

    # (c) The header balance drops by exactly what was captured.
    draft_batch = Batch.objects.get(team=team, tier="flash")
    charged = sum(draft_batch.generations.values_list("credits_charged", flat=True))
    assert charged == 12 * FLASH_1K
    wait_for_credits(page, FUNDS - charged)

    page.set_viewport_size({"width": 1280, "height": 1000})
    page.evaluate("window.scrollTo(0, 0); document.querySelector('#composer').scrollTop = 0")
    page.locator("#price-line", has_text=f"{FUNDS - charged:,} available").wait_for()
    page.screenshot(path=str(screenshot_path("draft-grid.png")))

    # (b) Star two, promote them to Pro 4K with the price shown first.
    tiles = grid.locator(".tile")
    for index in (1, 4):
        tiles.nth(index).locator("button.star").click()
        tiles.nth(index).locator("button.star[aria-pressed=true]").wait_for()
    page.get_by_role("button", name="Select starred").click()
    page.locator("[data-selection-count]", has_text="2 selected").wait_for()
    page.get_by_role("button", name="Promote to Pro…").click()
    dialog = page.locator("#dialog")
    promote_4k = dialog.get_by_role("button", name=re.compile(r"Promote at 4K · 480 credits"))
    promote_4k.wait_for()
    promote_4k.click()
    pro_grid = page.locator("section.grid.tier-pro")
    pro_grid.wait_for()
    assert not dialog.is_visible()
    pro_grid.locator(".progress-count", has_text="2/2").wait_for(timeout=RENDER_TIMEOUT * 2)
    assert pro_grid.locator(".tile img").count() == 2
    assert page.evaluate("window.notReloaded") is True

    pro_charged = sum(
        Generation.objects.filter(team=team, tier="pro").values_list("credits_charged", flat=True)
    )
    assert pro_charged == 2 * PRO_4K
    wait_for_credits(page, FUNDS - charged - pro_charged)
    assert wallet_balance(team) == (FUNDS - charged - pro_charged, 0)

    pro_grid.locator(".tile").first.get_by_role("link", name="Compare").click()
    page.wait_for_url(re.compile(r"/compare/\d+/$"))
    images = page.locator(".compare-side img")
    assert images.count() == 2
    page.wait_for_function(
        "() => [...document.querySelectorAll('.compare-side img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    page.get_by_role("link", name="Slider").click()
    page.locator("[data-compare-range]").fill("20")
    split = page.locator("[data-compare-slider]").evaluate(
        "el => el.style.getPropertyValue('--split')"
    )
    assert split == "20%"

    # (d) The image page answers the keyboard.
    drafts = list(draft_batch.generations.order_by("index"))
    project_url = page.base_url + f"/t/{team.slug}/projects/{draft_batch.project_id}/"
    # (The viewer over the grid has its own test; this is the image page itself.)
    page.goto(project_url)
    page.goto(page.base_url + f"/t/{team.slug}/images/{drafts[0].pk}/")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(rf"/images/{drafts[1].pk}/$"))
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(rf"/images/{drafts[0].pk}/$"))
    page.keyboard.press("s")
    page.locator("[data-lightbox] button.star[aria-pressed=true]").wait_for()
    assert Generation.objects.get(pk=drafts[0].pk).starred
    with page.expect_download() as download:
        page.keyboard.press("d")
    assert download.value.suggested_filename.startswith("ceramic-teapot-on-a-linen")
    page.keyboard.press("p")
    page.wait_for_url(re.compile(r"/selection/promote/\?ids="))
    assert page.get_by_role("button", name=re.compile("Promote at 2K")).is_visible()
    page.go_back()
    page.wait_for_url(re.compile(rf"/images/{drafts[0].pk}/$"))
    page.keyboard.press("Escape")
    page.wait_for_url(
        re.compile(rf"/projects/{draft_batch.project_id}/\?through=\d+#tile-{drafts[0].pk}$")
    )


def test_a_stranger_gets_404_for_another_teams_grid_image_and_media(
    browser_page, owner, team, stranger
):
    fund(team, owner, key="stranger-test")
    project = Project.objects.create(team=team, name="Private", created_by=owner)
    batch = submit(team, owner, project, count=1)
    render_all()
    image = batch.generations.get()
    page = browser_page
    sign_in(page, stranger.username)
    for path in (
        f"/t/{team.slug}/projects/{project.pk}/",
        f"/t/{team.slug}/images/{image.pk}/",
        f"/t/{team.slug}/images/{image.pk}/original/",
        f"/t/{team.slug}/images/{image.pk}/thumb/",
        f"/t/{team.slug}/batches/{batch.pk}/poll/",
    ):
        response = page.goto(page.base_url + path)
        assert response.status == 404, path
        assert "Private" not in page.content()
