from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"

    def ready(self):
        from .api import tokens  # noqa: F401 - connects the signal that revokes leavers' tokens


class StudioAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, whose sign-in page counts against the sign-in limits."""

    default = False  # named in INSTALLED_APPS; StudioConfig stays the studio app's config
    default_site = "studio.admin_site.StudioAdminSite"
