"""Signing in with a real browser: the owner lands on the team page."""

import pytest

from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_signs_in_and_sees_the_team_page(browser_page, owner, team):
    page = browser_page
    sign_in(page, owner.username)

    assert page.url == f"{page.base_url}/t/{team.slug}/"
    assert page.locator("header .team-name").inner_text() == "Northlight Studio"
    assert page.title().endswith("· Northlight Studio")
    assert page.locator("header .who").inner_text() == owner.username


def test_wrong_password_shows_the_error(browser_page, owner):
    page = browser_page
    sign_in(page, owner.username, "not-the-password")

    assert page.url.startswith(f"{page.base_url}/signin/")
    error = page.get_by_role("alert")
    assert "correct username and password" in error.inner_text()
    assert page.locator("input[name=username]").input_value() == owner.username


def test_signing_out_returns_to_the_sign_in_page(browser_page, owner):
    page = browser_page
    sign_in(page, owner.username)
    page.locator("header .account-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{page.base_url}/signin/")

    page.goto(f"{page.base_url}/")
    assert page.url.startswith(f"{page.base_url}/signin/")
