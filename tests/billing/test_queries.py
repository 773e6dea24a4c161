"""How much a hold and a capture cost the database: few statements, one transaction each.

The ledger sits on the path of every image, and on SQLite every statement
inside a write transaction holds the one write lock, so these counts are
part of the contract (bench B8 measures the effect under 16 clients).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Hold
from billing.services import hold_capture, hold_place, hold_release, member_cap_set, quote

from .conftest import fund

pytestmark = pytest.mark.django_db


def statements(queries) -> list[str]:
    """The SQL that touched data: transaction and savepoint control left out."""
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in queries if not q["sql"].upper().startswith(skip)]


def test_hold_and_capture_take_seven_statements(team, owner):
    fund(team, 10_000)
    quote(tier="flash", size="512", count=1)  # the price table is read once, then kept
    with CaptureQueriesContext(connection) as held:
        hold = hold_place(team=team, member=owner, tier="flash", size="512", count=2, key="q")
    with CaptureQueriesContext(connection) as captured:
        assert hold_capture(hold_id=hold.pk, images=1, key="q:1")
    with CaptureQueriesContext(connection) as released:
        assert hold_release(hold_id=hold.pk, images=1, key="q:2")
    # wallet UPDATE … RETURNING, hold INSERT, ledger INSERT
    assert len(statements(held.captured_queries)) == 3, held.captured_queries
    # hold UPDATE … RETURNING, wallet UPDATE … RETURNING, ledger INSERT, usage INSERT
    assert len(statements(captured.captured_queries)) == 4, captured.captured_queries
    assert len(statements(released.captured_queries)) == 3, released.captured_queries


def test_caps_are_read_only_when_the_member_has_some(team, owner, teammate):
    fund(team, 10_000)
    member_cap_set(team=team, member=teammate, period="day", tier="", credits=5_000)
    quote(tier="flash", size="512", count=1)
    with CaptureQueriesContext(connection) as free:
        hold_place(team=team, member=owner, tier="flash", size="512", count=1, key="a")
    with CaptureQueriesContext(connection) as capped:
        hold_place(team=team, member=teammate, tier="flash", size="512", count=1, key="b")
    assert len(statements(free.captured_queries)) == 3
    # + the key, the caps and one sum per cap
    assert len(statements(capped.captured_queries)) == 6
    assert Hold.objects.count() == 2
