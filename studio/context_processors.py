from django.urls import reverse

from .models import Membership


def current_team(request):
    """The team the page is about (set by team_for_member) and the person's other teams."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    access = getattr(request, "team_access", None)
    return {
        # Grid tiles build their links from this prefix: reversing seven
        # URLs for each of 150 tiles was a third of the project page's time.
        # tests/gallery/test_tile_links.py checks the paths still resolve.
        "team_url": reverse("team", args=[access.team.slug]) if access else "",
        "team_access": access,
        "team": access.team if access else None,
        "my_memberships": Membership.objects.filter(user=request.user).select_related("team"),
    }
