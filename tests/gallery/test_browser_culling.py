"""Culling in a real browser: the viewer over the grid, keys, zoom, compare, keeping your place.

Chromium through Playwright against the live server. The 50-image grid is
rendered by real workers of both lanes; the other walks render in-process
(the same offline renderer) to keep the run short.
"""

import re

import pytest

from billing.models import MemberCap
from billing.selectors import wallet_of
from generation.models import Batch, Generation
from generation.services import generation_promote

from ..conftest import screenshot_path, sign_in
from .conftest import render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RENDER_TIMEOUT = 90_000


@pytest.fixture
def browser_page(browser_page):
    """The page, failing the test on any uncaught script error."""
    errors = []
    browser_page.on("pageerror", lambda error: errors.append(str(error)))
    yield browser_page
    assert errors == []


def project_url(page, team, project) -> str:
    return f"{page.base_url}/t/{team.slug}/projects/{project.pk}/"


def focused_tile(page) -> str:
    return page.evaluate("() => (document.activeElement.closest('.tile') || {id: ''}).id")


def wait_focused(page, pk: int) -> None:
    page.wait_for_function(
        "id => (document.activeElement.closest('.tile') || {}).id === id", arg=f"tile-{pk}"
    )


def wait_db(check, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the database did not change in time")
        time.sleep(0.1)


def test_culling_a_50_image_grid_with_the_keyboard_only(
    browser_page, owner, team, project, both_lanes
):
    batch = submit(team, owner, project, count=50, size="512", aspect="1:1", seed=10)
    page = browser_page
    sign_in(page, owner.username)
    page.goto(project_url(page, team, project))
    grid = page.locator(f"#grid-{batch.pk}")
    grid.locator(".progress-count", has_text="50/50").wait_for(timeout=RENDER_TIMEOUT)
    tiles = list(batch.generations.order_by("index"))

    # One tab stop per tile: the image link; checkbox, star and actions are keys.
    stops = page.evaluate(
        f"""() => [...document.querySelectorAll('#grid-{batch.pk} .tiles *')]
        .filter(el => el.tabIndex >= 0 && el.matches('a[href], button, input:not([type=hidden])'))
        .length"""
    )
    assert stops == 50
    page.locator(f"#tile-{tiles[0].pk} a.tile-image").focus()
    page.keyboard.press("Tab")
    wait_focused(page, tiles[1].pk)
    page.keyboard.press("Shift+Tab")
    wait_focused(page, tiles[0].pk)

    # Space opens the viewer; its address is the image's own page.
    page.keyboard.press("Space")
    viewer = page.locator(".viewer")
    viewer.wait_for()
    page.wait_for_url(re.compile(rf"/images/{tiles[0].pk}/$"))
    viewer.get_by_role("button", name="Next").click()  # the bar's buttons are the keys too
    page.wait_for_url(re.compile(rf"/images/{tiles[1].pk}/$"))
    viewer.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(rf"/images/{tiles[2].pk}/$"))
    assert viewer.locator("[data-viewer-count]").inner_text() == "3 of 50"

    page.keyboard.press("s")
    wait_db(lambda: Generation.objects.get(pk=tiles[2].pk).starred)
    viewer.locator(".mark-star").wait_for()
    page.keyboard.press("4")
    wait_db(lambda: Generation.objects.get(pk=tiles[2].pk).rating == 4)
    with page.expect_download() as download:
        page.keyboard.press("d")
    assert download.value.suggested_filename.endswith(f"_{tiles[2].pk}.png")

    # X rejects and moves on; U takes it back; X again.
    page.keyboard.press("x")
    page.wait_for_url(re.compile(rf"/images/{tiles[3].pk}/$"))
    wait_db(lambda: Generation.objects.get(pk=tiles[2].pk).rejected)
    page.keyboard.press("u")
    wait_db(lambda: not Generation.objects.get(pk=tiles[2].pk).rejected)
    page.locator(f"#tile-{tiles[2].pk}:not(.is-rejected)").wait_for(state="attached")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(rf"/images/{tiles[2].pk}/$"))
    page.keyboard.press("x")
    page.wait_for_url(re.compile(rf"/images/{tiles[3].pk}/$"))
    wait_db(lambda: Generation.objects.get(pk=tiles[2].pk).rejected)

    # P promotes the image in view: the dialog prices it, Enter confirms.
    page.keyboard.press("p")
    dialog = page.locator("#dialog")
    dialog.get_by_role("button", name=re.compile("Promote at 2K")).wait_for()
    assert page.evaluate("document.activeElement.dataset.promoteSize") == "2K"
    page.keyboard.press("Enter")
    page.locator("section.grid.tier-pro").wait_for()
    assert not dialog.is_visible()
    pro = Batch.objects.get(team=team, tier="pro")
    assert list(pro.generations.values_list("parent_id", flat=True)) == [tiles[3].pk]

    # Esc: back on the grid, on the tile last viewed, with the place in the URL.
    page.keyboard.press("Escape")
    assert viewer.is_hidden()
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/(\?through=\d+)?#tile-{tiles[3].pk}$"))
    wait_focused(page, tiles[3].pk)

    # In the grid: the rejected tile is gone from view and skipped; ↓ moves a row.
    assert page.locator(f"#tile-{tiles[2].pk}").is_hidden()
    page.keyboard.press("ArrowLeft")
    wait_focused(page, tiles[1].pk)
    here = page.locator(f"#tile-{tiles[1].pk}").bounding_box()
    page.keyboard.press("ArrowDown")
    page.wait_for_function(
        "id => document.activeElement.closest('.tile').id !== id", arg=f"tile-{tiles[1].pk}"
    )
    below = page.evaluate(
        "document.activeElement.closest('.tile').getBoundingClientRect().toJSON()"
    )
    assert below["top"] > here["y"] + here["height"] / 2
    assert abs(below["left"] - here["x"]) < 5
    page.keyboard.press("ArrowUp")
    wait_focused(page, tiles[1].pk)
    # The focused tile takes the same keys: S stars it without opening anything.
    page.keyboard.press("s")
    wait_db(lambda: Generation.objects.get(pk=tiles[1].pk).starred)
    assert viewer.is_hidden()

    # "Show rejected" brings it back into view, marked.
    page.get_by_role("link", name="Show rejected").click()
    page.wait_for_url(re.compile(r"\?rejected=1"))
    rejected = page.locator(f"#tile-{tiles[2].pk}")
    assert rejected.is_visible() and "Rejected" in rejected.inner_text()

    page.goto(project_url(page, team, project) + f"#tile-{tiles[0].pk}")
    page.locator("section.grid.tier-pro .progress-count", has_text="1/1").wait_for(
        timeout=RENDER_TIMEOUT
    )
    wait_focused(page, tiles[0].pk)
    page.keyboard.press("5")
    page.locator(f"#tile-{tiles[0].pk} .tile-rating").wait_for()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile img')].every(i => i.complete)"
    )
    page.evaluate("document.getElementById('keys-help').hidden = false; window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshot_path("grid-culling.png")))


@pytest.fixture
def pro_pair(team, owner, project):
    """Two 16:9 drafts at 1K and their Pro renders at 4K (5376 × 3072 originals)."""
    drafts_batch = submit(team, owner, project, count=2, size="1K", aspect="16:9", seed=70)
    render_all()
    drafts = list(drafts_batch.generations.order_by("index"))
    pro_batch = generation_promote(
        team=team, member=owner, generation_ids=[d.pk for d in drafts], size="4K"
    )
    render_all("pro")
    pros = list(pro_batch.generations.order_by("index"))
    assert all(p.asset.width == 5376 and p.asset.height == 3072 for p in pros)
    return drafts, pros


def view_centre(page, selector: str) -> list[list[float]]:
    """For each zoom view: the picture's width and the image fraction at the view's centre."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(view => {
            const img = view.querySelector('img');
            const box = view.getBoundingClientRect(), pic = img.getBoundingClientRect();
            return [pic.width, (box.left + box.width / 2 - pic.left) / pic.width,
                    (box.top + box.height / 2 - pic.top) / pic.height];
        })""",
        selector,
    )


