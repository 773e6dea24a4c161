"""API fixtures: a funded team with a rendered grid, and a token for each persona."""

import pytest
from django.test import Client

from generation.models import Project
from studio.api.tokens import api_token_create
from tests.gallery.conftest import fund, render_all, submit


def token_for(user, team=None, name="pipeline") -> str:
    team = team or user.teams.get()
    return api_token_create(user=user, team=team, name=name)[1]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


class ApiClient:
    """A Django test client that sends a bearer token and speaks JSON."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.headers = bearer(token) if token else {}

    def get(self, path, params=None):
        return self.client.get(path, params or {}, **self.headers)

    def post(self, path, data=None):
        return self.client.post(path, data or {}, content_type="application/json", **self.headers)


@pytest.fixture
def project(team, owner):
    fund(team, owner)
    return Project.objects.create(team=team, name="Spring campaign", created_by=owner)


@pytest.fixture
def grid(team, owner, project):
    batch = submit(team, owner, project, seed=500)
    render_all()
    return batch


@pytest.fixture
def api_for(team):
    """api_for(user) -> an ApiClient holding a fresh token of that user's first team."""

    def build(user):
        return ApiClient(token_for(user))

    return build


__all__ = ["ApiClient", "bearer", "fund", "render_all", "submit", "token_for"]
