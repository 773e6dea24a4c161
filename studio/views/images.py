"""One image: the lightbox page with every parameter and its lineage, and the compare views."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generation import catalog
from generation.backends import PROVIDER_LABELS
from generation.requests import parse_ids
from generation.selectors import COMPARE_MAX, compare_images, compare_pair, generation_detail

from ..teams import team_for_member


@login_required
@require_GET
def image_page(request, slug, pk):
    access = team_for_member(request, slug)
    detail = generation_detail(team=access.team, pk=pk)
    if detail is None:
        raise Http404
    generation = detail.generation
    context = {
        "access": access,
        "detail": detail,
        "generation": generation,
        "pixels": catalog.pixel_size(generation.size, generation.aspect),
        "provider_label": PROVIDER_LABELS.get(generation.provider, generation.provider),
        "render_seconds": (
            (generation.finished_at - generation.started_at).total_seconds()
            if generation.finished_at and generation.started_at
            else None
        ),
    }
    return render(request, "studio/gallery/image.html", context)


@login_required
@require_GET
def compare(request, slug, pk):
    """A Pro render beside its Flash draft: side by side, or one over the other with a slider."""
    access = team_for_member(request, slug)
    pair = compare_pair(team=access.team, pk=pk)
    if pair is None:
        raise Http404
    mode = "slider" if request.GET.get("mode") == "slider" else "side"
    return _compare_page(request, access=access, images=list(pair), mode=mode, pro=pair[1])


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


def _compare_page(request, *, access, images, mode, pro):
    # Where "back" goes: the grid of the first image, with that grid loaded.
    first = images[0]
    context = {
        "access": access,
        "images": images,
        "mode": mode,
        "pro": pro,
        "draft": images[0] if pro else None,
        "back": first,
    }
    return render(request, "studio/gallery/compare.html", context)