def test_zoom_to_100_percent_and_pan_a_4k_original_in_sync_in_compare(
    browser_page, owner, team, project, pro_pair
):
    drafts, pros = pro_pair
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, owner.username)
    page.goto(project_url(page, team, project))

    # In the viewer: Z is 100 % of the original's pixels; Shift+arrows and drag pan.
    page.locator(f"#tile-{pros[0].pk} a.tile-image").click()
    viewer = page.locator(".viewer")
    viewer.wait_for()
    page.keyboard.press("z")
    page.wait_for_function(
        "() => { const i = document.querySelector('.viewer [data-zoom] img');"
        " return i.dataset.full === '1' && i.naturalWidth === 5376 && i.style.width === '5376px'; }"
    )
    assert viewer.get_attribute("data-zoom-level") == "1"
    start = view_centre(page, ".viewer [data-zoom]")[0]
    assert start[0] == pytest.approx(5376, abs=1) and start[1] == pytest.approx(0.5, abs=0.01)
    page.keyboard.press("Shift+ArrowRight")
    panned = view_centre(page, ".viewer [data-zoom]")[0]
    assert panned[1] > start[1] + 0.01
    box = page.locator(".viewer [data-zoom]").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 300, box["y"] + box["height"] / 2 + 200, steps=5)
    page.mouse.up()
    dragged = view_centre(page, ".viewer [data-zoom]")[0]
    assert dragged[1] == pytest.approx(panned[1] - 300 / 5376, abs=0.002)
    assert dragged[2] < start[2]
    page.mouse.wheel(0, 400)  # a trackpad's scroll pans down

    page.wait_for_function(
        "y => Number(document.querySelector('.viewer').dataset.zoomCenter.split(',')[1]) > y",
        arg=dragged[2] + 0.01,
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(screenshot_path("viewer-zoom-100.png")))
    page.keyboard.press("Escape")
    wait_focused(page, pros[0].pk)

    # Compare four: two drafts and their Pro renders, zoomed and panned together.
    ids = ",".join(str(g.pk) for g in (drafts[0], pros[0], drafts[1], pros[1]))
    page.goto(f"{page.base_url}/t/{team.slug}/compare/?ids={ids}")
    views = ".compare-side [data-zoom]"
    assert page.locator(views).count() == 4
    page.get_by_role("button", name="100 %").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.compare-side [data-zoom] img')]"
        ".every(i => i.dataset.full === '1')"
    )
    page.wait_for_timeout(100)
    box = page.locator(views).nth(1).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 400, box["y"] + box["height"] / 2 - 150, steps=5)
    page.mouse.up()
    centres = view_centre(page, views)
    # Every view is at 100 % of the 4K width and shows the same part of the picture.
    assert all(width == pytest.approx(5376, abs=1) for width, _, _ in centres)
    assert centres[0][1] > 0.55 and centres[0][2] > 0.5
    for _, x, y in centres[1:]:
        assert x == pytest.approx(centres[0][1], abs=0.002)
        assert y == pytest.approx(centres[0][2], abs=0.002)
    page.wait_for_timeout(300)
    page.screenshot(path=str(screenshot_path("compare-four-zoomed.png")))

    # Fit again; then three of them side by side.
    page.keyboard.press("z")
    page.keyboard.press("z")
    page.wait_for_function(
        "() => document.querySelector('[data-zoom-group]').dataset.zoomLevel === 'fit'"
    )
    ids = ",".join(str(g.pk) for g in (drafts[0], drafts[1], pros[0]))
    page.goto(f"{page.base_url}/t/{team.slug}/compare/?ids={ids}")
    assert page.locator(views).count() == 3
    page.wait_for_function(
        "() => [...document.querySelectorAll('.compare-side img')]"
        ".every(i => i.complete && i.naturalWidth)"
    )
    page.screenshot(path=str(screenshot_path("compare-three.png")))

    # Esc leaves compare for the grid, on the first image's tile.
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(rf"#tile-{drafts[0].pk}$"))
    wait_focused(page, drafts[0].pk)


