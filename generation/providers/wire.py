"""What the HTTP providers share: one pooled client per process, requests
bounded by the render's deadline, naming image bytes, checking the images
they send back, Retry-After, and turning transport failures into retries."""

import email.utils
import io
import threading
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


_clients: dict[str, httpx.Client] = {}
_clients_lock = threading.Lock()


def pooled_client(vendor: str) -> httpx.Client:
    """The process's one client for a vendor, shared by every lane thread.

    Connections are kept alive between renders, so fifty images do not cost
    fifty TLS handshakes. httpx's client is safe to share between threads;
    timeouts are given per request.
    """
    with _clients_lock:
        client = _clients.get(vendor)
        if client is None:
            client = httpx.Client(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
                timeout=None,
            )
            _clients[vendor] = client
        return client


def send_within(
    vendor: str, method: str, url: str, *, timeout: httpx.Timeout, deadline: float | None, **kwargs
) -> httpx.Response:
    """Send a request and read its answer, all before `deadline` (time.monotonic()).

    httpx's timeouts bound each read, not the whole answer, so a server that
    trickles bytes could hold a lane thread for ever; the body is read in
    chunks and the deadline checked between them. Transport failures and the
    deadline become TransientError.
    """
    client = pooled_client(vendor)
    with transport_errors(vendor):
        request = client.build_request(
            method, url, timeout=_bounded(timeout, deadline, vendor), **kwargs
        )
        response = client.send(request, stream=True)
        try:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                _bounded(timeout, deadline, vendor)
        finally:
            response.close()
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=b"".join(chunks), request=request
    )


def _bounded(timeout: httpx.Timeout, deadline: float | None, vendor: str) -> httpx.Timeout:
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TransientError(
            f"{vendor} did not answer in time.",
            detail=f"the render's deadline passed while waiting for {vendor}",
        )

    def cap(seconds: float | None) -> float:
        return remaining if seconds is None else min(seconds, remaining)

    return httpx.Timeout(
        connect=cap(timeout.connect), read=cap(timeout.read), write=cap(timeout.write),
        pool=cap(timeout.pool),
    )  # fmt: skip


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
            f"{vendor} did not answer in time.",
            detail=f"{type(error).__name__}: {error}",
        )
    except httpx.TransportError as error:
        raise TransientError(
            f"{vendor} could not be reached.",
            detail=f"{type(error).__name__}: {error}",
        )
