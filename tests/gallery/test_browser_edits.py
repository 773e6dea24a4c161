"""Iterating on an image in a real browser: edit it with words, edit the edit, vary it,
walk the version tree and compare two of its nodes.

The renders run in this process (the offline renderer) between clicks, so
the walk needs no workers.
"""

import re

import pytest

from generation.models import Batch, Generation

from ..conftest import screenshot_path, sign_in
from .conftest import fund, render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_edit_vary_walk_the_tree_and_compare(browser_page, owner, team, project):
    fund(team, owner, key="browser-edits")
    draft = submit(team, owner, project, count=1, seed=31).generations.get()
    render_all()
    page = browser_page
    sign_in(page, owner.username)

    page.goto(f"{page.base_url}/t/{team.slug}/images/{draft.pk}/")
    page.fill("#edit-instructions", "make the light warmer\nadd two moons at the top")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/#grid-\d+$"))
    edits = Batch.objects.get(kind="edit")
    assert edits.count == 2
    render_all()

    # Edit the first edit: the chain goes on.
    first = edits.generations.get(index=0)
    page.goto(f"{page.base_url}/t/{team.slug}/images/{first.pk}/")
    page.get_by_text("Continues the chain: edit 2").wait_for()
    page.fill("#edit-instructions", "remove the shape on the left")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.wait_for_url(re.compile(r"#grid-\d+$"))
    render_all()
    chained = Generation.objects.get(instruction="remove the shape on the left")
    assert (chained.parent_id, chained.chain_turns) == (first.pk, 2)

    page.goto(f"{page.base_url}/t/{team.slug}/images/{draft.pk}/")
    page.get_by_role("button", name="Vary subtle").click()
    page.wait_for_url(re.compile(r"#grid-\d+$"))
    render_all()

    # Walk the tree from the draft down to the chained edit.
    page.goto(f"{page.base_url}/t/{team.slug}/images/{draft.pk}/")
    tree = page.locator("#versions")
    assert tree.locator("[data-tree-node]").count() == 1 + 2 + 1 + 4
    tree.get_by_text("“remove the shape on the left”").wait_for()
    tree.locator(f"[data-tree-node='{chained.pk}'] a.tree-thumb").click()
    page.wait_for_url(re.compile(rf"/images/{chained.pk}/$"))
    assert "Edit 2 of" in page.locator(".lineage").inner_text()
    # Tall enough for the whole tree in one picture (the header stays on top).
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.wait_for_function(
        "() => [...document.querySelectorAll('#versions img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    page.screenshot(path=str(screenshot_path("version-tree.png")))

    # Compare the chained edit with the draft, then on the slider.
    page.locator(f"[data-tree-node='{draft.pk}'] .tree-compare").click()
    page.wait_for_url(re.compile(rf"/compare/{chained.pk}/\?with={draft.pk}$"))
    assert page.locator(".compare-side img").count() == 2
    page.get_by_role("link", name="Slider").click()
    page.wait_for_url(re.compile(rf"with={draft.pk}&mode=slider$"))
    page.locator("[data-compare-range]").wait_for()