def test_c_compares_with_the_marked_image(browser_page, owner, team, project):
    batch = submit(team, owner, project, count=4, size="512", aspect="1:1", seed=90)
    render_all()
    tiles = list(batch.generations.order_by("index"))
    page = browser_page
    sign_in(page, owner.username)
    page.goto(project_url(page, team, project) + f"#tile-{tiles[0].pk}")
    wait_focused(page, tiles[0].pk)
    page.keyboard.press("c")
    page.locator(f"#tile-{tiles[0].pk}.is-marked").wait_for()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.locator(".viewer").wait_for()
    page.keyboard.press("c")
    page.wait_for_url(re.compile(rf"/compare/\?ids={tiles[0].pk},{tiles[2].pk}$"))
    assert page.locator(".compare-side [data-zoom]").count() == 2
    # Back from compare: the grid, on the image that was in view, viewer closed.
    page.go_back()
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/(\?through=\d+)?#tile-{tiles[2].pk}$"))
    wait_focused(page, tiles[2].pk)
    assert page.locator(".viewer").count() == 0 or page.locator(".viewer").is_hidden()


def test_back_from_an_image_in_an_older_grid_lands_on_that_tile(browser_page, owner, team, project):
    batches = [submit(team, owner, project, count=4, size="512", aspect="1:1", seed=s)
               for s in (1, 2, 3, 4, 5, 6)]  # fmt: skip
    render_all()
    oldest = batches[0]
    target = oldest.generations.order_by("index")[2]
    page = browser_page
    sign_in(page, owner.username)
    page.goto(project_url(page, team, project))
    # Older grids load as the page scrolls.
    for _ in range(6):
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(150)
    page.locator(f"#grid-{oldest.pk}").wait_for()
    assert page.locator("section.grid").count() == 6

    # Open it in the viewer, then go to its own page; Back lands on the tile.
    page.locator(f"#tile-{target.pk} a.tile-image").click()
    page.locator(".viewer").wait_for()
    page.locator("[data-viewer-page]").click()
    page.wait_for_url(re.compile(rf"/images/{target.pk}/$"))
    page.locator(".lightbox-info").wait_for()
    page.go_back()
    page.wait_for_url(
        re.compile(rf"/projects/{project.pk}/\?through={oldest.pk}#tile-{target.pk}$")
    )
    wait_focused(page, target.pk)
    assert page.locator("section.grid").count() == 6
    assert page.locator(f"#tile-{target.pk}").is_visible()

    # A fresh load of that URL (a reload, a shared link) finds the same place.
    page.reload()
    wait_focused(page, target.pk)
    assert page.locator("section.grid").count() == 6

    # The image page's own Close link goes back there too.
    page.goto(f"{page.base_url}/t/{team.slug}/images/{target.pk}/")
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(rf"\?through={oldest.pk}#tile-{target.pk}$"))
    wait_focused(page, target.pk)

    # Back while the viewer is open just closes it.
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(rf"/images/{target.pk}/$"))
    page.go_back()
    page.wait_for_url(re.compile(rf"#tile-{target.pk}$"))
    assert page.locator(".viewer").is_hidden()
    wait_focused(page, target.pk)


