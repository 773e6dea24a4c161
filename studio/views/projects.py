"""Projects (boards): the team's list, and one project's page with its composer and grids."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing.periods import PERIODS, period_start
from generation import services as generation_services
from generation.models import Generation, Project
from generation.requests import InvalidRequest, parse_id
from generation.selectors import (
    decode_cursor,
    project_grids,
    projects_for_team,
    usage_by_project,
)
from generation.services import project_create

from ..postback import failed_form, keep_failed_form
from ..review.selectors import client_marks_on_grids
from ..teams import team_for_member
from .composer import composer_context, settings_from


@login_required
def project_list(request, slug):
    access = team_for_member(request, slug)
    archived = request.GET.get("archived") == "1"
    context = {
        "access": access,
        "projects": projects_for_team(access.team, archived=archived),
        "showing_archived": archived,
        **(failed_form(request, "project-new") or {}),
    }
    return render(request, "studio/gallery/projects.html", context)


@login_required
@require_POST
def project_new(request, slug):
    access = team_for_member(request, slug)
    try:
        project = project_create(
            team=access.team, member=request.user, name=request.POST.get("name", "")
        )
    except InvalidRequest as invalid:
        keep_failed_form(request, "project-new", {"errors": invalid.errors})
        return redirect("team", slug=slug)
    return redirect("project", slug=slug, pk=project.pk)


@login_required
@require_POST
def project_rename(request, slug, pk):
    access = team_for_member(request, slug)
    project = get_object_or_404(Project, team=access.team, pk=pk)
    try:
        generation_services.project_rename(
            project=project, name=request.POST.get("name", ""), actor=request.user
        )
    except InvalidRequest as invalid:
        messages.error(request, invalid.errors["name"])
    if request.htmx:
        return render(request, "studio/gallery/_project_title.html", {"project": project})
    return redirect("project", slug=slug, pk=pk)


@login_required
@require_POST
def project_archive(request, slug, pk):
    """Archive a project (or bring it back): it leaves the list, its images stay."""
    access = team_for_member(request, slug)
    project = get_object_or_404(Project, team=access.team, pk=pk)
    archived = request.POST.get("archived", "1") == "1"
    generation_services.project_archive(project=project, archived=archived, actor=request.user)
    verb = "archived" if archived else "restored"
    messages.success(request, f"“{project.name}” {verb}.")
    return redirect("team", slug=slug) if archived else redirect("project", slug=slug, pk=pk)


def project_page_context(request, *, access, project) -> dict:
    grids, next_cursor = project_grids(
        team=access.team, project=project, through=parse_id(request.GET.get("through", ""))
    )
    client_marks_on_grids(team=access.team, grids=grids)
    return {
        "access": access,
        "project": project,
        "grids": grids,
        "next_cursor": next_cursor,
        "show_rejected": request.GET.get("rejected") == "1",
    }


@login_required
@require_GET
def project_page(request, slug, pk):
    access = team_for_member(request, slug)
    project = get_object_or_404(Project, team=access.team, pk=pk)
    values = {}
    source = parse_id(request.GET.get("from", ""))
    if source is not None:
        generation = (
            Generation.objects.filter(team=access.team, pk=source).select_related("batch").first()
        )
        values = settings_from(generation) if generation else {}
    context = composer_context(team=access.team, project=project, values=values)
    context.update(project_page_context(request, access=access, project=project))
    return render(request, "studio/gallery/project.html", context)


@login_required
@require_GET
def project_older(request, slug, pk):
    """The next page of older grids (the "show older grids" button)."""
    access = team_for_member(request, slug)
    project = get_object_or_404(Project, team=access.team, pk=pk)
    cursor = decode_cursor(request.GET.get("cursor"))
    grids, next_cursor = project_grids(team=access.team, project=project, cursor=cursor)
    client_marks_on_grids(team=access.team, grids=grids)
    context = {"access": access, "project": project, "grids": grids, "next_cursor": next_cursor}
    if request.htmx:
        return render(request, "studio/gallery/_grids_page.html", context)
    context.update(composer_context(team=access.team, project=project))
    return render(request, "studio/gallery/project.html", context)


@login_required
@require_GET
def usage_projects(request, slug):
    """Credits by project over the usage page's period (loaded into that page).

    Managers see the team or one member; anyone else sees their own images,
    as on the usage page itself.
    """
    access = team_for_member(request, slug)
    period = request.GET.get("period", "month")
    period = period if period in PERIODS else "month"
    member = request.user
    if access.manages_team:
        member_id = parse_id(request.GET.get("member", ""))
        member = access.team.members.filter(pk=member_id).first() if member_id is not None else None
    projects = usage_by_project(access.team, since=period_start(period), member=member)
    context = {"access": access, "projects": projects, "period": period}
    template = "studio/_usage_projects.html" if request.htmx else "studio/usage_projects.html"
    return render(request, template, context)
