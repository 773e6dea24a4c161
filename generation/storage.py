"""Where images live: Django's storage API (filesystem by default, S3 when configured).

Names are content-addressed per team, so the same bytes are stored once and
a name never points at different pixels (which lets the media view cache
forever).
"""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from .imaging import (
    REFERENCE_EDGE,
    CleanMask,
    CleanUpload,
    Renditions,
    UnusableImage,
    reference_copy,
)
from .models import Asset, Reference


def _save(name: str, data: bytes) -> str:
    if default_storage.exists(name):
        return name
    return default_storage.save(name, ContentFile(data))


def asset_store(*, team_id: int, renditions: Renditions) -> Asset:
    """Write the three files (outside any transaction), then the row."""
    sha = renditions.sha256
    prefix = f"teams/{team_id}/assets/{sha[:2]}/{sha}"
    original = _save(f"{prefix}.png", renditions.original)
    thumbnail = _save(f"{prefix}-thumb.webp", renditions.thumbnail)
    preview = (
        _save(f"{prefix}-preview.webp", renditions.preview) if renditions.preview else original
    )
    try:
        with transaction.atomic():
            asset, _ = Asset.objects.get_or_create(
                team_id=team_id,
                sha256=sha,
                defaults=dict(
                    original=original,
                    thumbnail=thumbnail,
                    preview=preview,
                    width=renditions.width,
                    height=renditions.height,
                    bytes=len(renditions.original),
                ),
            )
    except IntegrityError:  # the same bytes stored by another worker at the same moment
        asset = Asset.objects.get(team_id=team_id, sha256=sha)
    return asset


def reference_store(*, team, name: str, upload: CleanUpload, created_by) -> tuple[Reference, bool]:
    """Keep a reference once per team; an identical upload returns the stored one."""
    existing = Reference.objects.filter(team=team, sha256=upload.sha256).first()
    if existing:
        return existing, False
    path = _save(_reference_name(team.pk, upload), upload.data)
    try:
        with transaction.atomic():
            reference = Reference.objects.create(
                team=team,
                name=name,
                sha256=upload.sha256,
                image=path,
                mime_type=upload.mime_type,
                width=upload.width,
                height=upload.height,
                bytes=len(upload.data),
                created_by=created_by,
            )
    except IntegrityError:
        return Reference.objects.get(team=team, sha256=upload.sha256), False
    return reference, True


def _reference_name(team_id: int, upload: CleanUpload) -> str:
    extension = "png" if upload.mime_type == "image/png" else "jpg"
    return f"teams/{team_id}/references/{upload.sha256}.{extension}"


def reference_bytes(reference: Reference) -> bytes:
    """What a render sends for a reference: the bounded copy kept at upload.

    References uploaded before uploads were bounded are kept at full size;
    the first render that uses one stores its bounded copy and points the row
    at it, so that cost is paid once. The row keeps its hash: it is the
    reference's identity in the cache and in the library, not a file name.
    """
    data = read(reference.image.name)
    if max(reference.width, reference.height) <= REFERENCE_EDGE:
        return data
    try:
        copy = reference_copy(data)
    except UnusableImage:
        return data  # sent as it always was; the provider says what it makes of it
    path = _save(_reference_name(reference.team_id, copy), copy.data)
    # Conditional on the old file, so two workers doing this at once agree.
    Reference.objects.filter(pk=reference.pk, image=reference.image.name).update(
        image=path,
        mime_type=copy.mime_type,
        width=copy.width,
        height=copy.height,
        bytes=len(copy.data),
    )
    return copy.data


def mask_store(*, team_id: int, mask: CleanMask) -> str:
    """Keep a region edit's mask once per team by content hash; its stored name."""
    return _save(f"teams/{team_id}/masks/{mask.sha256}.png", mask.data)


def read(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()
