"""The studio's side of review links: share, list, follow a link's activity, revoke, deliver.

Owners and admins only (see services): a member gets 403 on every page here,
except the clients' comments on one image, which the viewer over the grid
shows to every member (the marks are the team's, like its stars).
"""

import csv
from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.selectors import csv_safe
from generation.models import Generation
from generation.requests import parse_ids

from ..teams import team_for_manager, team_for_member
from .models import ReviewKind, ReviewLink
from .selectors import (
    image_comments,
    review_activity_rows,
    review_link_detail,
    review_links_for_team,
    review_source_ids,
)
from .services import (
    MAX_IMAGES,
    ReviewRefused,
    review_link_create,
    review_link_deliver,
    review_link_reopen,
    review_link_revoke,
)


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _expiry(value: str):
    """A date typed in the form: the link works until the end of that day."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ReviewRefused("Give the expiry as a date.")
    end = datetime.combine(day + timedelta(days=1), time.min)
    return timezone.make_aware(end)


def _limit(value: str):
    if value in (None, ""):
        return None
    limit = _int(value)
    if limit is None or limit < 1:
        raise ReviewRefused("A download limit is a whole number of at least 1, or empty.")
    return limit


def _sources(team, data) -> list[int]:
    return review_source_ids(
        team=team,
        ids=parse_ids(data.getlist("ids"), limit=MAX_IMAGES),
        batch_id=_int(data.get("batch")),
        project_id=_int(data.get("project")),
    )


@login_required
@require_http_methods(["GET", "POST"])
def review_new(request, slug):
    """The share form (from a selection, a grid or a project), then the link, shown once."""
    access = team_for_manager(request, slug)
    data = request.POST if request.method == "POST" else request.GET
    ids = _sources(access.team, data)
    context = {"access": access, "ids": ids, "error": "", "form": data}
    # The selection bar posts its ids without a title (a GET would put its CSRF
    # token in the address): that is a request for the form.
    if request.method == "GET" or "title" not in request.POST:
        return render(request, "studio/review/new.html", context)
    try:
        link, token = review_link_create(
            team=access.team,
            created_by=request.user,
            title=data.get("title", ""),
            note=data.get("note", ""),
            generation_ids=ids,
            password=data.get("password", ""),
            expires_at=_expiry(data.get("expires", "")),
            kind=ReviewKind.DELIVERY if data.get("kind") == "delivery" else ReviewKind.REVIEW,
            download_limit=_limit(data.get("download_limit", "")),
            show_prompts=data.get("show_prompts") == "1",
            watermark=data.get("watermark") == "1",
        )
    except ReviewRefused as refused:
        context["error"] = refused.message
        return render(request, "studio/review/new.html", context, status=refused.status)
    # Rendered, not redirected: the token is in this page only, shown this once.
    context.update(
        link=link, url=request.build_absolute_uri(reverse("review-client", args=[token]))
    )
    response = render(request, "studio/review/created.html", context, status=201)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def review_list(request, slug):
    access = team_for_manager(request, slug)
    links = review_links_for_team(access.team)
    return render(request, "studio/review/list.html", {"access": access, "links": links})


@login_required
@require_GET
def review_detail(request, slug, pk):
    access = team_for_manager(request, slug)
    picks_only = request.GET.get("picks") == "1"
    detail = review_link_detail(team=access.team, pk=pk, picks_only=picks_only)
    if detail is None:
        raise Http404
    context = {"access": access, "detail": detail, "link": detail.link, "picks_only": picks_only}
    template = "studio/review/_activity.html" if request.htmx else "studio/review/detail.html"
    return render(request, template, context)


def _link(access, pk) -> ReviewLink:
    link = ReviewLink.objects.filter(team=access.team, pk=pk).first()
    if link is None:
        raise Http404
    return link


@login_required
@require_POST
def review_revoke(request, slug, pk):
    access = team_for_manager(request, slug)
    link = _link(access, pk)
    if review_link_revoke(link=link):
        messages.success(request, f"“{link.title}” revoked: the link stops working at once.")
    return redirect("review-detail", slug=slug, pk=pk)


@login_required
@require_POST
def review_deliver(request, slug, pk):
    access = team_for_manager(request, slug)
    link = _link(access, pk)
    try:
        finals = review_link_deliver(
            link=link, download_limit=_limit(request.POST.get("limit")), actor=request.user
        )
    except ReviewRefused as refused:
        messages.error(request, refused.message)
        return redirect("review-detail", slug=slug, pk=pk)
    messages.success(
        request,
        f"“{link.title}” is now a delivery of full-resolution files"
        + (f", {finals} of them Pro renders." if finals else "."),
    )
    return redirect("review-detail", slug=slug, pk=pk)


@login_required
@require_POST
def review_reopen(request, slug, pk):
    """A delivery back to a review: the client sees previews again, and can mark them."""
    access = team_for_manager(request, slug)
    link = _link(access, pk)
    try:
        if review_link_reopen(link=link, actor=request.user):
            messages.success(
                request, f"“{link.title}” is a review again: previews only, no downloads."
            )
    except ReviewRefused as refused:
        messages.error(request, refused.message)
    return redirect("review-detail", slug=slug, pk=pk)


@login_required
@require_GET
def review_activity_csv(request, slug, pk):
    access = team_for_manager(request, slug)
    link = _link(access, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="review-{link.pk}-activity.csv"'
    writer = csv.writer(response)
    writer.writerow(["time", "event", "client", "image", "detail"])
    for event in review_activity_rows(link):
        # Clients type their names and comments: never let a cell run as a formula.
        writer.writerow(
            [
                csv_safe(value)
                for value in (
                    event.created.isoformat(),
                    event.kind,
                    event.client_name,
                    event.item.position if event.item else "",
                    event.detail,
                )
            ]
        )
    return response


@login_required
@require_GET
def image_client_comments(request, slug, pk):
    """The clients' comments on one image, over every link of the team, for the viewer."""
    access = team_for_member(request, slug)
    if not Generation.objects.filter(team=access.team, pk=pk).exists():
        raise Http404
    comments = image_comments(team=access.team, generation_id=pk)
    context = {"access": access, "comments": comments}
    return render(request, "studio/review/_image_comments.html", context)
