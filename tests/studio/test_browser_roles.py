"""Roles in a real browser: a member's refused archive says why; the owner archives and restores."""

import re

import pytest

from generation.models import Generation, Project

from ..conftest import sign_in
from ..gallery.conftest import fund, render_all, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_member_is_told_why_and_the_owner_archives_then_restores(
    browser_page, owner, teammate, team
):
    fund(team, owner)
    project = Project.objects.create(team=team, name="Teapots", created_by=owner)
    submit(team, owner, project, count=3)
    render_all()
    first = Generation.objects.filter(team=team).order_by("index").first()
    page = browser_page
    project_url = f"{page.base_url}/t/{team.slug}/projects/{project.pk}/"

    # The teammate tries to archive the owner's image: refused in words, tile kept.
    sign_in(page, teammate.username)
    page.goto(project_url)
    page.locator(f"#tile-{first.pk} input[data-pick]").check()
    page.get_by_role("button", name="Archive").click()
    page.locator("#messages .error", has_text="only your own images").wait_for()
    assert page.locator(f"#tile-{first.pk}").count() == 1
    assert not Generation.objects.get(pk=first.pk).archived

    # The owner archives it, finds it among the archived images and restores it.
    page.context.clear_cookies()
    sign_in(page, owner.username)
    page.goto(project_url)
    page.locator(f"#tile-{first.pk} input[data-pick]").check()
    page.get_by_role("button", name="Archive").click()
    page.locator("#messages", has_text="1 image archived").wait_for()
    assert page.locator(f"#tile-{first.pk}").count() == 0

    page.get_by_role("link", name="Archived images").click()
    page.wait_for_url(re.compile(r"/history/\?archived=1$"))
    page.locator(f"#tile-{first.pk} input[data-pick]").check()
    page.get_by_role("button", name="Restore").click()
    page.locator("#messages", has_text="1 image restored").wait_for()
    assert page.locator(f"#tile-{first.pk}").count() == 0
    assert not Generation.objects.get(pk=first.pk).archived
    page.goto(project_url)
    assert page.locator(f"#tile-{first.pk}").count() == 1
