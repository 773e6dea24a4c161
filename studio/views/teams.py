"""Team pages: the team switcher, a team's home and its members."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, Value, When
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..forms import InviteForm, TeamForm
from ..models import Membership, Role
from ..postback import failed_form, keep_failed_form
from ..services import invite_create, team_create
from ..teams import team_for_manager, team_for_member
from .projects import project_list


@login_required
def home(request):
    """Land on the only team, or choose among several, or make the first one."""
    memberships = list(Membership.objects.filter(user=request.user).select_related("team"))
    typed = failed_form(request, "team-new")
    if len(memberships) == 1 and typed is None:
        return redirect("team", slug=memberships[0].team.slug)
    form = TeamForm(typed) if typed is not None else TeamForm()
    return render(request, "studio/home.html", {"memberships": memberships, "form": form})


@login_required
@require_POST
def team_new(request):
    form = TeamForm(request.POST)
    if not form.is_valid():
        keep_failed_form(request, "team-new", request.POST.dict())
        return redirect("home")
    team = team_create(name=form.cleaned_data["name"], owner=request.user)
    return redirect("team", slug=team.slug)


@login_required
def team_home(request, slug):
    # A team's home is its list of projects.
    return project_list(request, slug)


@login_required
def team_members(request, slug):
    access = team_for_member(request, slug)
    # Owners first, then admins, then members (the role names sort the other way).
    rank = Case(
        *(When(role=role, then=Value(place)) for place, role in enumerate(Role.values)),
        default=Value(len(Role.values)),
    )
    members = (
        access.team.memberships.select_related("user")
        .annotate(rank=rank)
        .order_by("rank", "user__username")
    )
    return render(
        request,
        "studio/members.html",
        {"access": access, "members": members, "invite_form": InviteForm()},
    )


@login_required
@require_POST
def team_invite(request, slug):
    access = team_for_manager(request, slug)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role for the invite.")
        return redirect("team-members", slug=slug)
    token = invite_create(team=access.team, created_by=request.user, role=form.cleaned_data["role"])
    link = request.build_absolute_uri(reverse("invite", args=[token]))
    messages.success(request, f"Invite link (works once, for 7 days): {link}")
    return redirect("team-members", slug=slug)
