"""Download a selection of images as one ZIP, streamed while it is written,
or as a printable PDF contact sheet.

The archive is never built in memory or on disk: zipfile writes into a pipe
whose bytes are handed to the response after every chunk, so the first
bytes reach the browser at once and memory stays flat for 50 4K originals.
The originals keep the parameters embedded in their PNG text chunks, and a
manifest (CSV and JSON) at the end lists every file with how it was made.
"""

import zipfile

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from generation.requests import parse_id, parse_ids
from generation.selectors import generations_for_download, generations_for_sheet

from ..exports import (
    contact_sheet_pdf,
    manifest_csv,
    manifest_json,
    manifest_row,
    original_as_its_own,
    sheet_title,
    source_of,
)
from ..teams import team_for_member
from .media import download_name

CHUNK = 256 * 1024
MAX_IMAGES = 500


class _Pipe:
    """A write-only file: zipfile writes into it, the generator takes what was written."""

    def __init__(self):
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


# Unix permissions of a plain file anyone may read: without them zipfile
# writes 0600 and unzipped images are readable by their owner only.
FILE_MODE = 0o100644


def _entry(name: str, moment) -> zipfile.ZipInfo:
    stamp = timezone.localtime(moment)
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.create_system = 3  # Unix, so unzip reads the mode below
    info.external_attr = FILE_MODE << 16
    return info


def _read_all(source):
    while chunk := source.read(CHUNK):
        yield chunk


def zip_stream(generations, *, name_for=download_name, read=None, manifest=True):
    """The ZIP of these generations' originals and their manifest.

    A review link's delivery names the entries itself (`name_for`), reads
    each original through `read` (which drops the prompt and seed) and
    leaves the manifest out.
    """
    pipe = _Pipe()
    rows = []
    # PNGs are already compressed: storing them is as small and much faster.
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as archive:
        for generation in generations:
            name = name_for(generation)  # unique: download_name ends with the image's id
            info = _entry(name, generation.finished_at or generation.created)
            try:
                source = default_storage.open(generation.asset.original.name, "rb")
            except FileNotFoundError:
                continue
            with source, archive.open(info, "w", force_zip64=True) as entry:
                if read is None and generation.cached:
                    # A cache hit's stored file names the image first rendered;
                    # the copy in the ZIP names this one (and where it came from).
                    original = source.read()
                    fixed = original_as_its_own(generation, original)
                    generation.cached_from = source_of(original)
                    entry.write(fixed)
                    yield pipe.take()
                for chunk in (read or _read_all)(source):
                    entry.write(chunk)
                    yield pipe.take()
            rows.append(manifest_row(generation, name))
        if manifest:
            now = timezone.now()
            archive.writestr(_entry("manifest.csv", now), manifest_csv(rows))
            archive.writestr(_entry("manifest.json", now), manifest_json(rows))
    yield pipe.take()


def _ids(values) -> list[int]:
    return parse_ids(values, limit=MAX_IMAGES)


@login_required
@require_http_methods(["GET", "POST"])
def download_zip(request, slug):
    access = team_for_member(request, slug)
    data = request.POST if request.method == "POST" else request.GET
    generations = generations_for_download(team=access.team, ids=_ids(data.getlist("ids")))
    if not generations:
        return HttpResponseBadRequest("Choose finished images to download.")
    response = StreamingHttpResponse(zip_stream(generations), content_type="application/zip")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    count = len(generations)
    filename = f"{access.team.slug}_{count}-image{pluralize(count)}_{stamp}.zip"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def contact_sheet(request, slug):
    """A PDF contact sheet of a selection (`ids`) or of a whole grid (`batch`)."""
    access = team_for_member(request, slug)
    data = request.POST if request.method == "POST" else request.GET
    batch_id = parse_id(data.get("batch", ""))
    generations = generations_for_sheet(
        team=access.team, ids=_ids(data.getlist("ids")), batch_id=batch_id
    )[:MAX_IMAGES]
    if not generations:
        return HttpResponseBadRequest("Choose images or a grid for the contact sheet.")
    batch = generations[0].batch if batch_id is not None else None
    title = sheet_title(generations, batch=batch)
    pdf = contact_sheet_pdf(generations, title=title, team_name=access.team.name)
    response = HttpResponse(pdf, content_type="application/pdf")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'inline; filename="{access.team.slug}_contact-sheet_{stamp}.pdf"'
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
