"""/metrics: the operator's Prometheus endpoint, behind a bearer token.

With no METRICS_TOKEN the page does not exist (404). Without the header the
answer is 401, with a wrong token 403, neither saying more, so the endpoint
can sit on the public address without telling a stranger what runs there.
"""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from .. import metrics as studio_metrics


@never_cache
@require_GET
def metrics(request):
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        response = HttpResponse(status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse(status=403)
    return HttpResponse(studio_metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
