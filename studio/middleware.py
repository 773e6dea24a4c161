"""Security headers Django does not set by itself, and refusals shown to htmx requests."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

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
