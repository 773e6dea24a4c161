"""What happens on a draft grid: the poll that fills tiles in, star, promote, archive, cancel.

Who may cancel or archive what is decided by the services (a PermissionDenied is a 403).
"""

from urllib.parse import urlparse

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.selectors import wallet_balance, wallet_of
from billing.services import Refusal, limits_left
from generation import catalog
from generation.backends import team_quote
from generation.models import Batch, Generation, Status
from generation.requests import parse_ids
from generation.selectors import (
    batch_changes,
    batch_grid,
    batches_emptied,
    from_micros,
    generations_selected,
    outstanding_count,
)
from generation.services import (
    PROMOTE_SIZES,
    SubmitRefused,
    batch_cancel,
    generation_promote,
    generation_rate,
    generation_reject,
    generation_star,
    generations_archive,
)

from .. import throttle
from ..review.selectors import client_marks_of, client_marks_on_grids
from ..teams import team_for_member
from .composer import STATUS_FOR

# htmx stops polling when a response has this status.
STOP_POLLING = 286


@login_required
@require_GET
def batch_poll(request, slug, pk):
    """The tiles of a grid that changed since the last poll, and its progress.

    Answers 286 once every image is finished, so htmx stops asking; a page of
    finished grids renders no poller at all and makes no requests. A grid with
    an image on a live review link is the exception: it keeps asking every 5 s
    and gets the tiles whose clients' marks changed (the same oob swap).
    """
    access = team_for_member(request, slug)
    changes = batch_changes(team=access.team, pk=pk, since=from_micros(request.GET.get("since")))
    if changes is None:
        raise Http404
    # Queued tiles show their place in the lane; resend them when it moved.
    if str(changes.progress.next_place or "") != request.GET.get("place", ""):
        sent = {g.pk for g in changes.changed}
        changes.changed += [g for g in changes.queued if g.pk not in sent]
    # A client marking an image on a review link changes its tile too: one
    # query says which, and whether the grid is still worth asking about.
    tallies, live, marked = client_marks_of(
        team=access.team,
        generation_ids=[g.pk for g in changes.tiles],
        since=from_micros(request.GET.get("since")),
    )
    sent = {g.pk for g in changes.changed}
    changes.changed += [g for g in changes.tiles if g.pk in marked and g.pk not in sent]
    for generation in changes.changed:
        generation.client_marks = tallies.get(generation.pk)
    watched = bool(live)
    response = render(
        request, "studio/gallery/_poll.html",
        {"changes": changes, "batch_id": pk, "watched": watched},
        status=STOP_POLLING if changes.progress.is_finished and not watched else 200,
    )  # fmt: skip
    if changes.settled:
        # Captures and releases moved the team's credits: the header follows.
        response["HX-Trigger"] = "credits-changed"
    return response


@login_required
@require_POST
def batch_cancel_view(request, slug, pk):
    access = team_for_member(request, slug)
    batch = get_object_or_404(Batch, team=access.team, pk=pk)
    canceled = batch_cancel(batch=batch, actor=request.user)
    if request.htmx:
        grid = batch_grid(team=access.team, pk=batch.pk)
        client_marks_on_grids(team=access.team, grids=[grid])
        response = render(request, "studio/gallery/_grid.html", {"grid": grid})
        response["HX-Trigger"] = "credits-changed"
        return response
    messages.success(
        request,
        f"{canceled} queued image{pluralize(canceled)} canceled; their credits are released.",
    )
    return _back(request, slug)


@login_required
@require_POST
def image_star(request, slug, pk):
    access = team_for_member(request, slug)
    generation = get_object_or_404(Generation, team=access.team, pk=pk)
    generation_star(generation=generation, starred=request.POST.get("starred") == "1")
    if request.htmx and request.POST.get("tile") == "1":
        # The grid's S key: the whole tile, so its marks and its version follow.
        return render(request, "studio/gallery/_tile.html", {"g": generation})
    if request.htmx:
        return render(request, "studio/gallery/_star.html", {"generation": generation})
    return _back(request, slug)


