"""The billing and usage pages, the header balance, and the admin's top-up action."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.urls import reverse

from billing.models import LedgerEntry, MemberCap, Price, Wallet
from billing.selectors import wallet_balance
from billing.services import hold_capture, hold_place, usage_record_cached, wallet_settings_set
from tests.conftest import make_user

from .conftest import fund, ledger_count

pytestmark = pytest.mark.django_db


def spend(team, member, *, tier="flash", size="1K", count=1, key="k"):
    with transaction.atomic():
        hold = hold_place(team=team, member=member, tier=tier, size=size, count=count, key=key)
    hold_capture(hold_id=hold.pk, images=count, key=f"cap-{key}")


def test_billing_page_for_owner_and_admin_403_member_404_stranger(
    owner, team_admin, teammate, stranger, team, client_for
):
    fund(team, 12_000)
    url = reverse("billing", args=[team.slug])
    page = client_for(owner).get(url)
    assert page.status_code == 200
    assert "12,000" in page.content.decode()
    assert client_for(team_admin).get(url).status_code == 200
    assert client_for(teammate).get(url).status_code == 403
    assert client_for(stranger).get(url).status_code == 404


def test_ledger_filters_and_pagination(owner, teammate, team, client_for):
    fund(team, 100_000)
    for n in range(30):
        spend(team, teammate if n % 2 else owner, key=f"k{n}")
    client = client_for(owner)
    url = reverse("billing", args=[team.slug])
    first = client.get(url).content.decode()
    assert "Page 1 of 3" in first  # 1 top-up + 30 holds + 30 captures = 61 entries
    captures = client.get(url, {"kind": "capture", "member": teammate.pk}).context["page"]
    assert captures.paginator.count == 15
    assert {entry.kind for entry in captures} == {"capture"}
    assert {entry.member_id for entry in captures} == {teammate.pk}
    partial = client.get(
        url, {"kind": "top-up"}, headers={"HX-Request": "true", "HX-Target": "ledger"}
    )
    assert "<html" not in partial.content.decode()
    assert "Top-up" in partial.content.decode()


def test_top_up_form_only_for_site_staff(owner, staff, teammate, team, client_for):
    url = reverse("billing", args=[team.slug])
    assert 'id="top-up-form"' not in client_for(owner).get(url).content.decode()
    assert 'id="top-up-form"' in client_for(staff).get(url).content.decode()
    post = reverse("billing-top-up", args=[team.slug])
    form = {"amount": "5000", "note": "Welcome", "request_key": "r1"}
    for user in (owner, teammate):
        assert client_for(user).post(post, form).status_code == 403
    assert ledger_count() == 0
    response = client_for(staff).post(post, form)
    assert response.status_code == 302
    client_for(staff).post(post, form)  # the same form submitted twice credits once
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.available_delta, entry.actor, entry.note) == (
        "top-up",
        5000,
        staff,
        "Welcome",
    )


@pytest.mark.parametrize(
    "amount, message",
    [
        ("0", "more than 0"),
        ("-5", "more than 0"),
        (str(10**12), "at most 10,000,000"),
        ("ten", "not a whole number"),
    ],
)
def test_bad_top_up_amounts_get_a_clear_error(staff, team, client_for, amount, message):
    fund(team, 100)
    before = ledger_count()
    client = client_for(staff)
    response = client.post(
        reverse("billing-top-up", args=[team.slug]),
        {"amount": amount, "note": "x", "request_key": "r"},
        follow=True,
    )
    # Post/redirect/get: the billing page shows the refused form, bound, once.
    assert response.redirect_chain == [(reverse("billing", args=[team.slug]) + "#top-up-form", 302)]
    assert message in response.content.decode()
    assert message not in client.get(reverse("billing", args=[team.slug])).content.decode()
    assert ledger_count() == before
    assert wallet_balance(team) == (100, 0)


def test_top_up_without_note_is_refused(staff, team, client_for):
    response = client_for(staff).post(
        reverse("billing-top-up", args=[team.slug]),
        {"amount": "10", "note": "", "request_key": "r"},
    )
    assert response.status_code == 302
    assert ledger_count() == 0


def test_owner_sets_caps_member_cannot(owner, teammate, stranger, team, client_for):
    url = reverse("billing-caps", args=[team.slug])
    form = {"member": teammate.pk, "period": "month", "tier": "pro", "credits": "5000"}
    assert client_for(teammate).post(url, form).status_code == 403
    assert client_for(stranger).post(url, form).status_code == 404
    assert not MemberCap.objects.exists()
    assert client_for(owner).post(url, form).status_code == 302
    cap = MemberCap.objects.get()
    assert (cap.member, cap.period, cap.tier, cap.credits) == (teammate, "month", "pro", 5000)
    page = client_for(owner).get(reverse("billing", args=[team.slug])).content.decode()
    assert "your Pro limit this month" in page
    client_for(owner).post(url, {**form, "credits": ""})
    assert not MemberCap.objects.exists()
    bad = client_for(owner).post(url, {**form, "credits": "-3"}, follow=True)
    assert bad.redirect_chain[-1][1] == 302 and bad.status_code == 200
    assert 'class="error"' in bad.content.decode()
    assert not MemberCap.objects.exists()


def test_alert_and_budget_settings_managers_only(owner, teammate, team, client_for):
    url = reverse("billing-settings", args=[team.slug])
    form = {"low_balance_threshold": "2000", "monthly_budget": "90000"}
    assert client_for(teammate).post(url, form).status_code == 403
    assert client_for(owner).post(url, form).status_code == 302
    wallet = Wallet.objects.get(team=team)
    assert (wallet.low_balance_threshold, wallet.monthly_budget) == (2000, 90000)


def test_header_balance_and_its_fragment(owner, teammate, stranger, team, client_for):
    fund(team, 12_000)
    with transaction.atomic():
        hold_place(team=team, member=owner, tier="pro", size="1K", count=2, key="h")
    page = client_for(teammate).get(reverse("team", args=[team.slug])).content.decode()
    assert '<span class="credits">11,732 credits</span>' in page
    assert '<span class="held">· 268 held</span>' in page
    assert 'hx-trigger="credits-changed from:body, every 10s"' in page
    url = reverse("billing-balance", args=[team.slug])
    fragment = client_for(teammate).get(url)
    assert fragment.status_code == 200
    assert (
        fragment.content.decode().strip().startswith('<span class="credits">11,732 credits</span>')
    )
    assert client_for(stranger).get(url).status_code == 404


def test_low_balance_banner_while_below_threshold(owner, team, client_for):
    fund(team, 100)
    wallet_settings_set(team=team, low_balance_threshold=500, monthly_budget=None)
    page = client_for(owner).get(reverse("team", args=[team.slug])).content.decode()
    assert "Low balance: 100 credits left" in page
    fund(team, 1000, key="more")
    page = client_for(owner).get(reverse("team", args=[team.slug])).content.decode()
    assert "Low balance" not in page


def test_usage_team_for_managers_own_for_members(owner, teammate, stranger, team, client_for):
    fund(team, 100_000)
    spend(team, owner, tier="pro", size="4K", key="o")
    spend(team, teammate, tier="flash", size="1K", count=3, key="t")
    usage_record_cached(team=team, member=teammate, tier="flash", size="1K", count=2, key="c")
    url = reverse("billing-usage", args=[team.slug])
    team_view = client_for(owner).get(url, {"period": "week"})
    assert team_view.status_code == 200
    report = team_view.context["report"]
    assert {row.member for row in report.rows} == {"olivia", "theo"}
    assert "<svg" in team_view.content.decode()
    own = client_for(teammate).get(url, {"member": owner.pk}).context["report"]
    assert {row.member for row in own.rows} == {"theo"}
    assert own.spent == 3 * 67 and own.cached_images == 2
    assert client_for(stranger).get(url).status_code == 404
    for period in ("day", "month", "bogus"):
        assert client_for(owner).get(url, {"period": period}).status_code == 200


def test_usage_csv_is_safe_against_formula_injection(owner, team, client_for):
    fund(team, 10_000)
    attacker = make_user("=HYPERLINK(1)")
    from studio.models import Membership

    Membership.objects.create(team=team, user=attacker)
    spend(team, attacker, key="a")
    response = client_for(owner).get(reverse("billing-usage-csv", args=[team.slug]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "member"
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[1][5] == "67"


def test_admin_top_up_action_records_the_admin(team, client_for):
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    client = client_for(admin_user)
    url = reverse("admin:studio_team_changelist")
    ask = client.post(url, {"action": "top_up_credits", "_selected_action": [team.pk]})
    assert ask.status_code == 200 and "Top up credits" in ask.content.decode()
    for amount in ("0", "-5", str(10**12), "ten"):
        bad = client.post(
            url,
            {
                "action": "top_up_credits",
                "_selected_action": [team.pk],
                "apply": "1",
                "amount": amount,
                "note": "x",
                "request_key": "k",
            },
        )
        assert bad.status_code == 400
    assert ledger_count() == 0
    done = client.post(
        url,
        {
            "action": "top_up_credits",
            "_selected_action": [team.pk],
            "apply": "1",
            "amount": "2500",
            "note": "Pilot",
            "request_key": "k",
        },
    )
    assert done.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.available_delta, entry.actor, entry.note) == (2500, admin_user, "Pilot")
    no_note = client.post(
        url,
        {
            "action": "top_up_credits",
            "_selected_action": [team.pk],
            "apply": "1",
            "amount": "10",
            "note": "",
            "request_key": "k2",
        },
    )
    assert no_note.status_code == 400


def test_prices_editable_by_price_admins_only(owner, teammate, client_for):
    price = Price.objects.get(tier="pro", size="4K")
    url = reverse("admin:billing_price_change", args=[price.pk])
    form = {"tier": "pro", "size": "4K", "credits": "1"}
    # A team member without staff rights never reaches the admin.
    response = client_for(teammate).post(url, form)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    clerk = make_user("clerk", is_staff=True)
    assert client_for(clerk).post(url, form).status_code == 403
    price.refresh_from_db()
    assert price.credits == 240
    clerk.user_permissions.add(
        Permission.objects.get(codename="change_price"),
        Permission.objects.get(codename="view_price"),
    )
    assert client_for(clerk).post(url, form).status_code == 302
    price.refresh_from_db()
    assert price.credits == 1


def test_ledger_is_read_only_in_the_admin(team, client_for):
    entry = fund(team, 10)
    root = make_user("root", is_staff=True, is_superuser=True)
    client = client_for(root)
    view = client.get(reverse("admin:billing_ledgerentry_change", args=[entry.pk]))
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    delete = client.post(
        reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert LedgerEntry.objects.count() == 1


def test_unfreezing_in_the_admin_never_writes_back_a_stale_balance(team, client_for):
    fund(team, 1_000)
    Wallet.objects.filter(team=team).update(frozen=True, frozen_reason="a card payment is disputed")
    wallet = Wallet.objects.get(team=team)
    root = make_user("root", is_staff=True, is_superuser=True)
    url = reverse("admin:billing_wallet_change", args=[wallet.pk])
    assert client_for(root).get(url).status_code == 200
    fund(team, 500, key="meanwhile")  # the balance moves while the form is open
    response = client_for(root).post(
        url, {"frozen_reason": "", "low_balance_threshold": "100", "monthly_budget": ""}
    )
    assert response.status_code == 302
    wallet.refresh_from_db()
    assert (wallet.frozen, wallet.available, wallet.low_balance_threshold) == (False, 1_500, 100)


def test_billing_page_shows_this_months_usage(owner, team, client_for):
    fund(team, 10_000)
    spend(team, owner, tier="flash", size="1K", count=2, key="u")
    page = client_for(owner).get(reverse("billing", args=[team.slug])).content.decode()
    assert "Usage this month" in page and "134" in page


def test_billing_says_who_can_add_credits_when_card_payments_are_off(
    owner, staff, team, client_for, settings
):
    settings.STRIPE_SECRET_KEY = ""
    page = client_for(owner).get(reverse("billing", args=[team.slug])).content.decode()
    assert "How credits are added" in page and "Card payments are <strong>off</strong>" in page
    assert "You are not site staff" in page and "createsuperuser" in page
    assert 'id="top-up-form"' not in page
    staff_page = client_for(staff).get(reverse("billing", args=[team.slug])).content.decode()
    assert "you are site staff" in staff_page and 'id="top-up-form"' in staff_page


def test_the_demo_owner_can_top_up_in_development(settings, tmp_path, client):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    settings.DATA_DIR = tmp_path
    settings.DEBUG = True
    out = io.StringIO()
    call_command("demo", stdout=out)
    demo = get_user_model().objects.get(username="demo")
    assert demo.is_staff and "site staff here" in out.getvalue()
    team = demo.teams.get()
    client.force_login(demo)
    page = client.get(reverse("billing", args=[team.slug])).content.decode()
    assert 'id="top-up-form"' in page
    response = client.post(
        reverse("billing-top-up", args=[team.slug]),
        {"amount": "1000", "note": "first run", "request_key": "k1"},
    )
    assert response.status_code == 302
    assert wallet_balance(team)[0] == 50_000 + 1000

    # Outside development the same command leaves it an ordinary owner.
    settings.DEBUG = False
    call_command("demo", stdout=io.StringIO())
    demo.refresh_from_db()
    assert not demo.is_staff and not demo.is_superuser


def test_the_ledger_shows_a_batchs_captures_as_one_row(owner, team, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fund(team, 100_000)
    for grid in range(3):
        hold = hold_place(team=team, member=owner, tier="flash", size="1K", count=12,
                          key=f"batch:{grid}")  # fmt: skip
        for image in range(12):
            hold_capture(hold_id=hold.pk, images=1, key=f"gen:{grid}:{image}")
    assert ledger_count() == 1 + 3 * (1 + 12)
    client = client_for(owner)
    url = reverse("billing", args=[team.slug])
    with CaptureQueriesContext(connection) as page_queries:
        page = client.get(url).content.decode()
    ledger = page.split('class="table ledger"')[1].split("</table>")[0]
    # A top-up, three holds and three capture rows: one page, not two.
    assert ledger.count("<tr") == 1 + 1 + 3 + 3
    assert ledger.count('class="ledger-group"') == 3 and "Capture <span" in ledger
    assert ledger.count("<details>") == 3 and ledger.count("<li>") == 36
    assert "−" not in ledger and "-804" in ledger  # 12 × 67 captured from held
    assert "Page 1 of" not in page
    # Filtering by kind keeps the grouping.
    captures = client.get(url, {"kind": "capture"}).content.decode()
    assert captures.split('class="table ledger"')[1].count('class="ledger-group"') == 3
    # The ledger's cost does not grow with the entries on the page.
    hold = hold_place(team=team, member=owner, tier="flash", size="1K", count=12, key="batch:9")
    for image in range(12):
        hold_capture(hold_id=hold.pk, images=1, key=f"gen:9:{image}")
    with CaptureQueriesContext(connection) as more_queries:
        client.get(url)
    assert len(more_queries.captured_queries) == len(page_queries.captured_queries)
