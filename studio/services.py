"""Writes for teams and membership."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from .models import Invite, Membership, Role, Team

User = get_user_model()


class InviteError(Exception):
    """An invite link that cannot be used; the message says why."""


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def team_create(*, name: str, owner) -> Team:
    team = Team.objects.create(name=name.strip(), slug=_unique_slug(name))
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team


def invite_create(*, team: Team, created_by, role: str = Role.MEMBER) -> str:
    """Create a one-time invite and return its token (shown once, stored hashed)."""
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ValueError("Invites are for admins or members.")
    token = Invite.new_token()
    Invite.objects.create(
        team=team,
        role=role,
        token_hash=Invite.hash_token(token),
        created_by=created_by,
        expires=Invite.default_expiry(),
    )
    return token


def invite_find(token: str) -> Invite:
    invite = (
        Invite.objects.select_related("team").filter(token_hash=Invite.hash_token(token)).first()
    )
    if invite is None:
        raise InviteError("This invite link is not valid.")
    if invite.used_at is not None:
        raise InviteError("This invite link has already been used.")
    if invite.expires <= timezone.now():
        raise InviteError("This invite link has expired. Ask for a new one.")
    return invite


def invite_accept(*, token: str, user) -> Membership:
    """Join the invite's team. The invite is spent by a conditional update, so
    two people opening the same link at once cannot both join."""
    invite = invite_find(token)
    with transaction.atomic():
        spent = (
            Invite.objects.usable()
            .filter(pk=invite.pk)
            .update(used_at=timezone.now(), used_by=user)
        )
        if spent != 1:
            raise InviteError("This invite link has already been used.")
        try:
            with transaction.atomic():
                return Membership.objects.create(team=invite.team, user=user, role=invite.role)
        except IntegrityError:
            return Membership.objects.get(team=invite.team, user=user)
