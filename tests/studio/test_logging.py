"""What the logs say when a person is refused or a probe asks too early."""

import logging

import pytest


@pytest.fixture
def django_records(caplog):
    """Records reaching the `django` logger (it does not propagate to the root)."""
    logger = logging.getLogger("django")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)


def _handlers_on_the_way(name: str) -> int:
    """How many of the configured console handlers print a record logged on `name`
    (pytest's own capturing handlers aside)."""
    count, logger = 0, logging.getLogger(name)
    while logger:
        count += sum(1 for h in logger.handlers if type(h) is logging.StreamHandler)
        if not logger.propagate:
            break
        logger = logger.parent
    return count


def test_a_stranger_refused_is_one_line_without_a_traceback(
    client_for, stranger, team, django_records
):
    response = client_for(stranger).get(f"/t/{team.slug}/")
    assert response.status_code in (403, 404)
    refusals = [r for r in django_records.records if r.name == "django.request"]
    assert len(refusals) == 1
    assert refusals[0].exc_info is None and not refusals[0].exc_text
    assert "\n" not in refusals[0].getMessage()
    assert _handlers_on_the_way("django.request") == 1


def test_an_unknown_page_is_one_line_without_a_traceback(client_for, owner, django_records):
    response = client_for(owner).get("/no-such-page/")
    assert response.status_code == 404
    refusals = [r for r in django_records.records if r.name == "django.request"]
    assert [r.exc_info for r in refusals] == [None]


def test_forbidden_billing_is_one_line(client_for, teammate, team, django_records):
    response = client_for(teammate).get(f"/t/{team.slug}/billing/")
    assert response.status_code == 403
    refusals = [r for r in django_records.records if r.name == "django.request"]
    assert len(refusals) == 1 and refusals[0].exc_info is None


def test_healthz_before_the_workers_are_up_logs_no_error(client, db, caplog, django_records):
    caplog.set_level(logging.INFO)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("Not ready" in r.getMessage() for r in caplog.records)
