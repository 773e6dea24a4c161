"""Every write to credits: quotes, holds, captures, releases, top-ups, cache hits.

This is the boundary generation calls; nothing else touches a wallet. Each
function that moves credits writes its ledger entry first, under a unique
idempotency key, so a repeated call fails on that key and moves nothing.
The wallet's cached figures change only by conditional UPDATEs checked by
row count (`available >= amount`), never by saving a value read in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, ExpressionWrapper, F, Sum

from . import alerts
from .models import Hold, LedgerEntry, MemberCap, Price, UsageRecord, Wallet
from .periods import month_start, period_start

TIER_LABELS = {"flash": "Flash", "pro": "Pro"}


class Refusal(Exception):
    """Why credits were not moved, in words a designer understands, with figures."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Shortfall:
    label: str
    left: int


def wallet_for(team) -> Wallet:
    """The team's wallet, created on first use."""
    wallet, _ = Wallet.objects.get_or_create(team=team)
    return wallet


def _locked_wallet(team) -> Wallet:
    # On PostgreSQL the row lock serializes everything that checks caps and
    # balance for one team; SQLite's IMMEDIATE transactions already hold the
    # database's write lock (select_for_update is a no-op there).
    wallet_for(team)
    return Wallet.objects.select_for_update().get(team=team)


def unit_price(*, tier: str, size: str) -> int:
    price = Price.objects.filter(tier=tier, size=size).values_list("credits", flat=True).first()
    if price is None:
        raise Refusal(f"There is no price for {tier} {size}.", code="unknown_price")
    return price


def _positive_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise Refusal("The number of images must be a whole number of at least 1.", "invalid")
    return count


def quote(*, tier: str, size: str, count: int) -> int:
    return unit_price(tier=tier, size=size) * _positive_count(count)


# --- holds -----------------------------------------------------------------------


def committed_credits(*, wallet: Wallet, since, member=None, tier: str = "") -> int:
    """Credits held or captured by holds taken since `since` (released images excluded)."""
    holds = Hold.objects.filter(wallet=wallet, created__gte=since)
    if member is not None:
        holds = holds.filter(member=member)
    if tier:
        holds = holds.filter(tier=tier)
    spent = ExpressionWrapper(
        (F("count") - F("released")) * F("unit_price"), output_field=BigIntegerField()
    )
    return holds.aggregate(total=Sum(spent))["total"] or 0


def limits_left(*, wallet: Wallet, member) -> list[tuple[str, int, int, str]]:
    """(label, left, limit, tier) for each of the member's caps and the team budget."""
    rows = []
    caps = MemberCap.objects.filter(wallet=wallet, member=member).order_by("period", "tier")
    for cap in caps:
        tier_label = f"{TIER_LABELS.get(cap.tier, cap.tier)} " if cap.tier else ""
        label = f"your {tier_label}limit {cap.get_period_display()}"
        used = committed_credits(
            wallet=wallet, since=period_start(cap.period), member=member, tier=cap.tier
        )
        rows.append((label, max(0, cap.credits - used), cap.credits, cap.tier))
    if wallet.monthly_budget is not None:
        used = committed_credits(wallet=wallet, since=month_start())
        rows.append(
            (
                "the team's budget this month",
                max(0, wallet.monthly_budget - used),
                wallet.monthly_budget,
                "",
            )
        )
    return rows


