"""What the HTTP providers share: naming image bytes, checking the images
they send back, Retry-After, and turning transport failures into retries."""

import email.utils
import io
import time
from contextlib import contextmanager

import httpx
from PIL import Image

from .base import PermanentError, TransientError


def client_timeout(timeout, *, default: httpx.Timeout, connect: float) -> httpx.Timeout:
    """A provider's timeout: the default, or seconds (tests use short ones)
    with the connect phase capped."""
    if timeout is None:
        return default
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout, connect=min(timeout, connect))


def sniff_mime_type(data: bytes) -> str | None:
    """PNG, JPEG or WebP by their first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def verified_mime_type(image: bytes, *, vendor: str) -> str:
    """The type of an image a provider sent, after Pillow has checked it is whole."""
    try:
        with Image.open(io.BytesIO(image)) as opened:
            image_format = opened.format
            opened.verify()
    except Exception as error:  # Pillow raises many kinds for broken files
        raise PermanentError(
            f"{vendor} sent an image that could not be read.",
            detail=f"{type(error).__name__}: {error}; {len(image)} bytes starting {image[:16]!r}",
        )
    return Image.MIME.get(image_format or "", "application/octet-stream")


def retry_after_header(response: httpx.Response) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date), if given."""
    header = response.headers.get("retry-after", "").strip()
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@contextmanager
def transport_errors(vendor: str):
    """A provider that did not answer, or could not be reached, is worth a retry."""
    try:
        yield
    except httpx.TimeoutException as error:
        raise TransientError(
            f"{vendor} did not answer in time; the image will be retried.",
            detail=f"{type(error).__name__}: {error}",
        )
    except httpx.TransportError as error:
        raise TransientError(
            f"{vendor} could not be reached; the image will be retried.",
            detail=f"{type(error).__name__}: {error}",
        )
