"""The Django admin's site, with the same sign-in limits as the studio's own sign-in.

Installed through StudioAdminConfig (studio/apps.py) in place of
django.contrib.admin, so `admin.site` everywhere is this site.
"""

from django.contrib import admin

from .forms import AdminSignInForm
from .views.accounts import refused_when_throttled


class StudioAdminSite(admin.AdminSite):
    login_form = AdminSignInForm

    def login(self, request, extra_context=None):
        return refused_when_throttled(super().login(request, extra_context))
