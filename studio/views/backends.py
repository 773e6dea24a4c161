"""Which backend renders each tier for the team: everyone sees it, owners choose."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from generation import catalog, model_catalog
from generation.backends import BackendRefused, backend_set, backends_for, choices

from ..models import Role
from ..teams import team_for_member


@login_required
@require_http_methods(["GET", "POST"])
def team_backends(request, slug):
    access = team_for_member(request, slug)
    status = 200
    if request.method == "POST":
        if access.role != Role.OWNER:
            raise PermissionDenied("Only the team's owners choose its backends.")
        try:
            for tier in catalog.TIERS:
                backend_set(
                    team=access.team,
                    tier=tier,
                    value=request.POST.get(tier, ""),
                    member=request.user,
                )
        except BackendRefused as refusal:
            messages.error(request, str(refusal))
            status = 400
        else:
            messages.success(
                request, "Backends saved. New grids use them; running ones finish as they started."
            )
            return redirect("team-backends", slug=slug)
    current = backends_for(access.team)
    tiers = [
        {
            "tier": tier,
            "label": catalog.TIER_LABELS[tier],
            "current": current[tier],
            "choices": choices(tier),
            "offer": model_catalog.offer(tier, current[tier].provider, current[tier].model),
        }
        for tier in catalog.TIERS
    ]
    return render(
        request,
        "studio/backends.html",
        {"access": access, "tiers": tiers, "can_change": access.role == Role.OWNER},
        status=status,
    )
