"""Campaigns: the team's list, one campaign's page (progress, budget, its grids), and what a
person does to it: submit permutations, import a CSV of prompts, pause, resume, cancel.

Pausing, resuming and canceling are for the person who started the campaign and
the team's owners and admins, as canceling a grid is.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from generation import catalog
from generation.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_grids,
    campaign_pause,
    campaign_progress,
    campaign_resume,
    campaigns_for_team,
    parse_campaign_csv,
    parse_permutation_request,
    permutations_submit,
)
from generation.models import Campaign
from generation.requests import InvalidRequest
from generation.services import SubmitRefused

from ..review.selectors import client_marks_on_grids
from ..teams import team_for_member
from .composer import STATUS_FOR

SUBMIT_DEFAULTS = {"tier": catalog.FLASH, "size": "1K", "aspect": "1:1", "count": "1",
                   "prompt": "", "aspects": "", "sizes": "", "seeds": ""}  # fmt: skip
FIELDS = ("prompt", "tier", "size", "aspect", "count", "aspects", "sizes", "seeds", "seed")


@login_required
@require_GET
def campaign_list(request, slug):
    access = team_for_member(request, slug)
    context = {"access": access, "campaigns": campaigns_for_team(access.team), "values": {}}
    return render(request, "studio/campaigns/list.html", context)


@login_required
@require_POST
def campaign_new(request, slug):
    access = team_for_member(request, slug)
    try:
        campaign = campaign_create(
            team=access.team, member=request.user,
            name=request.POST.get("name", ""), budget=request.POST.get("budget", ""),
        )  # fmt: skip
    except InvalidRequest as invalid:
        context = {"access": access, "campaigns": campaigns_for_team(access.team),
                   "errors": invalid.errors, "values": request.POST}  # fmt: skip
        return render(request, "studio/campaigns/list.html", context, status=400)
    return redirect("campaign", slug=slug, pk=campaign.pk)


def _page(request, *, access, campaign, values=None, errors=None, status=200):
    grids = campaign_grids(team=access.team, campaign=campaign)
    client_marks_on_grids(team=access.team, grids=grids)
    context = {
        "access": access,
        "campaign": campaign,
        "progress": campaign_progress(campaign),
        "grids": grids,
        "values": {**SUBMIT_DEFAULTS, **(values or {})},
        "errors": errors or {},
        "tiers": [(tier, catalog.TIER_LABELS[tier]) for tier in catalog.TIERS],
        "sizes": catalog.SIZES[catalog.FLASH],
        "aspects": catalog.ASPECTS[catalog.FLASH],
        "may_manage": _may_manage(access, campaign, request.user),
    }
    return render(request, "studio/campaigns/campaign.html", context, status=status)


def _may_manage(access, campaign, user) -> bool:
    return access.manages_team or campaign.created_by_id == user.pk


@login_required
@require_GET
def campaign_page(request, slug, pk):
    access = team_for_member(request, slug)
    campaign = get_object_or_404(Campaign, team=access.team, pk=pk)
    if request.htmx:
        # The progress panel asking again: just the panel (two queries).
        context = {"campaign": campaign, "progress": campaign_progress(campaign)}
        return render(request, "studio/campaigns/_progress.html", context)
    return _page(request, access=access, campaign=campaign)


@login_required
@require_POST
def campaign_submit(request, slug, pk):
    """Permutations typed in the form, or one request per row of an uploaded CSV."""
    access = team_for_member(request, slug)
    campaign = get_object_or_404(Campaign, team=access.team, pk=pk)
    values = {name: request.POST.get(name, "") for name in FIELDS}
    if values["seed"]:
        values["seed_mode"] = "locked"
    importing = request.POST.get("action") == "csv"
    upload = request.FILES.get("csv")
    try:
        if importing and upload is None:
            raise InvalidRequest({"csv": "Choose a CSV file to import."})
        if importing:
            defaults = {k: v for k, v in values.items() if k in ("tier", "size", "aspect", "count")}
            requests = parse_campaign_csv(upload.read(), defaults)
        else:
            requests = [parse_permutation_request(values)]
        batches = permutations_submit(
            team=access.team, member=request.user, requests=requests, campaign=campaign
        )
    except InvalidRequest as invalid:
        return _page(request, access=access, campaign=campaign, values=values,
                     errors=invalid.errors, status=400)  # fmt: skip
    except SubmitRefused as refused:
        return _page(request, access=access, campaign=campaign, values=values,
                     errors={**refused.errors, "form": refused.message},
                     status=STATUS_FOR.get(refused.code, 400))  # fmt: skip
    images = sum(batch.count for batch in batches)
    messages.success(request, f"{images:,} images in {len(batches)} grids are on their way.")
    return redirect("campaign", slug=slug, pk=pk)


def _change(request, slug, pk, change, done: str):
    access = team_for_member(request, slug)
    campaign = get_object_or_404(Campaign, team=access.team, pk=pk)
    if not _may_manage(access, campaign, request.user):
        raise PermissionDenied(
            "Only the person who started this campaign, or an owner or admin, can change it."
        )
    change(campaign)
    messages.success(request, done)
    return redirect("campaign", slug=slug, pk=pk)


@login_required
@require_POST
def campaign_pause_view(request, slug, pk):
    return _change(request, slug, pk, lambda c: campaign_pause(campaign=c),
                   "Paused: queued images wait until you resume.")  # fmt: skip


@login_required
@require_POST
def campaign_resume_view(request, slug, pk):
    return _change(request, slug, pk, lambda c: campaign_resume(campaign=c), "Resumed.")


@login_required
@require_POST
def campaign_cancel_view(request, slug, pk):
    # The site cancels every batch: the person may manage the campaign, whoever submitted them.
    return _change(request, slug, pk, lambda c: campaign_cancel(campaign=c),
                   "Canceled: queued images were released, nothing more is charged.")  # fmt: skip
