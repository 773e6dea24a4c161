from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"

    def ready(self):
        from . import checks  # noqa: F401 - registers the start-up checks
        from .api import tokens  # noqa: F401 - connects the signal that revokes leavers' tokens