@login_required
@require_POST
def image_reject(request, slug, pk):
    """Reject an image (rejected=1) or take it back (rejected=0); htmx gets the new tile."""
    access = team_for_member(request, slug)
    generation = get_object_or_404(Generation, team=access.team, pk=pk)
    generation_reject(generation=generation, rejected=request.POST.get("rejected") == "1")
    if request.htmx:
        return render(request, "studio/gallery/_tile.html", {"g": generation})
    return _back(request, slug)


@login_required
@require_POST
def image_rate(request, slug, pk):
    access = team_for_member(request, slug)
    generation = get_object_or_404(Generation, team=access.team, pk=pk)
    try:
        generation_rate(generation=generation, rating=int(request.POST.get("rating", "")))
    except (ValueError, SubmitRefused):
        return HttpResponseBadRequest("A rating is 1 to 5 (0 clears it).")
    if request.htmx:
        return render(request, "studio/gallery/_tile.html", {"g": generation})
    return _back(request, slug)


def _selected_ids(data) -> list[int]:
    return parse_ids(data.getlist("ids"))


@login_required
@require_http_methods(["GET", "POST"])
def promote_confirm(request, slug):
    """The price of promoting the chosen drafts at 2K and at 4K, before anything is held."""
    access = team_for_member(request, slug)
    data = request.POST if request.method == "POST" else request.GET
    drafts = generations_selected(team=access.team, ids=_selected_ids(data))
    return _promote_page(request, access=access, drafts=drafts, next_url=data.get("next", ""))


def _promote_page(request, *, access, drafts, next_url, error="", status=200):
    ready = [g for g in drafts if g.tier == catalog.FLASH and g.status == Status.SUCCEEDED]
    if drafts and not ready and not error:
        error = "Only finished Flash drafts can be promoted to Pro."
    elif len(ready) < len(drafts) and not error:
        left_out = len(drafts) - len(ready)
        error = (
            f"{left_out} of the chosen images {pluralize(left_out, 'is,are')} "
            f"not {pluralize(left_out, 'a ,')}finished Flash draft{pluralize(left_out)}."
        )
    available = wallet_balance(access.team)[0]
    # What the server would refuse, said before the click: a button that cannot
    # succeed is disabled with its reason beside it.
    blocker = _promote_blocker(access=access, member=request.user, count=len(ready))
    limits = _pro_limits(access.team, request.user)
    options = []
    for size in PROMOTE_SIZES:
        try:
            price = (
                team_quote(team=access.team, tier=catalog.PRO, size=size, count=len(ready))[0]
                if ready
                else 0
            )
        except Refusal:
            price = None
        refusal = blocker
        if price is not None and not refusal:
            if price > available:
                refusal = f"Not enough credits: this needs {price:,}, {available:,} are available."
            for label, left in limits:
                if not refusal and price > left:
                    refusal = f"{label[0].upper()}{label[1:]} has {left:,} credits left."
        options.append({"size": size, "price": price, "refusal": refusal})
    context = {
        "drafts": ready,
        "options": options,
        "available": available,
        "error": error,
        "next": next_url if _safe(request, next_url) else "",
        # The standalone page posts as a plain form: a refusal is a page again,
        # never a second copy of the form opened in the page's dialog.
        "in_dialog": bool(request.htmx),
    }
    template = "studio/gallery/_promote.html" if request.htmx else "studio/gallery/promote.html"
    return render(request, template, context, status=status)


def _promote_blocker(*, access, member, count: int) -> str:
    """Why no size at all can be promoted (too many images, the member's Pro lane full), or ""."""
    if count > settings.PRO_MAX_COUNT:
        return (
            f"Pro renders at most {settings.PRO_MAX_COUNT} images at a time; "
            f"{count} are chosen. Choose fewer."
        )
    outstanding = outstanding_count(team=access.team, member=member, tier=catalog.PRO)
    cap = settings.LANE_MEMBER_OUTSTANDING_CAP
    if count and outstanding + count > cap:
        return (
            f"You have {outstanding} Pro images waiting or rendering; the limit is {cap}. "
            "Wait for some to finish."
        )
    return ""


