"""Writes for teams and membership: invites, roles, removing people, closing a team.

Who may do what is the README's "Roles" table. Each function here checks it
for the acting person (`actor`) itself, so a view, the API or a script
cannot skip it; a refusal is a PermissionDenied whose message says why
(the pages answer 403 with it) and changes nothing.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from billing.services import member_caps_clear, wallet_freeze
from generation.models import Batch, Status
from generation.services import batch_cancel

from .models import MANAGER_ROLES, Invite, Membership, Role, Team

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


def _role_of(*, team: Team, user) -> str | None:
    return Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()


def _require_manager(*, team: Team, actor, doing: str) -> str:
    role = _role_of(team=team, user=actor)
    if role not in MANAGER_ROLES:
        raise PermissionDenied(f"Only the team's owner and admins can {doing}.")
    return role


def _require_owner(*, team: Team, actor, doing: str) -> None:
    if _role_of(team=team, user=actor) != Role.OWNER:
        raise PermissionDenied(f"Only the team's owner can {doing}.")


@transaction.atomic
def team_create(*, name: str, owner) -> Team:
    team = Team.objects.create(name=name.strip(), slug=_unique_slug(name))
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team


# --- invites -------------------------------------------------------------------------


def invite_create(*, team: Team, created_by, role: str = Role.MEMBER) -> str:
    """Create a one-time invite and return its token (shown once, stored hashed).

    Admins invite members; an admin invite is the owner's to make, since it
    hands out the power to invite and to manage members.
    """
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ValueError("Invites are for admins or members.")
    actor_role = _require_manager(team=team, actor=created_by, doing="invite people")
    if role == Role.ADMIN and actor_role != Role.OWNER:
        raise PermissionDenied(
            "Only the team's owner can invite admins. Invite a member; the owner can make "
            "them an admin later."
        )
    token = Invite.new_token()
    Invite.objects.create(
        team=team,
        role=role,
        token_hash=Invite.hash_token(token),
        created_by=created_by,
        expires=Invite.default_expiry(),
    )
    return token


def invite_revoke(*, invite: Invite, actor) -> None:
    """Withdraw a pending invite: its link stops working at once."""
    _require_manager(team=invite.team, actor=actor, doing="withdraw invites")
    Invite.objects.filter(pk=invite.pk, used_at=None).delete()


def invite_find(token: str) -> Invite:
    invite = (
        Invite.objects.select_related("team")
        .filter(token_hash=Invite.hash_token(token), team__deleted_at=None)
        .first()
    )
    if invite is None:
        raise InviteError("This invite link is not valid.")
    if invite.used_at is not None:
        raise InviteError("This invite link has already been used.")
    if invite.expires <= timezone.now():
        raise InviteError("This invite link has expired. Ask for a new one.")
    return invite


def invite_accept(*, token: str, user=None, new_user=None) -> Membership:
    """Join the invite's team as a signed-in `user`, or as `new_user` (an
    unsaved account, its password already hashed) made here.

    The invite is spent by a conditional update, and the new account is
    saved after it in the same transaction: of any number of people opening
    one link at once exactly one gets in, and nobody else is left with an
    account that belongs to no team.
    """
    invite = invite_find(token)
    if user is not None and Membership.objects.filter(team=invite.team, user=user).exists():
        raise InviteError(f"You are already a member of {invite.team.name}.")
    try:
        with transaction.atomic():
            spent = Invite.objects.usable().filter(pk=invite.pk).update(used_at=timezone.now())
            if spent != 1:
                raise InviteError(
                    "This invite link has just been used by someone else. Ask for a new one."
                )
            if new_user is not None:
                new_user.save()
                user = new_user
            Invite.objects.filter(pk=invite.pk).update(used_by=user)
            return Membership.objects.create(team=invite.team, user=user, role=invite.role)
    except IntegrityError:
        # The username was taken between the form's check and now, or the
        # person joined by another link meanwhile: nothing was kept.
        if new_user is not None:
            raise InviteError("That username was taken a moment ago. Choose another.")
        raise InviteError(f"You are already a member of {invite.team.name}.")


# --- members ---------------------------------------------------------------------------


def _membership_in(team: Team, member) -> Membership:
    membership = Membership.objects.filter(team=team, user=member).first()
    if membership is None:
        raise PermissionDenied("That person is not a member of this team.")
    return membership


def _cancel_queued(*, team: Team, member=None) -> int:
    """Cancel queued images (one member's, or the whole team's) and release their credits."""
    batches = Batch.objects.filter(team=team, generations__status=Status.QUEUED)
    if member is not None:
        batches = batches.filter(member=member)
    return sum(batch_cancel(batch=batch) for batch in batches.distinct())


def member_remove(*, team: Team, member, actor) -> int:
    """Take a person out of the team; returns how many of their queued images were canceled.

    Their membership goes first, so they can submit nothing more, and their
    API tokens with it (studio.api.tokens). Then their queued images are
    canceled and released; images already rendering finish and are charged.
    The owner cannot be removed: ownership moves by transfer.
    """
    actor_role = _require_manager(team=team, actor=actor, doing="remove members")
    membership = _membership_in(team, member)
    if membership.user_id == getattr(actor, "pk", None):
        raise PermissionDenied("You cannot remove yourself from the team here.")
    if membership.role == Role.OWNER:
        raise PermissionDenied("The owner cannot be removed. The owner can transfer ownership.")
    if membership.role == Role.ADMIN and actor_role != Role.OWNER:
        raise PermissionDenied("Only the team's owner can remove an admin.")
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).delete()
        member_caps_clear(team=team, member=member)
    return _cancel_queued(team=team, member=member)


def member_role_set(*, team: Team, member, role: str, actor) -> None:
    """Make a member an admin or an admin a member (the owner's call)."""
    if role not in (Role.ADMIN, Role.MEMBER):
        raise PermissionDenied("A role is admin or member; ownership moves by transfer.")
    _require_owner(team=team, actor=actor, doing="change roles")
    membership = _membership_in(team, member)
    if membership.role == Role.OWNER:
        raise PermissionDenied("The owner's role changes only by transferring ownership.")
    Membership.objects.filter(pk=membership.pk).update(role=role)


@transaction.atomic
def team_ownership_transfer(*, team: Team, new_owner, actor) -> None:
    """Hand the team to another member; the old owner stays on as an admin."""
    _require_owner(team=team, actor=actor, doing="transfer ownership")
    membership = _membership_in(team, new_owner)
    if membership.user_id == actor.pk:
        raise PermissionDenied("You already own this team.")
    # Conditional on the actor still being the owner: two transfers at once
    # cannot leave two owners.
    stepped_down = Membership.objects.filter(team=team, user=actor, role=Role.OWNER).update(
        role=Role.ADMIN
    )
    if stepped_down != 1:
        raise PermissionDenied("Only the team's owner can transfer ownership.")
    Membership.objects.filter(pk=membership.pk).update(role=Role.OWNER)


def team_delete(*, team: Team, actor, confirmation: str) -> int:
    """Close the team for good; returns how many queued images were canceled.

    Everyone loses access at once (memberships, invites and API tokens go),
    queued images are canceled and released, and the wallet is frozen: the
    credits left in it are forfeited, neither refunded nor moved to another
    team. The ledger, purchases and images stay in the database for the
    site's records (see Team.deleted_at).
    """
    _require_owner(team=team, actor=actor, doing="delete the team")
    if (confirmation or "").strip() != team.name:
        raise PermissionDenied(f"Type the team's name, “{team.name}”, to delete it.")
    with transaction.atomic():
        closed = Team.objects.filter(pk=team.pk, deleted_at=None).update(deleted_at=timezone.now())
        if closed != 1:
            return 0
        Invite.objects.filter(team=team).delete()
        Membership.objects.filter(team=team).delete()
        wallet_freeze(team=team, reason="The team was deleted.")
    return _cancel_queued(team=team)
