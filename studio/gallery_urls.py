"""Gallery routes: projects, the composer, draft grids, image pages, compare, history."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