def hold_place(*, team, member, tier: str, size: str, count: int, key: str) -> Hold:
    """Set aside credits for `count` images, or raise Refusal saying why not.

    Balance, caps and budget are checked and the hold taken in one atomic
    step (a savepoint inside the caller's transaction, which also creates
    the jobs). The same key again returns the first hold and moves nothing.
    """
    price = unit_price(tier=tier, size=size)
    total = price * _positive_count(count)
    with transaction.atomic():
        wallet = _locked_wallet(team)
        # Looked up after the lock: a concurrent call with the same key has
        # committed by now, so its hold is visible and nothing is taken twice.
        existing = Hold.objects.filter(key=key).first()
        if existing is not None:
            return existing
        if wallet.frozen:
            reason = f" ({wallet.frozen_reason})" if wallet.frozen_reason else ""
            raise Refusal(
                f"This team's credits are frozen{reason}. An owner can contact support.", "frozen"
            )
        for label, left, _limit, cap_tier in limits_left(wallet=wallet, member=member):
            if cap_tier and cap_tier != tier:
                continue
            if total > left:
                code = "team_budget" if label.startswith("the team") else "member_cap"
                raise Refusal(
                    f"{label[0].upper()}{label[1:]} has {left:,} credits left; "
                    f"this needs {total:,}.",
                    code,
                )
        moved = Wallet.objects.filter(pk=wallet.pk, available__gte=total).update(
            available=F("available") - total, held=F("held") + total
        )
        if not moved:
            raise Refusal(f"Needs {total:,} credits, {wallet.available:,} available.", "credits")
        hold = Hold.objects.create(
            wallet=wallet,
            member=member,
            tier=tier,
            size=size,
            unit_price=price,
            count=count,
            key=key,
        )
        LedgerEntry.objects.create(
            wallet=wallet,
            kind=LedgerEntry.Kind.HOLD,
            available_delta=-total,
            held_delta=total,
            member=member,
            tier=tier,
            size=size,
            images=count,
            hold=hold,
            idempotency_key=f"hold:{key}",
        )
        alerts.low_balance_check(wallet_id=wallet.pk)
    return hold


def _settle(*, hold_id: int, images: int, key: str, kind: str) -> bool:
    """Capture or release `images` of a hold; False when the key was used before."""
    _positive_count(images)
    capture = kind == LedgerEntry.Kind.CAPTURE
    ledger_key = f"{kind}:{key}"
    if LedgerEntry.objects.filter(idempotency_key=ledger_key).exists():
        return False
    try:
        with transaction.atomic():
            hold = Hold.objects.select_related("wallet").filter(pk=hold_id).first()
            if hold is None:
                raise Refusal(f"There is no hold {hold_id}.", "invalid")
            amount = images * hold.unit_price
            # The entry goes first: it claims the key, so a concurrent repeat
            # waits on the unique index and then fails without moving anything.
            LedgerEntry.objects.create(
                wallet=hold.wallet,
                kind=kind,
                available_delta=0 if capture else amount,
                held_delta=-amount,
                member=hold.member,
                tier=hold.tier,
                size=hold.size,
                images=images,
                hold=hold,
                idempotency_key=ledger_key,
            )
            counter = "captured" if capture else "released"
            settled = Hold.objects.filter(
                pk=hold_id, count__gte=F("captured") + F("released") + images
            ).update(**{counter: F(counter) + images})
            if not settled:
                raise Refusal(
                    f"This hold has {hold.open_images} open images; cannot settle {images}.",
                    "invalid",
                )
            changes = {"held": F("held") - amount}
            if not capture:
                changes["available"] = F("available") + amount
            moved = Wallet.objects.filter(pk=hold.wallet_id, held__gte=amount).update(**changes)
            if not moved:
                raise Refusal("The wallet holds fewer credits than this hold claims.", "invalid")
            if capture:
                UsageRecord.objects.create(
                    wallet=hold.wallet,
                    member=hold.member,
                    tier=hold.tier,
                    size=hold.size,
                    images=images,
                    credits=amount,
                    key=ledger_key,
                )
            else:
                alerts.low_balance_reset(wallet_id=hold.wallet_id)
    except IntegrityError:
        if LedgerEntry.objects.filter(idempotency_key=ledger_key).exists():
            return False
        raise
    return True


def hold_capture(*, hold_id: int, images: int, key: str) -> bool:
    """Charge `images` succeeded images of a hold (held -> spent)."""
    return _settle(hold_id=hold_id, images=images, key=key, kind=LedgerEntry.Kind.CAPTURE)


