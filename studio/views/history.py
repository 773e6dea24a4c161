"""History and search across the team's images, a cursor page at a time."""

import dataclasses

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generation import catalog
from generation.models import Project, Status
from generation.requests import InvalidRequest, parse_day, parse_id
from generation.selectors import SORTS, HistoryFilters, decode_history_cursor, history_page

from ..review.models import ReviewLink
from ..review.selectors import client_marks_attach, client_picked_ids, client_picks_to_promote
from ..teams import team_for_member

DAY_FIELDS = {"from": "From", "to": "To"}
ANY_LINK = "any"


def _days(data) -> dict:
    """The from/to days, or InvalidRequest saying which one is not a day we take."""
    days, errors = {}, {}
    for name, label in DAY_FIELDS.items():
        try:
            days[name] = parse_day(data.get(name, ""))
        except ValueError as error:
            errors[name] = f"{label}: {error}"
    if errors:
        raise InvalidRequest(errors)
    return days


def parse_filters(data) -> HistoryFilters:
    tier = data.get("tier", "")
    size = data.get("size", "")
    status = data.get("status", "")
    member = data.get("member", "")
    days = _days(data)
    return HistoryFilters(
        text=data.get("q", "").strip()[:200],
        project_id=parse_id(data.get("project", "")),
        sort=data.get("sort", "") if data.get("sort", "") in SORTS else "newest",
        starred=data.get("starred") == "1",
        tier=tier if tier in catalog.TIERS else "",
        size=size if size in catalog.SCALE else "",
        member_id=parse_id(member),
        status=status if status in Status.values else "",
        since=days["from"],
        until=days["to"],
        archived=data.get("archived") == "1",
    )


def _picks_filter(value: str, links) -> tuple[bool, int | None]:
    """(whether to show only client picks, of which link or None for any), from `?picks=`.

    A link that is not one of this team's gets the same answer as one that
    does not exist: nothing says whether another team has it.
    """
    if not value:
        return False, None
    if value == ANY_LINK:
        return True, None
    link_id = parse_id(value)
    if link_id is None or all(link.pk != link_id for link in links):
        raise InvalidRequest({"picks": "Client picks: choose one of the team's review links."})
    return True, link_id


@login_required
@require_GET
def history(request, slug):
    access = team_for_member(request, slug)
    problems = {}
    links = list(ReviewLink.objects.filter(team=access.team).only("pk", "title", "created"))
    picks_only, picks_link = False, None
    try:
        filters = parse_filters(request.GET)
        picks_only, picks_link = _picks_filter(request.GET.get("picks", ""), links)
    except InvalidRequest as invalid:
        problems = invalid.errors
        filters = HistoryFilters()
        images, next_cursor = [], ""
    else:
        if picks_only:
            filters = dataclasses.replace(
                filters, among=client_picked_ids(team=access.team, link_id=picks_link)
            )
        images, next_cursor = history_page(
            team=access.team,
            filters=filters,
            cursor=decode_history_cursor(request.GET.get("cursor")),
        )
        client_marks_attach(team=access.team, generations=images)
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "access": access,
        "images": images,
        "next_cursor": next_cursor,
        "query": query.urlencode(),
        "filters": filters,
        "values": request.GET,
        "projects": Project.objects.filter(team=access.team).order_by("archived", "name"),
        "sorts": [
            ("newest", "Newest first"),
            ("oldest", "Oldest first"),
            ("starred", "Starred first"),
        ],
        "members": access.team.memberships.select_related("user").order_by("user__username"),
        "tiers": [(t, catalog.TIER_LABELS[t]) for t in catalog.TIERS],
        "sizes": list(catalog.SCALE),
        "statuses": Status.choices,
        "review_links": links,
        "picks_only": picks_only,
        # Every pick the filter names, not just this page's: what "promote" sends.
        "picked_ids": (
            client_picks_to_promote(team=access.team, link_id=picks_link)
            if picks_only and not request.GET.get("cursor")
            else []
        ),
        "problems": problems,
    }
    status = 400 if problems else 200
    if request.htmx and request.GET.get("cursor"):
        return render(request, "studio/gallery/_history_page.html", context, status=status)
    return render(request, "studio/gallery/history.html", context, status=status)
