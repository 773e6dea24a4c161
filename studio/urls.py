from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import accounts, backends, health, media, teams

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
    path("t/<slug:slug>/backends/", backends.team_backends, name="team-backends"),
    path(
        "t/<slug:slug>/images/<int:pk>/<str:kind>/",
        media.generation_image,
        name="generation-image",
    ),
    path("t/<slug:slug>/references/<int:pk>/image/", media.reference_image, name="reference-image"),
    path("", include("studio.gallery_urls")),
    path("", include("billing.urls")),
    path("", include("generation.urls")),
    path("", include("studio.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
