from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from generation.requests import ID_MAX, parse_id

from .views import accounts, backends, health, media, metrics, teams


class RowIdConverter:
    """`<id:pk>`: digits that can name a row. Django's `<int:…>` takes any
    number of digits, and a lookup with one past the database's integers is
    an overflow error (a 500) where it should simply match nothing (a 404)."""

    regex = f"[0-9]{{1,{len(str(ID_MAX))}}}"

    def to_python(self, value: str) -> int:
        pk = parse_id(value)
        if pk is None:
            raise ValueError("not a row id")  # Django tries the next pattern, then 404s
        return pk

    def to_url(self, value) -> str:
        return str(value)


# Registered before the included route modules below are imported.
register_converter(RowIdConverter, "id")

urlpatterns = [
    path("", teams.home, name="home"),
    path("signin/", accounts.SignInView.as_view(), name="signin"),
    path("signout/", auth_views.LogoutView.as_view(), name="signout"),
    path("account/password/", accounts.PasswordChange.as_view(), name="password-change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="studio/password_done.html"),
        name="password_change_done",
    ),
    path("invite/<str:token>/", accounts.invite_join, name="invite"),
    path("teams/new/", teams.team_new, name="team-new"),
    path("t/<slug:slug>/", teams.team_home, name="team"),
    path("t/<slug:slug>/members/", teams.team_members, name="team-members"),
    path("t/<slug:slug>/members/invite/", teams.team_invite, name="team-invite"),
    path("t/<slug:slug>/invites/<int:pk>/revoke/", teams.team_invite_revoke, name="invite-revoke"),
    path("t/<slug:slug>/members/<int:pk>/remove/", teams.team_member_remove, name="member-remove"),
    path("t/<slug:slug>/members/<int:pk>/role/", teams.team_member_role, name="member-role"),
    path("t/<slug:slug>/members/<int:pk>/owner/", teams.team_owner_transfer, name="owner-transfer"),
    path("t/<slug:slug>/delete/", teams.team_delete_view, name="team-delete"),
    path("t/<slug:slug>/backends/", backends.team_backends, name="team-backends"),
    path(
        "t/<slug:slug>/images/<id:pk>/<str:kind>/",
        media.generation_image,
        name="generation-image",
    ),
    path("t/<slug:slug>/references/<id:pk>/image/", media.reference_image, name="reference-image"),
    path("", include("studio.gallery_urls")),
    path("", include("studio.review.urls")),
    path("", include("billing.urls")),
    path("", include("generation.urls")),
    path("", include("studio.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
