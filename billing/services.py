"""Every write to credits: quotes, holds, captures, releases, top-ups, cache hits.

This is the boundary generation calls; nothing else touches a wallet. Each
function that moves credits writes its ledger entry, under a unique
idempotency key, in the same transaction as the move, so a repeated call
fails on that key and the whole step is undone: it moves nothing.
The wallet's cached figures change only by conditional UPDATEs that must
match a row (`available >= amount`), never by saving a value read in Python.

Holds and settlements are on the path of every image, so their common case
is a few statements in one transaction (see ledger_sql); the slower reads
that explain a refusal run only when a conditional UPDATE did not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, ExpressionWrapper, F, Sum
from django.utils import timezone

from . import alerts, ledger_sql
from .models import Hold, LedgerEntry, MemberCap, UsageRecord, Wallet
from .periods import month_start, period_start
from .prices import price_lookup
from .signals import hold_settled

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


def unit_price(*, tier: str, size: str, provider: str = "", model: str = "") -> int:
    """Credits per image; the most specific price row for the provider and model wins."""
    price = price_lookup(tier=tier, size=size, provider=provider, model=model)
    if price is None:
        raise Refusal(f"There is no price for {tier} {size}.", code="unknown_price")
    return price


def _positive_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise Refusal("The number of images must be a whole number of at least 1.", "invalid")
    return count


def at_rate(price: int, percent: int = 100) -> int:
    """A price at `percent` of itself, rounded up to whole credits (a discounted
    lane, such as the provider's batch endpoint, is priced this way)."""
    return -(-price * percent // 100)


def quote(
    *,
    tier: str,
    size: str,
    count: int,
    provider: str = "",
    model: str = "",
    price_percent: int = 100,
) -> int:
    price = unit_price(tier=tier, size=size, provider=provider, model=model)
    return at_rate(price, price_percent) * _positive_count(count)


# --- holds -----------------------------------------------------------------------


def committed_credits(*, wallet: Wallet | int, since, member=None, tier: str = "") -> int:
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


def _limits(
    *, wallet_id: int, monthly_budget: int | None, member_id: int | None
) -> list[tuple[str, int, int, str]]:
    rows = []
    caps = MemberCap.objects.filter(wallet_id=wallet_id, member_id=member_id).order_by(
        "period", "tier"
    )
    for cap in caps:
        tier_label = f"{TIER_LABELS.get(cap.tier, cap.tier)} " if cap.tier else ""
        label = f"your {tier_label}limit {cap.get_period_display()}"
        used = committed_credits(
            wallet=wallet_id, since=period_start(cap.period), member=member_id, tier=cap.tier
        )
        rows.append((label, max(0, cap.credits - used), cap.credits, cap.tier))
    if monthly_budget is not None:
        used = committed_credits(wallet=wallet_id, since=month_start())
        rows.append(
            ("the team's budget this month", max(0, monthly_budget - used), monthly_budget, "")
        )
    return rows


def limits_left(*, wallet: Wallet, member) -> list[tuple[str, int, int, str]]:
    """(label, left, limit, tier) for each of the member's caps and the team budget."""
    return _limits(wallet_id=wallet.pk, monthly_budget=wallet.monthly_budget, member_id=_pk(member))


def _pk(instance_or_id) -> int | None:
    return getattr(instance_or_id, "pk", instance_or_id)


class _Repeat(Exception):
    """A call whose key was used before: leave the atomic block, changing nothing."""

    def __init__(self, hold: Hold | None = None):
        super().__init__()
        self.hold = hold


def _check_limits(
    *, wallet_id: int, monthly_budget: int | None, member_id, tier: str, total: int
) -> None:
    for label, left, _limit, cap_tier in _limits(
        wallet_id=wallet_id, monthly_budget=monthly_budget, member_id=member_id
    ):
        if cap_tier and cap_tier != tier:
            continue
        if total > left:
            code = "team_budget" if label.startswith("the team") else "member_cap"
            raise Refusal(
                f"{label[0].upper()}{label[1:]} has {left:,} credits left; this needs {total:,}.",
                code,
            )


def _refuse_hold(*, team, member_id, tier: str, total: int, key: str) -> None:
    """The wallet did not move: say why (the slow path, so it may read freely)."""
    existing = Hold.objects.filter(key=key).first()
    if existing is not None:
        raise _Repeat(existing)
    wallet = wallet_for(team)
    if wallet.frozen:
        reason = f" ({wallet.frozen_reason})" if wallet.frozen_reason else ""
        raise Refusal(
            f"This team's credits are frozen{reason}. An owner can contact support.", "frozen"
        )
    _check_limits(
        wallet_id=wallet.pk,
        monthly_budget=wallet.monthly_budget,
        member_id=member_id,
        tier=tier,
        total=total,
    )
    raise Refusal(f"Needs {total:,} credits, {wallet.available:,} available.", "credits")


def hold_place(
    *,
    team,
    member,
    tier: str,
    size: str,
    count: int,
    key: str,
    provider: str = "",
    model: str = "",
    price_percent: int = 100,
) -> Hold:
    """Set aside credits for `count` images, or raise Refusal saying why not.

    `price_percent` prices the images below the list price (the caller's
    discounted lane); the hold keeps the list price too, for the savings report.

    Balance, caps and budget are checked and the hold taken in one atomic
    step (a savepoint inside the caller's transaction, which also creates
    the jobs). The same key again returns the first hold and moves nothing.

    The common case is three statements: the conditional wallet UPDATE
    (which also takes the wallet's row lock on PostgreSQL and tells whether
    the member has caps), the hold and its ledger entry. Caps and budget are
    read only when there are any, after that UPDATE, so under its lock.
    """
    provider, model = (provider or "").strip().lower(), (model or "").strip()
    list_price = unit_price(tier=tier, size=size, provider=provider, model=model)
    price = at_rate(list_price, price_percent)
    total = price * _positive_count(count)
    member_id = _pk(member)
    hold_values = {
        "member_id": member_id,
        "tier": tier,
        "size": size,
        "provider": provider,
        "model": model,
        "unit_price": price,
        "list_price": list_price,
        "count": count,
        "key": key,
        "created": timezone.now(),
    }
    try:
        with transaction.atomic():
            row = ledger_sql.fetch_one(
                ledger_sql.statements().wallet_hold, [total, total, team.pk, total, member_id]
            )
            if row is None:
                _refuse_hold(team=team, member_id=member_id, tier=tier, total=total, key=key)
            wallet_id, available, threshold, alerted, budget, has_caps = row
            if has_caps or budget is not None:
                # Our own earlier hold under this key counts against the caps,
                # so a repeat is recognised before they are checked.
                existing = Hold.objects.filter(key=key).first()
                if existing is not None:
                    raise _Repeat(existing)
                _check_limits(
                    wallet_id=wallet_id,
                    monthly_budget=budget,
                    member_id=member_id,
                    tier=tier,
                    total=total,
                )
            hold_values["wallet_id"] = wallet_id
            # A repeated key fails here on the unique index, undoing the UPDATE.
            hold_id = ledger_sql.insert(Hold, hold_values)
            ledger_sql.insert(
                LedgerEntry,
                {
                    "wallet_id": wallet_id,
                    "kind": LedgerEntry.Kind.HOLD,
                    "available_delta": -total,
                    "held_delta": total,
                    "member_id": member_id,
                    "tier": tier,
                    "size": size,
                    "images": count,
                    "hold_id": hold_id,
                    "idempotency_key": f"hold:{key}",
                    "created": hold_values["created"],
                },
            )
            if available < threshold and not alerted:
                alerts.low_balance_check(wallet_id=wallet_id)
    except _Repeat as repeat:
        return repeat.hold
    except IntegrityError:
        existing = Hold.objects.filter(key=key).first()
        if existing is None:
            raise
        return existing
    hold = Hold(pk=hold_id, **hold_values)
    hold._state.adding, hold._state.db = False, connection.alias
    return hold


def _refuse_settle(*, hold_id: int, images: int, ledger_key: str) -> None:
    if LedgerEntry.objects.filter(idempotency_key=ledger_key).exists():
        raise _Repeat()
    hold = Hold.objects.filter(pk=hold_id).first()
    if hold is None:
        raise Refusal(f"There is no hold {hold_id}.", "invalid")
    raise Refusal(
        f"This hold has {hold.open_images} open images; cannot settle {images}.", "invalid"
    )


def _settle(*, hold_id: int, images: int, key: str, kind: str) -> bool:
    """Capture or release `images` of a hold; False when the key was used before.

    Four statements: the hold's conditional UPDATE (which returns what the
    entry needs and, on PostgreSQL, makes a concurrent repeat wait on the
    hold's row), the wallet's, the ledger entry and, for a capture, the
    usage record. The entry's unique key turns a repeat into an
    IntegrityError that undoes the whole step.
    """
    _positive_count(images)
    capture = kind == LedgerEntry.Kind.CAPTURE
    ledger_key = f"{kind}:{key}"
    sql = ledger_sql.statements()
    try:
        with transaction.atomic():
            row = ledger_sql.fetch_one(
                sql.hold_capture if capture else sql.hold_release, [images, hold_id, images]
            )
            if row is None:
                _refuse_settle(hold_id=hold_id, images=images, ledger_key=ledger_key)
            wallet_id, member_id, tier, size, price = row
            amount = images * price
            if capture:
                moved = ledger_sql.fetch_one(sql.wallet_capture, [amount, wallet_id, amount])
            else:
                moved = ledger_sql.fetch_one(
                    sql.wallet_release, [amount, amount, wallet_id, amount]
                )
            if moved is None:
                raise Refusal("The wallet holds fewer credits than this hold claims.", "invalid")
            now = timezone.now()
            ledger_sql.insert(
                LedgerEntry,
                {
                    "wallet_id": wallet_id,
                    "kind": kind,
                    "available_delta": 0 if capture else amount,
                    "held_delta": -amount,
                    "member_id": member_id,
                    "tier": tier,
                    "size": size,
                    "images": images,
                    "hold_id": hold_id,
                    "idempotency_key": ledger_key,
                    "created": now,
                },
            )
            if capture:
                ledger_sql.insert(
                    UsageRecord,
                    {
                        "wallet_id": wallet_id,
                        "member_id": member_id,
                        "tier": tier,
                        "size": size,
                        "images": images,
                        "credits": amount,
                        "key": ledger_key,
                        "created": now,
                    },
                )
            else:
                available, threshold, alerted = moved
                if alerted and available >= threshold:
                    alerts.low_balance_reset(wallet_id=wallet_id)
    except _Repeat:
        return False
    except IntegrityError:
        if LedgerEntry.objects.filter(idempotency_key=ledger_key).exists():
            return False
        raise
    hold_settled.send(sender=Hold, kind=kind, tier=tier, images=images, credits=amount)
    return True


def hold_capture(*, hold_id: int, images: int, key: str) -> bool:
    """Charge `images` succeeded images of a hold (held -> spent)."""
    return _settle(hold_id=hold_id, images=images, key=key, kind=LedgerEntry.Kind.CAPTURE)


def hold_release(*, hold_id: int, images: int, key: str) -> bool:
    """Give back `images` failed, blocked or canceled images (held -> available)."""
    return _settle(hold_id=hold_id, images=images, key=key, kind=LedgerEntry.Kind.RELEASE)


def usage_record_cached(
    *,
    team,
    member,
    tier: str,
    size: str,
    count: int,
    key: str,
    provider: str = "",
    model: str = "",
) -> None:
    """A result served from cache: no credits move, but the member's usage shows it."""
    _positive_count(count)
    price = price_lookup(tier=tier, size=size, provider=provider, model=model)
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
        if not re.fullmatch(r"-?[0-9]{1,30}", text):
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

# Billing knows roles only as the strings studio stores on a membership.
_OWNER, _ADMIN = "owner", "admin"


def _role_of(*, team, user) -> str | None:
    return team.memberships.filter(user=user).values_list("role", flat=True).first()


def member_cap_set(
    *, team, member, period: str, tier: str, credits: int | None, actor=None
) -> None:
    """Set (or with None, remove) a member's cap for a period and tier ("" = all tiers).

    With an `actor` (a person on the billing page), the owner may cap anyone
    and an admin only plain members: an admin can neither lift the cap the
    owner set on them nor cap the owner or another admin. Without one, the
    site itself is acting (tests, scripts, the Django admin).
    """
    if actor is not None:
        role = _role_of(team=team, user=actor)
        if role not in (_OWNER, _ADMIN):
            raise PermissionDenied("Only the team's owner and admins can set limits.")
        if role == _ADMIN and _role_of(team=team, user=member) != "member":
            raise PermissionDenied(
                "Admins set limits for members only; limits on admins and on the owner are "
                "the owner's to set."
            )
    wallet = wallet_for(team)
    if credits is None:
        MemberCap.objects.filter(wallet=wallet, member=member, period=period, tier=tier).delete()
        return
    MemberCap.objects.update_or_create(
        wallet=wallet, member=member, period=period, tier=tier, defaults={"credits": credits}
    )


def member_caps_clear(*, team, member) -> None:
    """Drop every cap of a person who left the team."""
    MemberCap.objects.filter(wallet__team=team, member=member).delete()


def wallet_settings_set(
    *, team, low_balance_threshold: int, monthly_budget: int | None, actor=None
) -> None:
    """Save the low-balance alert and the team's monthly budget.

    With an `actor`, owners and admins may move the alert, but the budget is
    the owner's alone: it bounds what the whole team, admins included, may
    spend, so an admin changing it (to 0, say) could stop everyone.
    """
    wallet = wallet_for(team)
    if actor is not None:
        role = _role_of(team=team, user=actor)
        if role not in (_OWNER, _ADMIN):
            raise PermissionDenied("Only the team's owner and admins can change billing settings.")
        if role != _OWNER and monthly_budget != wallet.monthly_budget:
            raise PermissionDenied("Only the team's owner can change the team's monthly budget.")
    # Only these two columns: saving the whole row would write back a stale balance.
    Wallet.objects.filter(pk=wallet.pk).update(
        low_balance_threshold=low_balance_threshold, monthly_budget=monthly_budget
    )
    alerts.low_balance_reset(wallet_id=wallet.pk)


def wallet_freeze(*, team, reason: str) -> None:
    """Stop all spending from the team's wallet; its balance stays as it is."""
    Wallet.objects.filter(pk=wallet_for(team).pk).update(frozen=True, frozen_reason=reason[:300])
