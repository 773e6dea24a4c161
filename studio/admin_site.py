"""The Django admin's site, with the same sign-in limits as the studio's own sign-in.

Installed through StudioAdminConfig (studio/apps.py) in place of
django.contrib.admin, so `admin.site` everywhere is this site.
"""

from django.contrib import admin
from django.urls import reverse

from .forms import AdminPasswordChangeWithLimitsForm, AdminSignInForm
from .views.accounts import PasswordChange, refused_when_throttled


class StudioAdminSite(admin.AdminSite):
    login_form = AdminSignInForm

    def login(self, request, extra_context=None):
        return refused_when_throttled(super().login(request, extra_context))

    def password_change(self, request, extra_context=None):
        # AdminSite.password_change, with the studio's view: its old-password
        # check counts against the sign-in limits too.
        request.current_app = self.name
        return PasswordChange.as_view(
            form_class=AdminPasswordChangeWithLimitsForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            template_name=self.password_change_template or "registration/password_change_form.html",
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)
