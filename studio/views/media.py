"""Images, served only to members of the team that owns them.

Files are content-addressed, so a URL never changes its bytes: browsers may
keep them for a year (privately: they are a team's work, not public).
"""

import os
import re

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django.utils.text import slugify

from generation.models import Generation, Reference

from ..exports import original_as_its_own
from ..teams import team_for_member

KINDS = {"thumb": "thumbnail", "preview": "preview", "original": "original"}
# Small images are their own preview, so the type follows the stored file.
CONTENT_TYPES = {".webp": "image/webp", ".png": "image/png", ".jpg": "image/jpeg"}
CACHE = "private, max-age=31536000, immutable"


def download_name(generation: Generation) -> str:
    """A file name that says what the image is: prompt words, seed, tier and size."""
    words = slugify(re.sub(r"\s+", " ", generation.prompt))[:60].strip("-") or "image"
    return f"{words}_seed{generation.seed}_{generation.tier}-{generation.size}_{generation.pk}.png"


def serve_file(
    request,
    name: str,
    content_type: str,
    etag: str,
    *,
    attachment_name: str = "",
    generation: Generation | None = None,
):
    """A stored file, cached by the browser; `generation` names a cache hit's original.

    A cache hit shares the stored file of the image first rendered, whose
    embedded metadata names that image; downloaded under the hit's own name
    it is corrected to name the hit (and where it came from), so the file
    name and the metadata agree.
    """
    if generation is not None and generation.cached:
        etag = etag[:-1] + f'-{generation.pk}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    elif generation is not None and generation.cached:
        try:
            with default_storage.open(name, "rb") as handle:
                data = original_as_its_own(generation, handle.read())
        except FileNotFoundError:
            raise Http404
        response = HttpResponse(data, content_type=content_type)
        if attachment_name:
            response["Content-Disposition"] = f'attachment; filename="{attachment_name}"'
    else:
        try:
            handle = default_storage.open(name, "rb")
        except FileNotFoundError:
            raise Http404
        response = FileResponse(
            handle,
            content_type=content_type,
            as_attachment=bool(attachment_name),
            filename=attachment_name or None,
        )
    response["ETag"] = etag
    response["Cache-Control"] = CACHE
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def generation_image(request, slug: str, pk: int, kind: str):
    access = team_for_member(request, slug)
    if kind not in KINDS:
        raise Http404
    generation = get_object_or_404(
        Generation.objects.select_related("asset"), pk=pk, team=access.team, asset__isnull=False
    )
    asset = generation.asset
    name = getattr(asset, KINDS[kind]).name
    content_type = CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
    attachment = download_name(generation) if request.GET.get("download") else ""
    return serve_file(
        request,
        name,
        content_type,
        f'"{asset.sha256}-{kind}"',
        attachment_name=attachment,
        generation=generation if kind == "original" else None,
    )


@login_required
def reference_image(request, slug: str, pk: int):
    access = team_for_member(request, slug)
    reference = get_object_or_404(Reference, pk=pk, team=access.team)
    return serve_file(request, reference.image.name, reference.mime_type, f'"{reference.sha256}"')
