"""API tokens: a member makes tokens for this team (each shown once) and revokes them.

Owners and admins also see every member's live tokens and can revoke any,
so a leaked key or a departing contractor is one click away from dead.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ..api.tokens import (
    TokenRefused,
    api_token_create,
    api_token_revoke,
    tokens_for_member,
    tokens_of_team,
)
from ..models import ApiToken
from ..teams import team_for_member


def _page(request, access, *, secret="", created=None, error="", status=200):
    context = {
        "access": access,
        "tokens": tokens_for_member(user=request.user, team=access.team),
        "team_tokens": tokens_of_team(team=access.team) if access.manages_team else [],
        "secret": secret,
        "created": created,
        "error": error,
        "api_base": request.build_absolute_uri("/api/v1/"),
    }
    response = render(request, "studio/tokens.html", context, status=status)
    if secret:
        # The secret is in this page only: keep it out of every cache.
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request, slug):
    access = team_for_member(request, slug)
    if request.method == "GET":
        return _page(request, access)
    try:
        token, secret = api_token_create(
            user=request.user, team=access.team, name=request.POST.get("name", "")
        )
    except TokenRefused as refused:
        return _page(request, access, error=str(refused), status=400)
    # Rendered, not redirected: the secret must not travel through the
    # session or a message cookie, and it is shown this once.
    return _page(request, access, secret=secret, created=token, status=201)


@login_required
@require_POST
def token_revoke(request, slug, pk):
    access = team_for_member(request, slug)
    tokens = ApiToken.objects.active().filter(team=access.team, pk=pk)
    if not access.manages_team:
        tokens = tokens.filter(user=request.user)
    token = tokens.first()
    if token is None:
        raise Http404
    api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked; it stops working at once.")
    return redirect("api-tokens", slug=slug)