# --- the promote dialog's bugs ------------------------------------------------------


def test_promoting_clears_the_selection_and_a_backdrop_click_closes_the_dialog(
    browser_page, owner, team, project
):
    batch = submit(team, owner, project, count=3, size="512", aspect="1:1", seed=30)
    render_all()
    tiles = list(batch.generations.order_by("index"))
    page = browser_page
    sign_in(page, owner.username)
    page.goto(project_url(page, team, project))
    dialog = page.locator("#dialog")

    page.locator(f"#tile-{tiles[0].pk} .pick").click()
    page.get_by_role("button", name="Promote to Pro…").click()
    dialog.get_by_role("button", name=re.compile("Promote at 2K")).wait_for()
    page.mouse.click(5, 450)  # the backdrop, outside the dialog's box
    page.wait_for_function("() => !document.getElementById('dialog').open")

    page.locator(f"#tile-{tiles[1].pk} .pick").click()
    page.locator("[data-selection-count]", has_text="2 selected").wait_for()
    page.get_by_role("button", name="Promote to Pro…").click()
    dialog.get_by_role("button", name=re.compile("Promote at 2K")).click()
    page.locator("section.grid.tier-pro").wait_for()
    page.wait_for_function("() => !document.getElementById('dialog').open")
    page.locator("[data-selection-count]", has_text="Nothing selected").wait_for()
    assert page.locator("[data-pick]:checked").count() == 0


def test_a_refusal_on_the_standalone_promote_page_stays_one_page(
    browser_page, owner, team, project
):
    draft = submit(team, owner, project, count=1, size="512", aspect="1:1", seed=40)
    render_all()
    image = draft.generations.get()
    page = browser_page
    sign_in(page, owner.username)
    page.goto(f"{page.base_url}/t/{team.slug}/selection/promote/?ids={image.pk}")
    button = page.get_by_role("button", name=re.compile("Promote at 4K"))
    assert button.is_enabled()
    # Meanwhile a cap leaves the owner too little for it: the server refuses.
    MemberCap.objects.create(
        wallet=wallet_of(team), member=owner, period="day", tier="", credits=10
    )
    button.click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".promote-form").count() == 1
    assert page.evaluate("document.getElementById('dialog').open") is False
    assert page.locator(".promote-form .error").count() == 1
    assert "credits left" in page.locator(".promote-form").inner_text()


def test_a_successful_submit_clears_the_errors_of_the_refused_one(
    browser_page, owner, team, project
):
    page = browser_page
    sign_in(page, owner.username)
    page.goto(project_url(page, team, project))
    page.fill("#prompt", "   ")  # passes the browser's `required`, not the server
    page.get_by_role("button", name="Draft grid").click()
    page.locator("#composer .error").first.wait_for()
    page.fill("#prompt", "Ceramic teapot, morning light")
    page.fill("input[name=count]", "1")
    page.get_by_role("button", name="Draft grid").click()
    page.locator("section.grid").first.wait_for()
    assert page.locator("#composer .error").count() == 0
    assert page.locator("#composer [aria-invalid]").count() == 0
