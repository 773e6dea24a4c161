"""API tokens: a member makes tokens for this team (each shown once) and revokes them.

Owners and admins also see every member's live tokens and can revoke any,
so a leaked key or a departing contractor is one click away from dead.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from generation.requests import parse_id

from ..api.tokens import (
    TokenRefused,
    api_token_create,
    api_token_revoke,
    tokens_for_member,
    tokens_of_team,
)
from ..models import ApiToken
from ..teams import team_for_member

# How long a new token's secret waits for its page to be opened after the redirect.
SECRET_WAITS_SECONDS = 120


def _secret_key(user, token_pk: int) -> str:
    return f"new-token:{user.pk}:{token_pk}"


def _page(request, access, *, secret="", created=None, status=200):
    context = {
        "access": access,
        "tokens": tokens_for_member(user=request.user, team=access.team),
        "team_tokens": tokens_of_team(team=access.team) if access.manages_team else [],
        "secret": secret,
        "created": created,
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
        return _page(request, access, **_new_secret(request, access))
    try:
        token, secret = api_token_create(
            user=request.user, team=access.team, name=request.POST.get("name", "")
        )
    except TokenRefused as refused:
        messages.error(request, str(refused))
        return redirect("api-tokens", slug=slug)
    # Post/redirect/get, so a reload cannot make a second token. The secret
    # waits for the next page in the server-side cache (never in a cookie),
    # under a key only this user can name, and is deleted as it is shown.
    cache.set(_secret_key(request.user, token.pk), secret, SECRET_WAITS_SECONDS)
    return redirect(f"{reverse('api-tokens', args=[slug])}?created={token.pk}")


def _new_secret(request, access) -> dict:
    token_pk = parse_id(request.GET.get("created", ""))
    if token_pk is None:
        return {}
    key = _secret_key(request.user, token_pk)
    secret = cache.get(key)
    cache.delete(key)
    token = (
        ApiToken.objects.active().filter(pk=token_pk, user=request.user, team=access.team).first()
    )
    return {"secret": secret, "created": token} if secret and token else {}


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
