"""Download a selection of images as one ZIP, streamed while it is written.

The archive is never built in memory or on disk: zipfile writes into a pipe
whose bytes are handed to the response after every chunk, so the first
bytes reach the browser at once and memory stays flat for 50 4K originals.
The originals keep the parameters embedded in their PNG text chunks.
"""

import zipfile

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from generation.requests import parse_ids
from generation.selectors import generations_for_download

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


def zip_stream(generations):
    pipe = _Pipe()
    # PNGs are already compressed: storing them is as small and much faster.
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as archive:
        for generation in generations:
            name = download_name(generation)  # unique: it ends with the image's id
            stamp = timezone.localtime(generation.finished_at or generation.created)
            info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
            try:
                source = default_storage.open(generation.asset.original.name, "rb")
            except FileNotFoundError:
                continue
            with source, archive.open(info, "w", force_zip64=True) as entry:
                while chunk := source.read(CHUNK):
                    entry.write(chunk)
                    yield pipe.take()
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