def hold_release(*, hold_id: int, images: int, key: str) -> bool:
    """Give back `images` failed, blocked or canceled images (held -> available)."""
    return _settle(hold_id=hold_id, images=images, key=key, kind=LedgerEntry.Kind.RELEASE)


def usage_record_cached(*, team, member, tier: str, size: str, count: int, key: str) -> None:
    """A result served from cache: no credits move, but the member's usage shows it."""
    _positive_count(count)
    price = Price.objects.filter(tier=tier, size=size).values_list("credits", flat=True).first()
    try:
        with transaction.atomic():
            UsageRecord.objects.create(
                wallet=wallet_for(team),
                member=member,
                tier=tier,
                size=size,
                images=count,
                cached=True,
                credits_saved=(price or 0) * count,
                key=f"cached:{key}",
            )
    except IntegrityError:
        pass  # recorded before: a repeat changes nothing


# --- credits in ---------------------------------------------------------------------


def parse_top_up_amount(amount) -> int:
    """An integer 0 < amount <= TOP_UP_CEILING, or Refusal(code="invalid")."""
    ceiling = settings.TOP_UP_CEILING
    if isinstance(amount, str):
        text = amount.strip().replace(",", "").replace("_", "")
        if not text.lstrip("-").isdigit():
            raise Refusal(f"“{amount}” is not a whole number of credits.", "invalid")
        amount = int(text)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise Refusal("The amount must be a whole number of credits.", "invalid")
    if amount <= 0:
        raise Refusal("The amount must be more than 0 credits.", "invalid")
    if amount > ceiling:
        raise Refusal(f"The amount must be at most {ceiling:,} credits.", "invalid")
    return amount


def credit_wallet(
    *,
    wallet: Wallet,
    amount: int,
    kind: str,
    idempotency_key: str,
    actor=None,
    note: str = "",
    purchase=None,
) -> tuple[LedgerEntry, bool]:
    """Add credits to available once per key; returns (entry, created)."""
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                wallet=wallet,
                kind=kind,
                available_delta=amount,
                actor=actor,
                note=note,
                purchase=purchase,
                idempotency_key=idempotency_key,
            )
            Wallet.objects.filter(pk=wallet.pk).update(available=F("available") + amount)
            alerts.low_balance_reset(wallet_id=wallet.pk)
    except IntegrityError:
        return LedgerEntry.objects.get(idempotency_key=idempotency_key), False
    return entry, True


def wallet_top_up(*, team, amount: int, actor, note: str, idempotency_key: str) -> LedgerEntry:
    """A manual top-up by a site admin; the same key again returns the first entry."""
    amount = parse_top_up_amount(amount)
    note = (note or "").strip()
    if not note:
        raise Refusal("A note is required: say why these credits are given.", "invalid")
    entry, _created = credit_wallet(
        wallet=wallet_for(team),
        amount=amount,
        kind=LedgerEntry.Kind.TOP_UP,
        idempotency_key=f"top-up:{idempotency_key}",
        actor=actor,
        note=note[:300],
    )
    return entry


# --- team settings --------------------------------------------------------------------


def member_cap_set(*, team, member, period: str, tier: str, credits: int | None) -> None:
    """Set (or with None, remove) a member's cap for a period and tier ("" = all tiers)."""
    wallet = wallet_for(team)
    if credits is None:
        MemberCap.objects.filter(wallet=wallet, member=member, period=period, tier=tier).delete()
        return
    MemberCap.objects.update_or_create(
        wallet=wallet, member=member, period=period, tier=tier, defaults={"credits": credits}
    )


def wallet_settings_set(*, team, low_balance_threshold: int, monthly_budget: int | None) -> None:
    wallet = wallet_for(team)
    # Only these two columns: saving the whole row would write back a stale balance.
    Wallet.objects.filter(pk=wallet.pk).update(
        low_balance_threshold=low_balance_threshold, monthly_budget=monthly_budget
    )
    alerts.low_balance_reset(wallet_id=wallet.pk)
