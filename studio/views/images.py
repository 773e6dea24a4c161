"""One image: the lightbox page with every parameter, its version tree, edit and vary
forms, and the compare view of any two images of a tree."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from billing.services import Refusal
from generation import catalog
from generation.backends import PROVIDER_LABELS, backend_for, team_quote
from generation.imaging import MASK_MAX_BYTES
from generation.models import Kind
from generation.requests import parse_id, parse_ids
from generation.selectors import (
    COMPARE_MAX,
    compare_images,
    compare_nodes,
    compare_pair,
    generation_detail,
    version_tree,
)
from generation.services import SubmitRefused, edit_size, generation_edit, generation_vary

from .. import throttle
from ..review.selectors import image_comments
from ..teams import team_for_member
from .composer import STATUS_FOR

VARIATION_COUNT = 4


def _prices(team, generation) -> dict:
    """What one edit costs on each tier, and a grid of variations, for the price lines."""
    prices = {}
    asks = {
        "edit_flash": (catalog.FLASH, edit_size(catalog.FLASH, generation.size), 1),
        "edit_pro": (catalog.PRO, edit_size(catalog.PRO, generation.size), 1),
        "vary": (generation.tier, generation.size, VARIATION_COUNT),
    }
    for name, (tier, size, count) in asks.items():
        try:
            credits, _ = team_quote(team=team, tier=tier, size=size, count=count)
        except Refusal:
            continue  # no price for it: the submit itself will say so
        prices[name] = {"credits": credits, "tier": catalog.TIER_LABELS[tier], "size": size}
    return prices


def _masks(team) -> dict:
    """What each tier's model does with a painted mask, for the mask editor's notes."""
    masks = {}
    for tier in catalog.TIERS:
        backend = backend_for(team, tier)
        masks[tier] = {"kind": backend.mask, "label": backend.label}
    return masks


def _iterate_context(access, generation, **extra) -> dict:
    """What the edit and vary forms need (the image page, and the viewer's edit panel)."""
    return {
        "access": access,
        "generation": generation,
        "chain_limit": settings.EDIT_CHAIN_MAX_TURNS,
        "chain_full": generation.edge == Kind.EDIT
        and generation.chain_turns >= settings.EDIT_CHAIN_MAX_TURNS,
        "pro_offers_aspect": generation.aspect in catalog.ASPECTS[catalog.PRO],
        "variation_count": VARIATION_COUNT,
        "prices": _prices(access.team, generation) if generation.asset_id else {},
        "masks": _masks(access.team) if generation.asset_id else {},
        # What clients wrote about it on the team's review links (every member reads them).
        "client_comments": image_comments(team=access.team, generation_id=generation.pk),
        **extra,
    }


def _image_context(access, detail, **extra) -> dict:
    generation = detail.generation
    return _iterate_context(
        access,
        generation,
        detail=detail,
        tree=version_tree(team=access.team, pk=generation.pk),
        pixels=catalog.pixel_size(generation.size, generation.aspect),
        provider_label=PROVIDER_LABELS.get(generation.provider, generation.provider),
        render_seconds=(
            (generation.finished_at - generation.started_at).total_seconds()
            if generation.finished_at and generation.started_at
            else None
        ),
        **extra,
    )


@login_required
@require_GET
def image_page(request, slug, pk):
    access = team_for_member(request, slug)
    detail = generation_detail(team=access.team, pk=pk)
    if detail is None:
        raise Http404
    return render(request, "studio/gallery/image.html", _image_context(access, detail))


def _made(slug, batch):
    """Where a new edit or variation grid is watched: its project, else the history."""
    if batch.project_id:
        return redirect(f"{reverse('project', args=[slug, batch.project_id])}#grid-{batch.pk}")
    return redirect(reverse("history", args=[slug]))


def _refused_page(request, access, pk, message: str, status: int, **form):
    detail = generation_detail(team=access.team, pk=pk)
    if detail is None:
        raise Http404
    context = _image_context(access, detail, iterate_error=message, **form)
    response = render(request, "studio/gallery/image.html", context, status=status)
    return response


def _submit(request, access, pk, make, **form):
    try:
        # Edits and variations count against the same per-member limit as grids.
        throttle.hit("submit", str(request.user.pk), limit=settings.SUBMITS_PER_MINUTE)
        batch = make()
    except throttle.Throttled as throttled:
        response = _refused_page(request, access, pk, throttled.message, 429, **form)
        response["Retry-After"] = str(throttled.retry_after)
        return response
    except SubmitRefused as refused:
        if refused.code == "not_found":
            raise Http404
        status = STATUS_FOR.get(refused.code, 400)
        return _refused_page(request, access, pk, refused.message, status, **form)
    return _made(access.team.slug, batch)


@login_required
@require_GET
def image_edit_panel(request, slug, pk):
    """The edit and vary forms alone: what the viewer over the grid shows on E."""
    access = team_for_member(request, slug)
    detail = generation_detail(team=access.team, pk=pk)
    if detail is None:
        raise Http404
    context = _iterate_context(access, detail.generation, in_viewer=True)
    return render(request, "studio/gallery/_iterate.html", context)


def _uploaded_mask(request) -> bytes | None:
    """The painted mask the page's editor sends with the form, read at most one byte past
    the limit (so a huge upload is refused by its size, not read whole); None without one."""
    upload = request.FILES.get("mask")
    if upload is None or not upload.size:
        return None
    return upload.read(MASK_MAX_BYTES + 1)


@login_required
@require_POST
def image_edit(request, slug, pk):
    access = team_for_member(request, slug)
    instructions = request.POST.get("instructions", "")
    tier = request.POST.get("tier", catalog.FLASH)
    mask = _uploaded_mask(request)
    return _submit(
        request, access, pk,
        lambda: generation_edit(
            team=access.team, member=request.user, source=pk, instructions=instructions,
            tier=tier, fresh=request.POST.get("fresh") == "1", mask=mask,
        ),
        instructions_typed=instructions, tier_chosen=tier,
    )  # fmt: skip


@login_required
@require_POST
def image_vary(request, slug, pk):
    access = team_for_member(request, slug)
    return _submit(
        request, access, pk,
        lambda: generation_vary(
            team=access.team, member=request.user, source=pk,
            strength=request.POST.get("strength", ""),
            count=request.POST.get("count", VARIATION_COUNT),
        ),
    )  # fmt: skip


@login_required
@require_GET
def compare(request, slug, pk):
    """Two images side by side, or one over the other with a slider: a Pro render and its
    draft, an image and its source, or any two nodes of a version tree (`?with=`)."""
    access = team_for_member(request, slug)
    other = None
    if "with" in request.GET:
        other = parse_id(request.GET["with"])
        pair = compare_nodes(team=access.team, pk=pk, other=other) if other else None
    else:
        pair = compare_pair(team=access.team, pk=pk)
    if pair is None:
        raise Http404
    mode = "slider" if request.GET.get("mode") == "slider" else "side"
    first, second = pair
    return _compare_page(
        request,
        access=access,
        images=list(pair),
        mode=mode,
        pro=second,
        # The mode links keep the pair: this page's image and the one it is compared with.
        with_query=f"with={other}&" if other else "",
        promotion_pair=second.edge == Kind.PROMOTION and second.parent_id == first.pk,
    )


@login_required
@require_GET
def compare_many(request, slug):
    """Two to four images side by side (drafts and their Pro renders, or drafts), zoom in sync."""
    access = team_for_member(request, slug)
    ids = parse_ids(request.GET.get("ids", "").split(","), limit=COMPARE_MAX)
    images = compare_images(team=access.team, ids=ids)
    if len(images) < 2:
        raise Http404
    return _compare_page(request, access=access, images=images, mode="side", pro=None)


def _compare_page(request, *, access, images, mode, pro, with_query="", promotion_pair=False):
    # Where "back" goes: the grid of the first image, with that grid loaded.
    context = {
        "access": access,
        "images": images,
        "mode": mode,
        "pro": pro,
        "draft": images[0] if pro else None,
        "back": images[0],
        "with_query": with_query,
        "promotion_pair": promotion_pair,
    }
    return render(request, "studio/gallery/compare.html", context)
