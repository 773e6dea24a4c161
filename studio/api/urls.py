"""Routes of the API and of the page where people make and revoke their tokens."""

from django.urls import path

from ..views import tokens
from .endpoints import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("t/<slug:slug>/api-tokens/", tokens.token_list, name="api-tokens"),
    path("t/<slug:slug>/api-tokens/<id:pk>/revoke/", tokens.token_revoke, name="api-token-revoke"),
]