def _pro_limits(team, member) -> list[tuple[str, int]]:
    """(label, credits left) of each member cap and budget that applies to Pro."""
    wallet = wallet_of(team)
    if wallet is None:
        return []
    return [
        (label, left)
        for label, left, _limit, tier in limits_left(wallet=wallet, member=member)
        if tier in ("", catalog.PRO)
    ]


@login_required
@require_POST
def promote(request, slug):
    access = team_for_member(request, slug)
    ids = _selected_ids(request.POST)
    try:
        # Promotions count against the same per-member submit limit as grids.
        throttle.hit("submit", str(request.user.pk), limit=settings.SUBMITS_PER_MINUTE)
        batch = generation_promote(
            team=access.team, member=request.user, generation_ids=ids,
            size=request.POST.get("size", ""), fresh=request.POST.get("fresh") == "1",
        )  # fmt: skip
    except throttle.Throttled as throttled:
        drafts = generations_selected(team=access.team, ids=ids)
        response = _promote_page(
            request, access=access, drafts=drafts, next_url=request.POST.get("next", ""),
            error=throttled.message, status=429,
        )  # fmt: skip
        response["Retry-After"] = str(throttled.retry_after)
        return response
    except SubmitRefused as refused:
        drafts = generations_selected(team=access.team, ids=ids)
        return _promote_page(
            request, access=access, drafts=drafts, next_url=request.POST.get("next", ""),
            error=refused.message, status=STATUS_FOR.get(refused.code, 400),
        )  # fmt: skip
    target = (
        f"{reverse('project', args=[slug, batch.project_id])}#grid-{batch.pk}"
        if batch.project_id
        else reverse("history", args=[slug])
    )
    if not request.htmx:
        return redirect(target)
    current = urlparse(request.htmx.current_url or "").path
    if batch.project_id and current == reverse("project", args=[slug, batch.project_id]):
        # Already on the project page: the new Pro grid slides in on top.
        grid = batch_grid(team=access.team, pk=batch.pk)
        response = render(request, "studio/gallery/_grid.html", {"grid": grid, "fresh": True})
        response["HX-Retarget"] = "#grids"
        response["HX-Reswap"] = "afterbegin"
        response["HX-Trigger"] = (
            '{"credits-changed": true, "dialog-close": true, "selection-clear": true}'
        )
        return response
    response = render(request, "studio/gallery/_promote_done.html", {"target": target})
    response["HX-Redirect"] = target
    return response


@login_required
@require_POST
def images_archive(request, slug):
    return _archive(request, slug, archived=True)


@login_required
@require_POST
def images_restore(request, slug):
    """Bring archived images back to their grids (from the history's archived view)."""
    return _archive(request, slug, archived=False)


def _archive(request, slug, *, archived: bool):
    access = team_for_member(request, slug)
    ids = _selected_ids(request.POST)
    changed = generations_archive(
        team=access.team, generation_ids=ids, actor=request.user, archived=archived
    )
    verb = "archived" if archived else "restored"
    if request.htmx:
        # Each tile leaves the page it was on, and so does a grid left with none.
        emptied = batches_emptied(team=access.team, generation_ids=ids) if archived else []
        context = {"ids": ids, "count": changed, "verb": verb, "emptied": emptied}
        return render(request, "studio/gallery/_archived.html", context)
    messages.success(request, f"{changed} image{pluralize(changed)} {verb}.")
    return _back(request, slug)


def _safe(request, url: str) -> bool:
    return bool(url) and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )


def _back(request, slug):
    next_url = request.POST.get("next", "")
    return redirect(next_url if _safe(request, next_url) else reverse("team", args=[slug]))
