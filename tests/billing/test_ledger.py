"""Holds, captures, releases, caps and top-ups through the service boundary."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Hold, LedgerEntry, Price, UsageRecord, Wallet
from billing.selectors import member_limits, usage_report, wallet_balance
from billing.services import (
    Refusal,
    hold_capture,
    hold_place,
    hold_release,
    member_cap_set,
    quote,
    usage_record_cached,
    wallet_settings_set,
    wallet_top_up,
)
from billing.tasks import reconcile_wallets

from .conftest import fund, ledger_count

pytestmark = pytest.mark.django_db


def place(team, member, *, tier="flash", size="1K", count=1, key="k1"):
    with transaction.atomic():
        return hold_place(team=team, member=member, tier=tier, size=size, count=count, key=key)


def test_default_prices_are_the_list_prices():
    prices = {(p.tier, p.size): p.credits for p in Price.objects.all()}
    assert prices == {
        ("flash", "512"): 45,
        ("flash", "1K"): 67,
        ("flash", "2K"): 101,
        ("flash", "4K"): 151,
        ("pro", "1K"): 134,
        ("pro", "2K"): 134,
        ("pro", "4K"): 240,
    }
    assert quote(tier="pro", size="4K", count=3) == 720


def test_unknown_tier_or_size_is_refused_and_ledger_untouched(team, owner):
    fund(team, 10_000)
    before = ledger_count()
    for tier, size in [("pro", "512"), ("ultra", "1K"), ("flash", "8K")]:
        with pytest.raises(Refusal) as refused:
            place(team, owner, tier=tier, size=size)
        assert refused.value.code == "unknown_price"
        assert f"{tier} {size}" in refused.value.message
    with pytest.raises(Refusal):
        quote(tier="pro", size="512", count=1)
    assert ledger_count() == before
    assert wallet_balance(team) == (10_000, 0)


def test_hold_capture_release_move_credits_and_reconcile(team, owner):
    fund(team, 1_000)
    hold = place(team, owner, tier="flash", size="2K", count=5, key="batch-1")
    assert wallet_balance(team) == (1_000 - 505, 505)
    assert hold_capture(hold_id=hold.pk, images=3, key="gen-1-3")
    assert hold_release(hold_id=hold.pk, images=2, key="gen-4-5")
    assert wallet_balance(team) == (1_000 - 303, 0)
    hold.refresh_from_db()
    assert (hold.captured, hold.released) == (3, 2)
    kinds = list(LedgerEntry.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["top-up", "hold", "capture", "release"]
    call_command("reconcile")
    assert reconcile_wallets() == 0


def test_same_hold_key_returns_the_first_hold_and_moves_nothing(team, owner):
    fund(team, 1_000)
    first = place(team, owner, count=2, key="same")
    entries = ledger_count()
    again = place(team, owner, count=2, key="same")
    assert again.pk == first.pk
    assert ledger_count() == entries
    assert wallet_balance(team) == (1_000 - 134, 134)


def test_repeated_capture_and_release_change_nothing_after_the_first(team, owner):
    fund(team, 1_000)
    hold = place(team, owner, count=4)
    results = [hold_capture(hold_id=hold.pk, images=2, key="cap") for _ in range(3)]
    results += [hold_release(hold_id=hold.pk, images=1, key="rel") for _ in range(3)]
    assert results == [True, False, False, True, False, False]
    assert wallet_balance(team) == (1_000 - 3 * 67, 67)
    assert UsageRecord.objects.filter(cached=False).count() == 1


def test_cannot_settle_more_images_than_the_hold_has(team, owner):
    fund(team, 1_000)
    hold = place(team, owner, count=2)
    assert hold_capture(hold_id=hold.pk, images=2, key="a")
    before = ledger_count()
    with pytest.raises(Refusal) as refused:
        hold_release(hold_id=hold.pk, images=1, key="b")
    assert refused.value.code == "invalid"
    assert ledger_count() == before
    assert wallet_balance(team) == (1_000 - 134, 0)


def test_price_change_never_alters_a_hold_already_taken(team, owner):
    fund(team, 1_000)
    hold = place(team, owner, tier="pro", size="4K", count=2)
    Price.objects.filter(tier="pro", size="4K").update(credits=999)
    assert hold_capture(hold_id=hold.pk, images=1, key="c")
    assert hold_release(hold_id=hold.pk, images=1, key="r")
    assert wallet_balance(team) == (1_000 - 240, 0)


def test_not_enough_credits_says_how_many_with_figures(team, owner):
    fund(team, 1_200)
    before = ledger_count()
    with pytest.raises(Refusal) as refused:
        place(team, owner, tier="flash", size="1K", count=50)
    assert refused.value.code == "credits"
    assert refused.value.message == "Needs 3,350 credits, 1,200 available."
    assert ledger_count() == before


def test_member_caps_per_tier_and_total_with_what_is_left(team, owner, teammate):
    fund(team, 100_000)
    member_cap_set(team=team, member=teammate, period="month", tier="pro", credits=670)
    member_cap_set(team=team, member=teammate, period="day", tier="", credits=2_000)
    place(team, teammate, tier="pro", size="2K", count=2, key="p1")  # 268 of 670
    with pytest.raises(Refusal) as refused:
        place(team, teammate, tier="pro", size="2K", count=4, key="p2")  # 536 > 402
    assert refused.value.code == "member_cap"
    assert "Your Pro limit this month has 402 credits left" in refused.value.message
    # Flash is not limited by the Pro cap, only by the daily total.
    place(team, teammate, tier="flash", size="4K", count=10, key="f1")  # 1,510
    with pytest.raises(Refusal) as refused:
        place(team, teammate, tier="flash", size="4K", count=2, key="f2")
    assert "Your limit today has 222 credits left" in refused.value.message
    # The owner has no caps.
    place(team, owner, tier="pro", size="4K", count=10, key="o1")
    limits = {limit.label: (limit.left, limit.limit) for limit in member_limits(team, teammate)}
    assert limits == {"your limit today": (222, 2_000), "your Pro limit this month": (402, 670)}


def test_released_images_give_their_cap_back(team, teammate):
    fund(team, 10_000)
    member_cap_set(team=team, member=teammate, period="month", tier="", credits=134)
    hold = place(team, teammate, tier="pro", size="1K", count=1, key="a")
    with pytest.raises(Refusal):
        place(team, teammate, tier="pro", size="1K", count=1, key="b")
    hold_release(hold_id=hold.pk, images=1, key="failed")
    place(team, teammate, tier="pro", size="1K", count=1, key="b")


def test_caps_count_only_the_current_period(team, teammate):
    fund(team, 10_000)
    member_cap_set(team=team, member=teammate, period="day", tier="", credits=100)
    place(team, teammate, size="1K", count=1, key="old")
    Hold.objects.filter(key="old").update(created=timezone.now() - timedelta(days=2))
    place(team, teammate, size="1K", count=1, key="today")


def test_team_monthly_budget(team, owner, teammate):
    fund(team, 10_000)
    wallet_settings_set(team=team, low_balance_threshold=0, monthly_budget=300)
    place(team, owner, size="2K", count=2, key="a")  # 202
    with pytest.raises(Refusal) as refused:
        place(team, teammate, size="2K", count=1, key="b")
    assert refused.value.code == "team_budget"
    assert "The team's budget this month has 98 credits left" in refused.value.message


def test_frozen_wallet_refuses_holds_but_settles_running_ones(team, owner):
    fund(team, 1_000)
    hold = place(team, owner, count=2, key="running")
    Wallet.objects.filter(team=team).update(frozen=True, frozen_reason="a card payment is disputed")
    with pytest.raises(Refusal) as refused:
        place(team, owner, key="new")
    assert refused.value.code == "frozen"
    assert "disputed" in refused.value.message
    assert hold_capture(hold_id=hold.pk, images=2, key="done")


def test_refusal_inside_the_callers_transaction_keeps_the_callers_work(team, owner):
    fund(team, 100)
    with transaction.atomic():
        Wallet.objects.filter(team=team).update(low_balance_threshold=1)  # caller's own write
        with pytest.raises(Refusal):
            hold_place(team=team, member=owner, tier="pro", size="4K", count=1, key="x")
    assert Wallet.objects.get(team=team).low_balance_threshold == 1


def test_cache_hits_cost_nothing_and_show_in_usage(team, owner):
    fund(team, 1_000)
    for _ in range(2):
        usage_record_cached(team=team, member=owner, tier="pro", size="2K", count=3, key="hit")
    assert wallet_balance(team) == (1_000, 0)
    report = usage_report(team, period="day")
    assert report.cached_images == 3 and report.spent == 0
    assert report.cache_saved == 3 * 134


def test_tiering_savings_compare_with_all_pro_at_2k(team, owner):
    fund(team, 10_000)
    drafts = place(team, owner, tier="flash", size="1K", count=10, key="drafts")
    hero = place(team, owner, tier="pro", size="4K", count=1, key="hero")
    hold_capture(hold_id=drafts.pk, images=10, key="d")
    hold_capture(hold_id=hero.pk, images=1, key="h")
    report = usage_report(team, period="month")
    assert report.spent == 670 + 240
    assert report.all_pro == 10 * 134 + 240
    assert report.tiering_saved == 10 * (134 - 67)


@pytest.mark.parametrize("amount", [0, -5, 10**12, "ten", 2.5, True, None])
def test_bad_top_ups_are_refused_and_ledger_untouched(team, owner, amount):
    before = ledger_count()
    with pytest.raises(Refusal) as refused:
        wallet_top_up(team=team, amount=amount, actor=owner, note="x", idempotency_key="bad")
    assert refused.value.code == "invalid"
    assert ledger_count() == before


def test_top_up_needs_a_note_and_is_idempotent(team, owner):
    with pytest.raises(Refusal, match="note"):
        wallet_top_up(team=team, amount=10, actor=owner, note="  ", idempotency_key="n")
    first = wallet_top_up(team=team, amount=500, actor=owner, note="Gift", idempotency_key="g")
    again = wallet_top_up(team=team, amount=500, actor=owner, note="Gift", idempotency_key="g")
    assert first.pk == again.pk
    assert first.actor == owner and first.note == "Gift"
    assert wallet_balance(team) == (500, 0)


def test_ledger_entries_cannot_be_changed_or_deleted(team):
    entry = fund(team, 10)
    entry.note = "edited"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).update(note="edited")
    with pytest.raises(TypeError):
        LedgerEntry.objects.all().delete()


def test_database_refuses_a_negative_balance(team):
    fund(team, 10)
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(team=team).update(available=-1)


def test_reconcile_reports_a_mismatch_and_exits_1(team, capsys):
    fund(team, 100)
    call_command("reconcile")
    assert "1 wallets, 1 match, 0 mismatched" in capsys.readouterr().out
    Wallet.objects.filter(team=team).update(available=99)
    with pytest.raises(CommandError) as failed:
        call_command("reconcile")
    assert failed.value.returncode == 1
    assert f"MISMATCH {team.slug}: available 99 cached, 100 in ledger" in capsys.readouterr().out
    assert reconcile_wallets() == 1


def test_low_balance_emails_owners_and_admins_once_per_crossing(
    team, owner, team_admin, teammate, django_capture_on_commit_callbacks
):
    owner.email = "olivia@example.com"
    owner.save()
    teammate.email = "theo@example.com"
    teammate.save()
    fund(team, 1_000)
    wallet_settings_set(team=team, low_balance_threshold=800, monthly_budget=None)
    with django_capture_on_commit_callbacks(execute=True):
        place(team, owner, size="2K", count=2, key="a")  # 798: crosses
        place(team, owner, size="2K", count=1, key="b")  # still below: no second email
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["ada@example.com", "olivia@example.com"]
    assert "running low" in mail.outbox[0].subject
    with django_capture_on_commit_callbacks(execute=True):
        fund(team, 1_000, key="more")  # back above: the next crossing alerts again
        place(team, owner, tier="pro", size="4K", count=5, key="c")
    assert len(mail.outbox) == 2


@pytest.mark.parametrize("amount", ["--5", "²", "1-2"])
def test_odd_top_up_amounts_are_refused_in_words(amount):
    from billing.services import Refusal, parse_top_up_amount

    with pytest.raises(Refusal, match="not a whole number"):
        parse_top_up_amount(amount)
