"""Writes and reads for API tokens: make one (shown once), revoke, find by the secret."""

from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from ..models import ApiToken, Membership

NAME_MAX = 80


class TokenRefused(Exception):
    pass


def api_token_create(*, user, team, name: str) -> tuple[ApiToken, str]:
    """Make a token for `user` in `team`; return it with the secret, which is never stored."""
    if not Membership.objects.filter(team=team, user=user).exists():
        raise TokenRefused("Only members of the team can make tokens for it.")
    name = " ".join((name or "").split())[:NAME_MAX]
    if not name:
        raise TokenRefused("Name the token after what will use it, such as “render farm”.")
    secret = ApiToken.new_token()
    token = ApiToken.objects.create(
        user=user,
        team=team,
        name=name,
        token_hash=ApiToken.hash_token(secret),
        hint=secret[:10],
    )
    return token, secret


def api_token_revoke(*, token: ApiToken) -> bool:
    moved = ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now())
    return bool(moved)


def api_token_find(secret: str) -> ApiToken | None:
    """The live token for this secret, or None.

    One query: a revoked token, a person no longer in the team, or a
    deactivated account all find nothing.
    """
    if not secret or not secret.startswith(ApiToken.PREFIX) or len(secret) > 200:
        return None
    member = Membership.objects.filter(team=OuterRef("team_id"), user=OuterRef("user_id"))
    token = (
        ApiToken.objects.active()
        .filter(token_hash=ApiToken.hash_token(secret), user__is_active=True)
        .filter(Exists(member))
        .select_related("team", "user")
        .first()
    )
    if token is not None:
        _touch(token)
    return token


def _touch(token: ApiToken) -> None:
    """Record that the token was used, at most once a minute."""
    now = timezone.now()
    stale = now - timedelta(seconds=ApiToken.TOUCH_SECONDS)
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def tokens_for_member(*, user, team) -> list[ApiToken]:
    return list(ApiToken.objects.active().filter(user=user, team=team))


def tokens_of_team(*, team) -> list[ApiToken]:
    """Every live token in the team, for its owners and admins to review."""
    return list(
        ApiToken.objects.active()
        .filter(team=team)
        .select_related("user")
        .order_by("user__username", "-created")
    )


@receiver(post_delete, sender=Membership)
def api_tokens_revoke_on_leaving(sender, instance, **kwargs):
    """Leaving a team revokes its tokens for good: rejoining does not revive them."""
    ApiToken.objects.filter(
        team_id=instance.team_id, user_id=instance.user_id, revoked_at=None
    ).update(revoked_at=timezone.now())
