"""Signing in: whose address a limit counts, look-alike usernames, the
admin's sign-in page, and what changing a password does to other sessions.

Attack-shaped scenarios (many attempts, a proxy in front) are in
tests/reliability/test_rate_limits.py.
"""

import pytest
from django.test import Client, RequestFactory

from studio import throttle
from studio.throttle import client_address, username_key
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-long-passphrase"


def address(settings, proxies: int, remote: str = "172.18.0.1", forwarded: str | None = None):
    settings.TRUSTED_PROXY_COUNT = proxies
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    return client_address(RequestFactory().get("/", REMOTE_ADDR=remote, headers=headers))


# --- the client's address -------------------------------------------------------------


def test_without_trusted_proxies_the_header_is_ignored(settings):
    assert address(settings, 0, "198.51.100.7", "203.0.113.1") == "198.51.100.7"


def test_an_ignored_header_is_pointed_out_in_the_log(settings, caplog, monkeypatch):
    monkeypatch.setattr(throttle, "_warned_about_an_ignored_header", False)
    with caplog.at_level("WARNING", logger="studio.throttle"):
        address(settings, 0, "192.0.2.44", "203.0.113.1")
        address(settings, 0, "192.0.2.44", "203.0.113.2")
    warnings = [r for r in caplog.records if "TRUSTED_PROXY_COUNT" in r.getMessage()]
    assert len(warnings) == 1 and "192.0.2.44" in warnings[0].getMessage()


def test_one_proxy_means_the_rightmost_forwarded_address(settings):
    # The client wrote the left entry itself; the proxy appended the right one.
    assert address(settings, 1, forwarded="10.9.9.9, 203.0.113.5") == "203.0.113.5"
    assert address(settings, 1, forwarded="203.0.113.5") == "203.0.113.5"


def test_two_proxies_mean_the_second_from_the_right(settings):
    forwarded = "1.1.1.1, 203.0.113.5, 10.0.0.2"
    assert address(settings, 2, forwarded=forwarded) == "203.0.113.5"


@pytest.mark.parametrize(
    "forwarded", [None, "", " , ", "not-an-address", "203.0.113.5, garbage", "203.0.113.5,"]
)
def test_a_missing_or_malformed_header_falls_back_to_the_peer(settings, forwarded):
    assert address(settings, 1, "172.18.0.1", forwarded) == "172.18.0.1"


def test_a_header_shorter_than_the_proxy_chain_falls_back_to_the_peer(settings):
    assert address(settings, 3, "172.18.0.1", "203.0.113.5, 10.0.0.2") == "172.18.0.1"


def test_ports_brackets_and_mapped_addresses_are_read_canonically(settings):
    assert address(settings, 1, forwarded="203.0.113.5:51234") == "203.0.113.5"
    assert address(settings, 1, forwarded="[2001:DB8::1]:443") == "2001:db8::1"
    assert address(settings, 1, forwarded="2001:db8:0:0::1") == "2001:db8::1"
    assert address(settings, 1, forwarded="::ffff:203.0.113.5") == "203.0.113.5"


# --- look-alike usernames ---------------------------------------------------------------


def test_look_alike_usernames_share_one_key():
    assert {
        username_key(name) for name in ["vadmin", "ｖadmin", "𝐯admin", "VAdmin", " vadmin "]
    } == {"vadmin"}
    assert username_key("vadmin") != username_key("vadmin2")


def test_look_alike_usernames_are_counted_together(settings):
    make_user("vadmin")
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    client = Client(REMOTE_ADDR="203.0.113.9")
    for variant in ["vadmin", "ｖadmin", "𝐯admin"]:
        response = client.post("/signin/", {"username": variant, "password": "wrong"})
        assert response.status_code == 200
    refused = client.post("/signin/", {"username": "ＶＡＤＭＩＮ", "password": PASSWORD})
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


# --- the admin's sign-in ----------------------------------------------------------------


def test_admin_sign_in_refuses_a_brute_force_and_signs_nobody_in(settings):
    make_user("vadmin", is_staff=True, is_superuser=True)
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 5
    client = Client(REMOTE_ADDR="203.0.113.9")
    answers = [
        client.post("/admin/login/", {"username": "vadmin", "password": f"guess-{n}"}).status_code
        for n in range(60)
    ]
    assert answers[:5] == [200] * 5
    assert set(answers[5:]) == {429}
    refused = client.post("/admin/login/", {"username": "vadmin", "password": PASSWORD})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Try again in" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the sign-in page


def test_site_and_admin_sign_in_share_their_limits(settings):
    make_user("vadmin", is_staff=True)
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        client.post("/signin/", {"username": "vadmin", "password": "wrong"})
    refused = client.post("/admin/login/", {"username": "ｖadmin", "password": PASSWORD})
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_sign_in_still_works(settings):
    make_user("vadmin", is_staff=True, is_superuser=True)
    client = Client()
    response = client.post("/admin/login/", {"username": "vadmin", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


# --- changing a password ------------------------------------------------------------------


def signed_in(username: str, password: str = PASSWORD) -> Client:
    client = Client()
    assert client.post("/signin/", {"username": username, "password": password}).status_code == 302
    return client


def test_changing_a_password_ends_the_other_sessions_and_keeps_this_one(owner):
    here, laptop, phone = signed_in("olivia"), signed_in("olivia"), signed_in("olivia")
    response = here.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert not here.get("/").get("Location", "").startswith("/signin/")
    assert "_auth_user_id" in here.session
    for elsewhere in (laptop, phone):
        assert elsewhere.get("/")["Location"].startswith("/signin/")
        assert "_auth_user_id" not in elsewhere.session
    signed_in("olivia", NEW_PASSWORD)


def test_a_wrong_old_password_changes_nothing(owner):
    here, laptop = signed_in("olivia"), signed_in("olivia")
    response = here.post(
        "/account/password/",
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "_auth_user_id" in laptop.session
    assert not laptop.get("/").get("Location", "").startswith("/signin/")


def test_guessing_the_old_password_from_a_session_is_limited_like_sign_in(owner, settings):
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    stolen = signed_in("olivia")
    laptop = signed_in("olivia")
    change = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    for n in range(3):
        response = stolen.post("/account/password/", {"old_password": f"guess-{n}", **change})
        assert response.status_code == 200
    refused = stolen.post("/account/password/", {"old_password": PASSWORD, **change})
    assert refused.status_code == 429
    assert "Try again in" in refused.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert not laptop.get("/").get("Location", "").startswith("/signin/")


def test_the_admins_password_change_is_limited_too(settings):
    staff = make_user("vadmin", is_staff=True, is_superuser=True)
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 3
    client = Client()
    client.force_login(staff)
    change = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    url = "/admin/password_change/"
    assert client.get(url).status_code == 200
    for n in range(3):
        assert client.post(url, {"old_password": f"guess-{n}", **change}).status_code == 200
    assert client.post(url, {"old_password": PASSWORD, **change}).status_code == 429
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)
    settings.SIGNIN_ATTEMPTS_PER_MINUTE = 10
    response = client.post(url, {"old_password": PASSWORD, **change})
    assert response.status_code == 302 and response["Location"] == "/admin/password_change/done/"
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)
