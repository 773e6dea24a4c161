"""Bearer-token authentication for the API.

The token names its person and its team, so no endpoint takes a team in
its path: everything an endpoint reads or writes is scoped to `caller.team`.
"""

from dataclasses import dataclass

from ninja.security import HttpBearer

from ..models import ApiToken, Team
from .tokens import api_token_find


@dataclass(frozen=True)
class Caller:
    token: ApiToken
    team: Team

    @property
    def member(self):
        return self.token.user


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str) -> Caller | None:
        found = api_token_find(token.strip())
        if found is None:
            return None
        # Code that reads request.user (logging, the services) sees the token's person.
        request.user = found.user
        return Caller(token=found, team=found.team)
