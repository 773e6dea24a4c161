"""The one door to team-scoped data.

Every view that shows or changes a team's data finds the team through
`team_for_member`. A person who is not a member gets the same 404 as for a
team that does not exist, so nothing leaks whether it does.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership, Team


@dataclass(frozen=True)
class TeamAccess:
    team: Team
    membership: Membership

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def manages_team(self) -> bool:
        return self.membership.manages_team

    @property
    def is_owner(self) -> bool:
        return self.membership.is_owner


def team_for_member(request, slug: str) -> TeamAccess:
    if not request.user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("team")
        .filter(team__slug=slug, team__deleted_at=None, user=request.user)
        .first()
    )
    if membership is None:
        raise Http404
    access = TeamAccess(team=membership.team, membership=membership)
    request.team_access = access
    return access


def team_for_manager(request, slug: str) -> TeamAccess:
    """Like team_for_member, but only owners and admins pass; members get 403."""
    access = team_for_member(request, slug)
    if not access.manages_team:
        raise PermissionDenied("Only the team's owners and admins can do this.")
    return access
