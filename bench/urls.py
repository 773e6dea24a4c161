"""The studio's routes plus an empty view: the floor a page's server time is measured from."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path


@login_required
def empty(request):
    return HttpResponse("")


urlpatterns = [path("bench/empty/", empty, name="bench-empty"), path("", include("studio.urls"))]
