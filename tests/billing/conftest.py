"""Billing fixtures: funded wallets, an admin persona, ledger counting."""

import pytest

from billing.models import LedgerEntry
from billing.services import wallet_top_up
from tests.conftest import make_user


def fund(team, amount: int, key: str = "seed"):
    return wallet_top_up(
        team=team,
        amount=amount,
        actor=None,
        note="Test credits",
        idempotency_key=f"{key}:{team.pk}",
    )


def ledger_count() -> int:
    return LedgerEntry.objects.count()


@pytest.fixture
def team_admin(team):
    from studio.models import Membership, Role

    user = make_user("ada", email="ada@example.com")
    Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def staff(team):
    """Site staff who also belongs to the team (as a plain member)."""
    from studio.models import Membership, Role

    user = make_user("stella", is_staff=True)
    Membership.objects.create(team=team, user=user, role=Role.MEMBER)
    return user
