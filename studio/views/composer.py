"""The composer: what a person sets before a grid is made, its live price, and the submit.

The price line and the errors come from the same parsing the submit uses
(`parse_batch_request`), so what the line promises is what the hold takes.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.selectors import member_limits, wallet_balance
from billing.services import Refusal
from generation import catalog
from generation.backends import team_offer, team_quote
from generation.campaigns import parse_permutation_request, permutations_submit
from generation.imaging import UPLOAD_MAX_BYTES
from generation.models import Generation, Project
from generation.permutations import has_choices
from generation.requests import InvalidRequest, clean_prompt, parse_batch_request, parse_id
from generation.selectors import batch_cache_hits, batch_grid, references_for_team
from generation.services import (
    SubmitRefused,
    batch_submit,
    lane_price_percent,
    reference_upload,
)

from .. import throttle
from ..teams import team_for_member

DEFAULTS = {"tier": catalog.FLASH, "size": "1K", "aspect": "1:1", "count": "12", "prompt": ""}
STATUS_FOR = {"invalid": 400, "credits": 402, "busy": 429, "not_found": 404}
BOX = 22  # px: the longer side of an aspect-ratio swatch


def _aspect_box(aspect: str) -> dict:
    width, height = (int(part) for part in aspect.split(":"))
    scale = BOX / max(width, height)
    return {"width": max(3, round(width * scale)), "height": max(3, round(height * scale))}


ASPECT_BOXES = {aspect: _aspect_box(aspect) for aspect in catalog.ASPECTS[catalog.FLASH]}


def _choices(team) -> tuple[list[dict], list[dict]]:
    """Sizes and ratios, each with the tiers whose routed model can make it
    (the composer's script disables the others for the chosen tier)."""
    offers = {tier: team_offer(team, tier) for tier in catalog.TIERS}

    def tiers(attribute: str, value: str) -> str:
        return " ".join(t for t, o in offers.items() if value in getattr(o, attribute))

    sizes = [{"value": s, "tiers": tiers("sizes", s)} for s in catalog.SIZES[catalog.FLASH]]
    aspects = [{"value": a, "tiers": tiers("aspects", a), **box} for a, box in ASPECT_BOXES.items()]
    return sizes, aspects


def settings_from(generation: Generation) -> dict:
    """Composer values that reproduce an image: its prompt, tier, size, ratio and seed."""
    return {
        "prompt": generation.prompt,
        "tier": generation.tier,
        "size": generation.size,
        "aspect": generation.aspect,
        "count": "1",
        "seed": str(generation.seed),
        "seed_mode": "locked",
        "references": [str(r.pk) for r in generation.batch.references.all()],
    }


def composer_context(*, team, project, values=None, errors=None) -> dict:
    values = {**DEFAULTS, **(values or {})}
    sizes, aspects = _choices(team)
    if "seed_mode" not in values:
        values["seed_mode"] = "locked" if values.get("seed") else "random"
    return {
        "project": project,
        "values": values,
        "errors": errors or {},
        "tiers": [(tier, catalog.TIER_LABELS[tier]) for tier in catalog.TIERS],
        "sizes": sizes,
        "aspects": aspects,
        "references": references_for_team(team),
        "chosen_references": set(values.get("references") or []),
        "max_count": settings.FLASH_MAX_COUNT,
        "pro_max_count": settings.PRO_MAX_COUNT,
    }


def _form_values(data) -> dict:
    values = {name: data.get(name, "") for name in ("prompt", "tier", "size", "aspect", "count")}
    values["seed_mode"] = data.get("seed_mode", "random")
    values["seed"] = data.get("seed", "").strip() if values["seed_mode"] == "locked" else ""
    values["per_line"] = data.get("per_line", "")
    values["fresh"] = data.get("fresh", "")
    values["lane"] = data.get("lane", "")
    values["references"] = data.getlist("references")
    for name in ("sizes", "aspects", "seeds"):
        values[name] = data.get(name, "")
    return values


def _is_permutation(values: dict) -> bool:
    """Choices in braces or a list of sizes, ratios or seeds: many prompts in one."""
    if any(values.get(name) for name in ("sizes", "aspects", "seeds")):
        return True
    try:
        return not values.get("per_line") and has_choices(clean_prompt(values.get("prompt", "")))
    except InvalidRequest:
        return True  # an unbalanced brace: let the permutation parser say where


def _permutation_price(request, access, values, context):
    """The count and price of every image a permutation prompt expands into."""
    permutation = parse_permutation_request(values, request.GET.getlist("references"))
    tier = permutation.base.tier
    offer = team_offer(access.team, tier)
    images: dict[str, int] = {}
    for variant in permutation.variants:
        problems = offer.problems(variant.size, variant.aspect)
        if problems:
            raise InvalidRequest(problems)
        images[variant.size] = images.get(variant.size, 0) + permutation.base.count
    price = 0
    for size, count in images.items():
        unit, backend = team_quote(team=access.team, tier=tier, size=size, count=1)
        price += unit * count
    base = permutation.base
    context.update(
        count=permutation.total,
        variants=len(permutation.variants),
        tier_label=catalog.TIER_LABELS[tier],
        size=" / ".join(images),
        pixels="{} × {}".format(*offer.pixel_size(base.size, base.aspect)),
        backend=backend.label,
        price=price,
        short=price > context["available"],
        limits=member_limits(access.team, request.user),
    )


@login_required
@require_GET
def reuse(request, slug, pk):
    """ "Use these settings": the composer of the image's project, filled from the image."""
    access = team_for_member(request, slug)
    generation = get_object_or_404(
        Generation.objects.select_related("batch__project"), team=access.team, pk=pk
    )
    project = generation.batch.project
    if project is None or project.archived:
        return redirect("team", slug=slug)
    if not request.htmx:
        return redirect(f"{reverse('project', args=[slug, project.pk])}?from={pk}#composer")
    values = settings_from(generation)
    context = composer_context(team=access.team, project=project, values=values)
    return render(request, "studio/gallery/_composer.html", context)


@login_required
@require_GET
def price_line(request, slug):
    """'50 × Flash 1K = 3,350 credits · 12,000 available · your Pro limit: 4,600 left'."""
    access = team_for_member(request, slug)
    context = {"available": wallet_balance(access.team)[0], "problem": ""}
    values = _form_values(request.GET)
    if _is_permutation(values):
        try:
            _permutation_price(request, access, values, context)
        except InvalidRequest as invalid:
            context["problem"] = next(iter(invalid.errors.values()))
        except Refusal as refusal:
            context["problem"] = refusal.message
        return render(request, "studio/gallery/_price.html", context)
    try:
        batch_request = parse_batch_request(
            _form_values(request.GET), request.GET.getlist("references")
        )
    except InvalidRequest as invalid:
        context["problem"] = next(iter(invalid.errors.values()))
        return render(request, "studio/gallery/_price.html", context)
    offer = team_offer(access.team, batch_request.tier)
    problems = offer.problems(batch_request.size, batch_request.aspect)
    if problems:
        context["problem"] = next(iter(problems.values()))
        return render(request, "studio/gallery/_price.html", context)
    cached = batch_cache_hits(team=access.team, request=batch_request)
    try:
        unit, backend = team_quote(
            team=access.team,
            tier=batch_request.tier,
            size=batch_request.size,
            count=1,
            price_percent=lane_price_percent(batch_request.lane),
        )
    except Refusal as refusal:
        context["problem"] = refusal.message
        return render(request, "studio/gallery/_price.html", context)
    # What the hold will take: only the images the cache cannot serve.
    price = unit * (batch_request.total - cached)
    context.update(
        count=batch_request.total,
        cached=cached,
        tier_label=catalog.TIER_LABELS[batch_request.tier],
        size=batch_request.size,
        pixels="{} × {}".format(*offer.pixel_size(batch_request.size, batch_request.aspect)),
        backend=backend.label,
        batch_percent=lane_price_percent(batch_request.lane)
        if batch_request.lane == "batch"
        else None,
        price=price,
        short=price > context["available"],
        limits=member_limits(access.team, request.user),
    )
    return render(request, "studio/gallery/_price.html", context)


def _refused(request, *, access, project, errors: dict, status: int):
    context = composer_context(
        team=access.team, project=project, values=_form_values(request.POST), errors=errors
    )
    if request.htmx:
        response = render(request, "studio/gallery/_composer.html", context, status=status)
        response["HX-Retarget"] = "#composer"
        response["HX-Reswap"] = "outerHTML"
        return response
    from .projects import project_page_context

    context.update(project_page_context(request, access=access, project=project))
    return render(request, "studio/gallery/project.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def submit(request, slug, pk):
    access = team_for_member(request, slug)
    project = get_object_or_404(Project, team=access.team, pk=pk, archived=False)
    if request.method == "GET":
        # A refusal without JavaScript is drawn at this address (the form keeps
        # what was typed); opening it again later goes back to the project.
        return redirect("project", slug, pk)
    try:
        throttle.hit("submit", str(request.user.pk), limit=settings.SUBMITS_PER_MINUTE)
        values = _form_values(request.POST)
        if _is_permutation(values):
            return _submit_permutations(request, access=access, project=project, values=values)
        batch_request = parse_batch_request(values, request.POST.getlist("references"))
        batch = batch_submit(
            team=access.team, member=request.user, request=batch_request, project=project
        )
    except throttle.Throttled as throttled:
        response = _refused(request, access=access, project=project,
                            errors={"form": throttled.message}, status=429)  # fmt: skip
        response["Retry-After"] = str(throttled.retry_after)
        return response
    except InvalidRequest as invalid:
        return _refused(request, access=access, project=project, errors=invalid.errors, status=400)
    except SubmitRefused as refused:
        errors = {**refused.errors, "form": refused.message}
        return _refused(request, access=access, project=project, errors=errors,
                        status=STATUS_FOR.get(refused.code, 400))  # fmt: skip
    if not request.htmx:
        return redirect(f"{reverse('project', args=[slug, pk])}#grid-{batch.pk}")
    grid = batch_grid(team=access.team, pk=batch.pk)
    response = render(request, "studio/gallery/_grid.html", {"grid": grid, "fresh": True})
    response["HX-Trigger"] = "credits-changed"
    return response


def _submit_permutations(request, *, access, project, values):
    """Every batch of a permutation prompt; the grids arrive newest first, as one would."""
    permutation = parse_permutation_request(values, request.POST.getlist("references"))
    batches = permutations_submit(
        team=access.team, member=request.user, requests=[permutation], project=project
    )
    if not request.htmx:
        return redirect(f"{reverse('project', args=[access.team.slug, project.pk])}#grids")
    grids = [batch_grid(team=access.team, pk=batch.pk) for batch in reversed(batches)]
    response = render(request, "studio/gallery/_grids_new.html", {"grids": grids, "fresh": True})
    response["HX-Trigger"] = "credits-changed"
    return response


@login_required
@require_POST
def reference_new(request, slug):
    """Upload a reference on the spot; it joins the team library and is ticked."""
    access = team_for_member(request, slug)
    upload = request.FILES.get("image")
    chosen = request.POST.getlist("references")
    error = ""
    if upload is None:
        error = "Choose an image file to upload."
    elif upload.size > UPLOAD_MAX_BYTES:
        # Refused before a byte of it is read into memory.
        error = "That file is larger than 20 MB; upload a smaller image."
    else:
        try:
            reference, _ = reference_upload(
                team=access.team, member=request.user,
                name=request.POST.get("reference_name") or upload.name, data=upload.read(),
            )  # fmt: skip
            chosen.append(str(reference.pk))
        except SubmitRefused as refused:
            error = refused.message
    if not request.htmx:
        project = parse_id(request.POST.get("project", ""))
        if project is None:
            raise Http404
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "The reference is in the team library.")
        return redirect("project", slug=slug, pk=project)
    context = {
        "references": references_for_team(access.team),
        "chosen_references": set(chosen),
        "errors": {"references": error} if error else {},
    }
    return render(request, "studio/gallery/_references.html", context, status=400 if error else 200)
