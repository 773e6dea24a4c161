"""The header's credit balance and the low-balance banner, on every team page."""

from django import template

from billing.selectors import wallet_of

register = template.Library()


def _member_team(context, team):
    """The team only when the page's viewer belongs to it (set by team_for_member)."""
    access = context.get("team_access")
    if team is None or access is None or access.team.pk != team.pk:
        return None
    return team


def _wallet(context, team):
    """One query per page for both tags: the wallet is kept on the request."""
    request = context.get("request")
    cached = getattr(request, "_billing_wallet", None)
    if cached is not None and cached[0] == team.pk:
        return cached[1]
    wallet = wallet_of(team)
    if request is not None:
        request._billing_wallet = (team.pk, wallet)
    return wallet


@register.inclusion_tag("billing/_header_balance.html", takes_context=True)
def header_balance(context, team):
    team = _member_team(context, team)
    wallet = _wallet(context, team) if team else None
    return {
        "team": team,
        "available": wallet.available if wallet else 0,
        "held": wallet.held if wallet else 0,
    }


@register.inclusion_tag("billing/_low_balance_banner.html", takes_context=True)
def low_balance_banner(context, team):
    team = _member_team(context, team)
    wallet = _wallet(context, team) if team else None
    access = context.get("team_access")
    return {
        "team": team,
        "wallet": wallet if wallet and (wallet.is_low or wallet.frozen) else None,
        "manages": bool(access and access.manages_team),
    }
