"""Usage over time and per project: the per-day chart and the project breakdown."""

import pytest
from django.urls import reverse

from generation.models import Project

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_usage_has_a_chart_per_day_of_the_period(owner, team, project, client_for):
    submit(team, owner, project, seed=1, count=2)
    render_all()
    page = client_for(owner).get(reverse("billing-usage", args=[team.slug]), {"period": "week"})
    body = page.content.decode()
    chart = body.split('class="usage-chart daily-chart"')[1].split("</svg>")[0]
    assert "Credits per day this week: 134 in all" in chart
    # One slot per day from Monday to today, today's bar drawn in the Flash colour.
    from django.utils import timezone

    days = timezone.localdate().weekday() + 1
    assert chart.count("<g><title>") == days
    assert 'fill="var(--flash)"' in chart and "134 credits (Flash 134, Pro 0)" in chart


def test_usage_by_project_splits_credits_and_follows_the_viewer(
    owner, teammate, team, project, client_for
):
    lookbook = Project.objects.create(team=team, name="Lookbook", created_by=owner)
    submit(team, owner, project, seed=1, count=2)
    submit(team, teammate, lookbook, seed=9, count=3)
    render_all()
    submit(team, teammate, lookbook, seed=9, count=1)  # a repeat: from the cache, free
    url = reverse("usage-projects", args=[team.slug])
    whole = client_for(owner).get(url, {"period": "month"}, **HTMX).content.decode()
    rows = whole.split("<tbody>")[1]
    # Lookbook first (more credits): 4 images, 1 cached, 3 × 67 credits.
    assert rows.index("Lookbook") < rows.index("Spring campaign")
    lookbook_row = rows.split("Lookbook")[1].split("</tr>")[0]
    assert [cell.split("<")[0] for cell in lookbook_row.split('class="num">')[1:]] == [
        "4", "1", "201", "0", "201",
    ]  # fmt: skip
    # The owner may narrow to one member; a member sees only their own images.
    owner_only = client_for(owner).get(url, {"member": owner.pk}, **HTMX).content.decode()
    assert "Lookbook" not in owner_only and "Spring campaign" in owner_only
    mine = client_for(teammate).get(url, {"member": owner.pk}, **HTMX).content.decode()
    assert "Lookbook" in mine and "Spring campaign" not in mine


def test_the_usage_page_loads_the_project_breakdown(owner, stranger, team, client_for):
    page = client_for(owner).get(reverse("billing-usage", args=[team.slug])).content.decode()
    assert f'hx-get="{reverse("usage-projects", args=[team.slug])}?period=month"' in page
    assert client_for(stranger).get(reverse("usage-projects", args=[team.slug])).status_code == 404
    full = client_for(owner).get(reverse("usage-projects", args=[team.slug]))
    assert full.status_code == 200 and "<html" in full.content.decode()
