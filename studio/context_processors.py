from .models import Membership


def current_team(request):
    """The team the page is about (set by team_for_member) and the person's other teams."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    access = getattr(request, "team_access", None)
    return {
        "team_access": access,
        "team": access.team if access else None,
        "my_memberships": Membership.objects.filter(user=request.user).select_related("team"),
    }
