"""The composer, the phone layout and search in a real browser (Chromium, the live server).

No workers: grids are rendered in the test process; these tests are about
what fits on the screen and what a search finds.
"""

import os
import re

import pytest

from generation.models import Project

from ..conftest import sign_in
from .conftest import fund, render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("LAYOUT_SCREENSHOTS", "")


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=False)


def _in_view(page, selector: str) -> list[str]:
    """The elements matching `selector` that are not wholly inside the viewport."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)].filter(el => {
             const r = el.getBoundingClientRect();
             return !(r.top >= 0 && r.left >= 0
                      && r.bottom <= innerHeight && r.right <= innerWidth);
           }).map(el => (el.id || el.className) + ': ' + el.textContent.trim().slice(0, 60))""",
        selector,
    )


def test_the_composer_fits_1280_by_800_with_its_errors(browser_page, owner, team):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    # No credits yet: the submit is refused with a form error at the top.
    project = Project.objects.create(team=team, name="Teapots", created_by=owner)
    sign_in(page, owner.username)
    page.goto(f"{page.base_url}/t/{team.slug}/projects/{project.pk}/")
    composer = page.locator("#composer")
    button = page.get_by_role("button", name="Draft grid")
    _shot(page, "composer-1280x800")
    assert not _in_view(page, ".draft-button")
    # Nothing to scroll inside the composer.
    assert composer.evaluate("el => el.scrollHeight <= el.clientHeight + 1")

    page.fill("#prompt", "Ceramic teapot on a linen tablecloth, soft window light")
    page.locator("input[name=seed_mode][value=locked]").check()
    page.fill("input[name=count]", "12")
    button.click()
    # The submit's answer (the price line may show its own words first).
    page.locator("#seed-error").wait_for()
    _shot(page, "composer-errors-1280x800")
    errors = page.locator("#composer .error")
    texts = errors.all_inner_texts()
    assert any("Enter the seed to lock" in text for text in texts), texts
    assert page.evaluate("scrollY") == 0
    assert not _in_view(page, "#composer .error, #composer .draft-button")
    assert composer.evaluate("el => el.scrollHeight <= el.clientHeight + 1")

    # Fixed, and with no credits: the refusal says so, still in view.
    page.fill("input[name=seed]", "42")
    button.click()
    page.locator("#composer .error", has_text=re.compile("credits", re.I)).wait_for()
    assert not _in_view(page, "#composer .error, #composer .draft-button")


def test_after_submitting_the_new_grid_is_in_view(browser_page, owner, team):
    fund(team, owner)
    project = Project.objects.create(team=team, name="Teapots", created_by=owner)
    for seed in (1, 20, 40):
        submit(team, owner, project, seed=seed, count=12)
    render_all()
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, owner.username)
    page.goto(f"{page.base_url}/t/{team.slug}/projects/{project.pk}/")
    # Scrolled down to older grids, then a new one is drafted.
    page.mouse.wheel(0, 1500)
    page.wait_for_function("scrollY > 500")
    page.fill("#prompt", "Paper lanterns at dusk")
    page.get_by_role("button", name="Draft grid").click()
    fresh = page.locator("section.grid.fresh")
    fresh.wait_for()
    page.wait_for_function(
        "() => { const r = document.querySelector('section.grid.fresh').getBoundingClientRect();"
        " return r.top >= 0 && r.top < innerHeight / 2; }"
    )


def test_a_phone_has_no_sideways_scroll(browser_page, owner, team):
    fund(team, owner)
    project = Project.objects.create(team=team, name="Teapots", created_by=owner)
    submit(team, owner, project, seed=1, count=4)
    render_all()
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, owner.username)
    for path in ("", f"projects/{project.pk}/", "history/", "billing/", "billing/usage/",
                 "members/"):  # fmt: skip
        page.goto(f"{page.base_url}/t/{team.slug}/{path}")
        page.wait_for_load_state("networkidle")
        _shot(page, "phone-" + (path.split("/")[0] or "team"))
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, (path, wide)
        # The header and the team nav are on the screen, none of it cut off.
        assert not _in_view(page, ".site-header .team-nav a, .site-header .brand"), path
        if path == f"projects/{project.pk}/":
            _shot(page, "phone-project")
    # The account menu opens on the screen, not off its left edge.
    page.locator(".account-menu summary").click()
    page.get_by_role("button", name="Sign out").wait_for()
    assert not _in_view(page, ".account-menu .menu")
    page.keyboard.press("Escape")
    assert not page.get_by_role("button", name="Sign out").is_visible()


def test_search_finds_two_words_in_reverse_order(browser_page, owner, team):
    fund(team, owner)
    project = Project.objects.create(team=team, name="Fields", created_by=owner)
    wanted = submit(team, owner, project, prompt="Tall grass field at golden hour", count=2)
    submit(team, owner, project, prompt="golden retriever on a beach", count=2)
    submit(team, owner, project, prompt="grass texture, macro", count=1)
    render_all()
    page = browser_page
    sign_in(page, owner.username)
    page.goto(f"{page.base_url}/t/{team.slug}/history/")
    page.fill("input[name=q]", "grass golden")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=grass\+golden"))
    tiles = page.locator("#history-tiles .tile")
    assert tiles.count() == 2
    ids = {int(tile.get_attribute("id").split("-")[1]) for tile in tiles.all()}
    assert ids == set(wanted.generations.values_list("pk", flat=True))
    captions = page.locator(".history-caption").all_inner_texts()
    assert all("Tall grass field at golden hour" in c and "Flash 1K" in c for c in captions)
    _shot(page, "history-search")


def test_the_theme_follows_the_system_until_a_choice_is_made(browser_page, owner, team):
    page = browser_page
    sign_in(page, owner.username)

    def background() -> str:
        return page.evaluate("getComputedStyle(document.body).backgroundColor")

    page.emulate_media(color_scheme="light")
    page.goto(f"{page.base_url}/t/{team.slug}/")
    assert background() == "rgb(244, 243, 240)"
    page.emulate_media(color_scheme="dark")
    assert background() == "rgb(29, 31, 34)"
    # An explicit choice wins over the system's, across pages.
    page.locator("[data-theme-toggle]").click()
    assert background() == "rgb(244, 243, 240)"
    page.goto(f"{page.base_url}/t/{team.slug}/history/")
    assert background() == "rgb(244, 243, 240)"
