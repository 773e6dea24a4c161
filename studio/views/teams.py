"""Team pages: the team switcher, a team's home, its members and invites, closing a team.

The members page shows each person the controls their role allows; the
services decide again on every POST (a refusal is a 403 with its reason).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, Value, When
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.selectors import wallet_balance

from ..forms import RoleForm, TeamForm
from ..models import Invite, Membership, Role
from ..postback import failed_form, keep_failed_form
from ..services import (
    invite_create,
    invite_revoke,
    member_remove,
    member_role_set,
    team_create,
    team_delete,
    team_ownership_transfer,
)
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


def _row(membership: Membership, access) -> dict:
    """One member and the controls the viewer's role offers on them."""
    theirs = membership.role
    is_self = membership.user_id == access.membership.user_id
    return {
        "membership": membership,
        "can_remove": not is_self
        and theirs != Role.OWNER
        and (access.is_owner or (access.manages_team and theirs == Role.MEMBER)),
        "can_change_role": access.is_owner and theirs != Role.OWNER,
        "can_receive_ownership": access.is_owner and not is_self,
    }


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
    context = {
        "access": access,
        "rows": [_row(m, access) for m in members],
        "invite_form": RoleForm(),
        "invite_valid_days": settings.INVITE_VALID_DAYS,
    }
    if access.manages_team:
        context["invites"] = (
            access.team.invites.usable().select_related("created_by").order_by("expires")
        )
    if access.is_owner:
        context["credits_left"] = sum(wallet_balance(access.team))
    return render(request, "studio/members.html", context)


@login_required
@require_POST
def team_invite(request, slug):
    access = team_for_manager(request, slug)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role for the invite.")
        return redirect("team-members", slug=slug)
    token = invite_create(team=access.team, created_by=request.user, role=form.cleaned_data["role"])
    link = request.build_absolute_uri(reverse("invite", args=[token]))
    messages.success(
        request,
        f"Invite link (works once, for {settings.INVITE_VALID_DAYS} days; "
        f"it is shown only now): {link}",
    )
    return redirect("team-members", slug=slug)


@login_required
@require_POST
def team_invite_revoke(request, slug, pk):
    access = team_for_member(request, slug)
    invite = get_object_or_404(Invite.objects.usable(), team=access.team, pk=pk)
    invite_revoke(invite=invite, actor=request.user)
    messages.success(request, f"The {invite.get_role_display().lower()} invite was withdrawn.")
    return redirect("team-members", slug=slug)


def _membership(access, pk) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), team=access.team, pk=pk)


@login_required
@require_POST
def team_member_remove(request, slug, pk):
    access = team_for_member(request, slug)
    membership = _membership(access, pk)
    canceled = member_remove(team=access.team, member=membership.user, actor=request.user)
    released = f" {canceled} of their queued images were canceled and released." if canceled else ""
    messages.success(request, f"{membership.user.username} was removed from the team.{released}")
    return redirect("team-members", slug=slug)


@login_required
@require_POST
def team_member_role(request, slug, pk):
    access = team_for_member(request, slug)
    membership = _membership(access, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose admin or member.")
        return redirect("team-members", slug=slug)
    role = form.cleaned_data["role"]
    member_role_set(team=access.team, member=membership.user, role=role, actor=request.user)
    messages.success(request, f"{membership.user.username} is now {Role(role).label.lower()}.")
    return redirect("team-members", slug=slug)


@login_required
@require_POST
def team_owner_transfer(request, slug, pk):
    access = team_for_member(request, slug)
    membership = _membership(access, pk)
    team_ownership_transfer(team=access.team, new_owner=membership.user, actor=request.user)
    messages.success(
        request, f"{membership.user.username} now owns {access.team.name}; you are an admin."
    )
    return redirect("team-members", slug=slug)


@login_required
@require_POST
def team_delete_view(request, slug):
    access = team_for_member(request, slug)
    team_delete(
        team=access.team, actor=request.user, confirmation=request.POST.get("confirmation", "")
    )
    messages.success(request, f"{access.team.name} was deleted.")
    return redirect("home")
