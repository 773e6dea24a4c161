"""Permutations and campaigns in a real browser: a 3 × 4 matrix grid, a CSV import."""

import re

import pytest

from generation.models import Campaign, Generation

from ..conftest import sign_in
from .conftest import fund, render_all

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COLOURS, SURFACES = ["red", "blue", "green"], ["linen", "marble", "slate", "oak"]


def test_a_permutation_prompt_draws_a_labelled_3_by_4_matrix(browser_page, owner, team):
    fund(team, owner, 50_000, key="browser-matrix")
    page = browser_page
    sign_in(page, owner.username)
    page.fill("#project-name", "Teapots")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/projects/\d+/$"))

    page.fill("#prompt", "{red|blue|green} teapot on {linen|marble|slate|oak}")
    page.fill("input[name=count]", "1")
    page.locator("input[name=count]").dispatch_event("change")
    price = page.locator("#price-line")
    price.get_by_text("12 prompts → 12 × Flash 1K", exact=False).wait_for()
    assert "= 804 credits" in price.inner_text()
    page.get_by_role("button", name="Draft grid").click()

    table = page.locator("section.grid table.matrix")
    table.wait_for()
    assert table.locator("thead th[scope=col]").all_inner_texts()[1:] == SURFACES
    assert table.locator("tbody th[scope=row]").all_inner_texts() == COLOURS
    assert table.locator("td .tile").count() == 12
    # The cell at "blue" × "marble" holds exactly that image.
    cell = table.locator("td[data-row=blue][data-column=marble]")
    tile_id = cell.locator(".tile").get_attribute("data-id")
    assert Generation.objects.get(pk=tile_id).prompt == "blue teapot on marble"

    # Rendered, the tiles fill in where they stand (the poll swaps them by id).
    render_all()
    page.wait_for_function(
        "() => document.querySelectorAll('table.matrix td .tile img').length === 12",
        timeout=30_000,
    )
    assert cell.locator("img").get_attribute("alt") == "blue teapot on marble"


def test_a_csv_import_names_bad_lines_then_creates_the_campaign(browser_page, owner, team):
    fund(team, owner, 50_000, key="browser-csv")
    page = browser_page
    sign_in(page, owner.username)
    page.goto(f"{page.base_url}/t/{team.slug}/campaigns/")
    page.fill("input[name=name]", "Spring catalogue")
    page.fill("input[name=budget]", "5,000")
    page.get_by_role("button", name="Start a campaign").click()
    page.wait_for_url(re.compile(r"/campaigns/\d+/$"))

    bad = b"prompt,size,aspect,seed,count\na red fox,,,,2\n,1K,,,\nan owl,1K,7:3,,\n"
    page.set_input_files("input[name=csv]", {"name": "prompts.csv", "mimeType": "text/csv",
                                             "buffer": bad})  # fmt: skip
    page.get_by_role("button", name="Import the CSV").click()
    error = page.locator(".csv-error")
    error.wait_for()
    assert "Line 3: Write a prompt first." in error.inner_text()
    assert "Line 4:" in error.inner_text() and "Line 2" not in error.inner_text()
    assert not Generation.objects.exists()

    good = b"prompt,size,aspect,seed,count\na red fox,,,,2\na {grey|white} owl,512,9:16,42,1\n"
    page.set_input_files("input[name=csv]", {"name": "prompts.csv", "mimeType": "text/csv",
                                             "buffer": good})  # fmt: skip
    page.get_by_role("button", name="Import the CSV").click()
    page.get_by_text("4 images in 2 grids are on their way.").wait_for()
    progress = page.locator("#campaign-progress")
    assert "0 of 4 done" in progress.inner_text()
    campaign = Campaign.objects.get(team=team)
    assert campaign.batches.count() == 2
    # The owl's one-axis grid is grouped by value, with labels.
    assert page.locator(".matrix-group .matrix-label").all_inner_texts() == [
        "choice 1: grey", "choice 1: white"
    ]  # fmt: skip
