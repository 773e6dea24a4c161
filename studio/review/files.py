"""Serving a review link's images: previews for a review, originals for a delivery.

Nothing here may be cached past the link's life: every response says
`no-cache`, so the browser asks again (cheaply, with the ETag) and the view
checks the link each time; a revoked link stops even an image already open.

A stored original carries its prompt and seed in PNG text chunks, and a
small image's preview *is* its original. Both are streamed with the text
chunks dropped (chunk by chunk, no decoding) unless the link shows prompts.
"""

import hashlib
import os
import struct

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponseNotModified, StreamingHttpResponse

from generation.imaging import PNG_SIGNATURE, TEXT_CHUNKS, watermarked_webp

from ..views.downloads import CHUNK

# Text, and EXIF, which can carry a description too.
DROPPED_CHUNKS = (*TEXT_CHUNKS, b"eXIf")
CONTENT_TYPES = {".webp": "image/webp", ".png": "image/png", ".jpg": "image/jpeg"}
CACHE = "private, no-cache"
WATERMARKS = "review-watermarks"


def _copy(source, length: int):
    while length > 0:
        piece = source.read(min(CHUNK, length))
        if not piece:
            return
        length -= len(piece)
        yield piece


def png_without_text(source):
    """The PNG read from `source`, minus its text chunks, as a stream of bytes."""
    signature = source.read(len(PNG_SIGNATURE))
    yield signature
    if signature != PNG_SIGNATURE:  # not a PNG: nothing to strip
        yield from _copy(source, 1 << 62)
        return
    while True:
        head = source.read(8)
        if len(head) < 8:
            return
        (length,) = struct.unpack(">I", head[:4])
        body = _copy(source, length + 4)  # data and CRC
        if head[4:8] in DROPPED_CHUNKS:
            for _ in body:
                pass
            continue
        yield head
        yield from body


def plain_read(source):
    while chunk := source.read(CHUNK):
        yield chunk


def serve(request, name: str, etag: str, *, strip_text: bool, attachment: str = ""):
    content_type = CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        try:
            handle = default_storage.open(name, "rb")
        except FileNotFoundError:
            raise Http404

        def stream():
            with handle:
                reader = png_without_text if strip_text and name.endswith(".png") else plain_read
                yield from reader(handle)

        response = StreamingHttpResponse(stream(), content_type=content_type)
        if attachment:
            response["Content-Disposition"] = f'attachment; filename="{attachment}"'
    response["ETag"] = etag
    response["Cache-Control"] = CACHE
    response["X-Content-Type-Options"] = "nosniff"
    return response


def watermarked(asset, kind: str, source_name: str, text: str) -> str:
    """The stored name of this rendition with `text` drawn across it, made on first ask.

    Kept in media storage by the asset's hash and the text's, so every client of
    every link with the same team name shares one copy, and a renamed team gets
    new ones. Re-encoding drops every text chunk and EXIF block with it.
    """
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = f"{WATERMARKS}/{asset.sha256}-{kind}-{digest}.webp"
    if default_storage.exists(name):
        return name
    try:
        with default_storage.open(source_name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise Http404
    # Two first asks at once both draw it; storage keeps one under a new name.
    return default_storage.save(name, ContentFile(watermarked_webp(data, text)))
