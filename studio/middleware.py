"""What every request passes through around a view: a cap on the size of
its body, the security headers Django does not set by itself, refusals shown
to htmx requests, and a database or Redis outage in words."""

import logging

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.html import escape

from generation.imaging import UPLOAD_MAX_BYTES

log = logging.getLogger(__name__)

# No inline scripts anywhere: every script is a vendored or project file
# under /static/. Inline styles are allowed for aspect-ratio boxes and bars.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self' https://checkout.stripe.com",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if not settings.DEBUG:
            response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class HtmxRefusalMiddleware:
    """A refused htmx action (a PermissionDenied from a service) answers 403
    with just its reason, put into the page's messages; the element that
    asked is left as it was. Other requests get the 403 page as usual."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, PermissionDenied) or not getattr(request, "htmx", False):
            return None
        response = render(request, "_refused.html", {"reason": str(exception)}, status=403)
        response["HX-Reswap"] = "none"
        return response


class OutageMiddleware:
    """The database or Redis not answering gets a 503 in words, not a server error.

    Nothing half-done is left behind (every write is one transaction, and a
    job whose lane token could not be sent is found by the sweeper), so the
    person can simply try again; the API answers JSON in its usual shape.
    """

    MESSAGES = {
        "database": "The studio's database is not answering right now, so nothing was saved. "
        "Try again in a minute.",
        "redis": "The studio's job queue is not answering right now, so nothing was saved. "
        "Try again in a minute.",
    }

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            part = "database"
        elif isinstance(exception, (redis.ConnectionError, redis.TimeoutError)):
            part = "redis"
        else:
            return None
        log.error("%s unavailable for %s %s: %s", part, request.method, request.path, exception)
        message = self.MESSAGES[part]
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": message, "errors": {}}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain")
        response["Retry-After"] = "30"
        return response


UPLOAD_BODY_MAX_BYTES = UPLOAD_MAX_BYTES + 1024 * 1024
MB = 1024 * 1024


class RequestSizeLimitMiddleware:
    """Refuse a body larger than any form or endpoint takes, by its
    Content-Length header, before a byte of it is read.

    Without this, Django spools a whole 300 MB upload to disk (CSRF checking
    parses the form before any view runs) and only the view finds it too
    large; a form or JSON body past DATA_UPLOAD_MAX_MEMORY_SIZE would be a
    bare "Bad Request" with no reason.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django itself refuses a malformed length when it parses
        if request.content_type == "multipart/form-data":
            if length > UPLOAD_BODY_MAX_BYTES:
                return too_large(
                    request,
                    f"The upload is {length / MB:.0f} MB; reference images can be up to "
                    f"{UPLOAD_MAX_BYTES // MB} MB. Choose a smaller file.",
                )
        elif settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return too_large(
                    request,
                    f"The request is {length / MB:.1f} MB; forms and API requests can be "
                    f"up to {settings.DATA_UPLOAD_MAX_MEMORY_SIZE / MB:.1f} MB.",
                )
        return self.get_response(request)


def too_large(request, message: str):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "errors": {}}, status=413)
    if request.headers.get("HX-Request"):
        # Shown with the page's other messages; the form it came from stays as it was.
        response = HttpResponse(f'<p class="message error">{escape(message)}</p>', status=413)
        response["HX-Retarget"] = "#messages"
        response["HX-Reswap"] = "beforeend"
        return response
    return HttpResponse(message, content_type="text/plain; charset=utf-8", status=413)
