"""A region edit in a real browser: open the viewer over the grid, press E, paint a mask
by dragging on the canvas, write what goes there, submit, and watch the edit render.

The renders run in this process (the offline renderer) between steps, so the
walk needs no workers.
"""

import io
import re

import pytest
from django.core.files.storage import default_storage
from PIL import Image, ImageChops

from generation.models import Batch

from ..conftest import screenshot_path, sign_in
from .conftest import fund, render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def opened(name: str) -> Image.Image:
    with default_storage.open(name) as handle:
        return Image.open(io.BytesIO(handle.read())).convert("RGB")


def test_paint_a_mask_in_the_viewer_and_the_region_edit_renders(browser_page, owner, team, project):
    fund(team, owner, key="browser-masks")
    batch = submit(team, owner, project, count=1, seed=41)
    render_all()
    draft = batch.generations.select_related("asset").get()
    page = browser_page
    sign_in(page, owner.username)
    page.goto(f"{page.base_url}/t/{team.slug}/projects/{project.pk}/")

    page.locator(f"#tile-{draft.pk} .tile-image").focus()
    page.keyboard.press("Space")
    viewer = page.locator(".viewer")
    viewer.wait_for()
    page.keyboard.press("e")
    panel = viewer.locator(".viewer-edit")
    canvas = panel.locator("[data-mask-canvas]")
    canvas.wait_for()
    assert panel.locator("[data-mask-note='flash']").inner_text().startswith("Flash on")

    # Paint the right-hand third of the picture, top to bottom, with a wide brush.
    panel.locator("[data-mask-brush]").fill("12")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.85, steps=12)
    page.mouse.up()
    coverage = panel.locator("[data-mask-coverage]")
    panel.get_by_text(re.compile(r"Painted: \d+ % of the image")).wait_for()
    painted = coverage.inner_text()

    # Invert twice is where it started; Clear empties it; painting again brings it back.
    panel.get_by_role("button", name="Invert").click()
    assert int(re.search(r"\d+", coverage.inner_text()).group()) > 80
    panel.get_by_role("button", name="Invert").click()
    assert coverage.inner_text() == painted
    panel.get_by_role("button", name="Clear").click()
    assert coverage.inner_text() == "Nothing painted"
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.85, steps=12)
    page.mouse.up()
    assert coverage.inner_text() == painted
    # Erase takes paint away where it passes.
    panel.get_by_role("button", name="Erase").click()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.1)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.3, steps=6)
    page.mouse.up()
    assert coverage.inner_text() != painted
    panel.get_by_role("button", name="Paint").click()

    words = panel.locator("textarea[name=instructions]")
    words.fill("add a red sail")
    page.screenshot(path=str(screenshot_path("mask-editor.png")))
    panel.get_by_role("button", name="Edit", exact=True).click()
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/#grid-\d+$"))

    batch = Batch.objects.get(kind="edit")
    assert batch.mask_sha256 and batch.source_id == draft.pk
    mask = opened(batch.mask.name).convert("L")
    source = opened(draft.asset.original.name)
    assert mask.size == source.size  # the PNG the browser sent is the source's own size
    width, height = mask.size
    assert mask.getpixel((int(width * 0.8), height // 2)) == 255  # where the drag went
    assert mask.getpixel((int(width * 0.2), height // 2)) == 0  # far from it

    render_all()
    edit = batch.generations.select_related("asset").get()
    assert edit.status == "succeeded"
    page.locator(f"#tile-{edit.pk} img").wait_for()  # the grid shows it, without a reload
    outside = ImageChops.multiply(
        ImageChops.difference(opened(edit.asset.original.name), source).convert("L"),
        ImageChops.invert(mask),
    )
    assert outside.getbbox() is None  # only the painted region changed
