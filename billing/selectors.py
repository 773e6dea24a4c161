"""Reads for billing pages and for other apps: balances, limits, ledger, usage, reconcile."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import LedgerEntry, MemberCap, UsageRecord, Wallet
from .periods import period_start
from .prices import price_lookup
from .services import TIER_LABELS, limits_left

# The "all-Pro" counterfactual for the tiering-savings figure: a Flash draft
# is what a team would otherwise have rendered on Pro at the size heroes are
# usually delivered at. Pro's 2K price is that per-image cost (Pro 1K costs
# the same, 4K is the exception rather than the rule for exploration).
ALL_PRO_TIER, ALL_PRO_SIZE = "pro", "2K"


@dataclass(frozen=True)
class LimitLeft:
    label: str
    left: int
    limit: int


def wallet_balance(team) -> tuple[int, int]:
    """(available, held); a team without a wallet yet has (0, 0)."""
    row = Wallet.objects.filter(team=team).values_list("available", "held").first()
    return row or (0, 0)


def wallet_of(team) -> Wallet | None:
    return Wallet.objects.filter(team=team).first()


def member_limits(team, member) -> list[LimitLeft]:
    wallet = wallet_of(team)
    if wallet is None:
        return []
    return [
        LimitLeft(label=label, left=left, limit=limit)
        for label, left, limit, _tier in limits_left(wallet=wallet, member=member)
    ]


def ledger_entries(team, *, kind: str = "", member_id: int | None = None):
    entries = LedgerEntry.objects.filter(wallet__team=team).select_related("member", "actor")
    if kind:
        entries = entries.filter(kind=kind)
    if member_id:
        entries = entries.filter(member_id=member_id)
    return entries.order_by("-created", "-id")


# A grid settles image by image: one capture (or release) entry per image.
# The ledger page shows them as one row per batch and kind, opened on demand.
GROUPED_KINDS = (LedgerEntry.Kind.CAPTURE, LedgerEntry.Kind.RELEASE)


def _sum_of(siblings, column: str):
    return Coalesce(
        Subquery(siblings.values("hold_id").annotate(total=Sum(column)).values("total")[:1]), 0
    )


def ledger_rows(team, *, kind: str = "", member_id: int | None = None):
    """The ledger, newest first, with a batch's captures (and releases) as one row.

    Each grouped row is the group's newest entry, annotated with the group's
    totals (`group_size`, `group_images`, `group_available`, `group_held`);
    every other entry is a row of its own (group_size 1). Paginate it, then
    `ledger_parts` fetches the entries of the groups on the page.
    """
    entries = ledger_entries(team, kind=kind, member_id=member_id)
    siblings = entries.model.objects.filter(
        hold_id=OuterRef("hold_id"), kind=OuterRef("kind")
    ).order_by()
    if member_id:
        siblings = siblings.filter(member_id=member_id)
    groupable = Q(kind__in=GROUPED_KINDS, hold__isnull=False)
    newest_of_group = groupable & ~Exists(siblings.filter(id__gt=OuterRef("id")))
    return (
        entries.filter(newest_of_group | ~groupable)
        .select_related("hold")
        .annotate(
            group_size=Coalesce(
                Subquery(siblings.values("hold_id").annotate(n=Count("id")).values("n")[:1]), 1
            ),
            group_images=_sum_of(siblings, "images"),
            group_available=_sum_of(siblings, "available_delta"),
            group_held=_sum_of(siblings, "held_delta"),
        )
    )


def ledger_parts(rows) -> None:
    """Give each grouped row on a page its entries (`parts`), in one query."""
    grouped = [row for row in rows if row.kind in GROUPED_KINDS and row.hold_id]
    for row in rows:
        row.parts = []
    if not grouped:
        return
    holds = {row.hold_id for row in grouped}
    by_group: dict[tuple[int, str], list[LedgerEntry]] = {}
    for entry in LedgerEntry.objects.filter(hold_id__in=holds, kind__in=GROUPED_KINDS).order_by(
        "created", "id"
    ):
        by_group.setdefault((entry.hold_id, entry.kind), []).append(entry)
    for row in grouped:
        row.parts = by_group.get((row.hold_id, row.kind), [])


def member_caps(team) -> list[MemberCap]:
    return list(
        MemberCap.objects.filter(wallet__team=team)
        .select_related("member")
        .order_by("member__username", "period", "tier")
    )


# --- usage ----------------------------------------------------------------------------


@dataclass
class UsageRow:
    member: str
    tier: str
    size: str
    images: int = 0
    cached_images: int = 0
    credits: int = 0
    saved: int = 0

    @property
    def tier_label(self) -> str:
        return TIER_LABELS.get(self.tier, self.tier)


@dataclass
class UsageReport:
    period: str
    rows: list[UsageRow] = field(default_factory=list)
    spent: int = 0
    all_pro: int = 0
    cache_saved: int = 0
    # List price minus what was paid, for images rendered on a discounted
    # lane (the provider's batch endpoint).
    batch_saved: int = 0
    batch_images: int = 0
    images: int = 0
    cached_images: int = 0

    @property
    def tiering_saved(self) -> int:
        # Against list prices: the batch lane's discount is its own figure.
        return max(0, self.all_pro - self.spent - self.batch_saved)

    @property
    def chart(self) -> list[dict]:
        """Bars for the SVG chart: one per row, scaled to the largest."""
        top = max((row.credits for row in self.rows), default=0) or 1
        return [
            {
                "label": f"{row.member} · {row.tier_label} {row.size}",
                "credits": row.credits,
                "width": round(360 * row.credits / top),
                "y": 8 + index * 26,
                "tier": row.tier,
            }
            for index, row in enumerate(self.rows)
        ]

    @property
    def chart_height(self) -> int:
        return 16 + 26 * len(self.rows)


def usage_report(team, *, period: str, member=None) -> UsageReport:
    """Usage per member × tier × size since the start of the day, week or month."""
    records = UsageRecord.objects.filter(wallet__team=team, created__gte=period_start(period))
    if member is not None:
        records = records.filter(member=member)
    grouped = (
        records.values("member__username", "tier", "size")
        .annotate(
            paid_images=Sum("images", filter=Q(cached=False)),
            cached_images=Sum("images", filter=Q(cached=True)),
            credit_sum=Sum("credits"),
            saved_sum=Sum("credits_saved"),
        )
        .order_by("member__username", "tier", "size")
    )
    all_pro_price = price_lookup(tier=ALL_PRO_TIER, size=ALL_PRO_SIZE) or 0
    report = UsageReport(period=period)
    for group in grouped:
        row = UsageRow(
            member=group["member__username"] or "(former member)",
            tier=group["tier"],
            size=group["size"],
            images=group["paid_images"] or 0,
            cached_images=group["cached_images"] or 0,
            credits=group["credit_sum"] or 0,
            saved=group["saved_sum"] or 0,
        )
        report.rows.append(row)
        report.spent += row.credits
        report.cache_saved += row.saved
        report.images += row.images
        report.cached_images += row.cached_images
        report.all_pro += all_pro_price * row.images if row.tier == "flash" else row.credits
    saved_by_tier = _discount_saved(team, period=period, member=member)
    for tier, (images, saved) in saved_by_tier.items():
        report.batch_images += images
        report.batch_saved += saved
        if tier != "flash":
            report.all_pro += saved  # Pro at list price, as the counterfactual prices it
    return report


def _discount_saved(team, *, period: str, member=None) -> dict[str, tuple[int, int]]:
    """{tier: (images, credits saved)} of the captures made below their hold's list price."""
    captures = LedgerEntry.objects.filter(
        wallet__team=team,
        kind=LedgerEntry.Kind.CAPTURE,
        created__gte=period_start(period),
        hold__list_price__gt=F("hold__unit_price"),
    )
    if member is not None:
        captures = captures.filter(member=member)
    grouped = captures.values("tier").annotate(
        image_sum=Sum("images"),
        saved_sum=Sum(
            ExpressionWrapper(
                F("images") * (F("hold__list_price") - F("hold__unit_price")),
                output_field=BigIntegerField(),
            )
        ),
    )
    return {g["tier"]: (g["image_sum"] or 0, g["saved_sum"] or 0) for g in grouped}


@dataclass
class DayBar:
    day: date
    flash: int = 0
    pro: int = 0
    images: int = 0
    # Drawing: where the stacked bar sits in the SVG (filled in by `usage_by_day`).
    x: int = 0
    width: int = 0
    flash_y: int = 0
    flash_height: int = 0
    pro_y: int = 0
    pro_height: int = 0

    @property
    def credits(self) -> int:
        return self.flash + self.pro

    @property
    def center(self) -> int:
        return self.x + self.width // 2


@dataclass
class DailyUsage:
    bars: list[DayBar]
    top: int  # the credits the chart's full height stands for
    width: int = 640
    height: int = 180
    base: int = 150  # y of the axis

    @property
    def total(self) -> int:
        return sum(bar.credits for bar in self.bars)


def usage_by_day(team, *, period: str, member=None) -> DailyUsage:
    """Credits per day (Flash and Pro stacked) from the period's start to today.

    One grouped query; days without images are drawn as empty slots so the
    chart's time axis is even.
    """
    start = period_start(period)
    records = UsageRecord.objects.filter(wallet__team=team, created__gte=start)
    if member is not None:
        records = records.filter(member=member)
    tz = timezone.get_current_timezone()
    grouped = (
        records.annotate(day=TruncDate("created", tzinfo=tz))
        .values("day", "tier")
        .annotate(credits=Sum("credits"), images=Sum("images"))
        .order_by("day")
    )
    today = timezone.localdate()
    first = start.date()
    bars = {first + timedelta(days=n): None for n in range((today - first).days + 1)}
    bars = {day: DayBar(day=day) for day in bars}
    for row in grouped:
        bar = bars.get(row["day"])
        if bar is None:
            continue
        setattr(bar, "pro" if row["tier"] == "pro" else "flash", row["credits"] or 0)
        bar.images += row["images"] or 0
    chart = DailyUsage(bars=list(bars.values()), top=0)
    chart.top = max((bar.credits for bar in chart.bars), default=0) or 1
    left, right, usable = 48, 8, chart.base - 12
    slot = (chart.width - left - right) / max(1, len(chart.bars))
    for index, bar in enumerate(chart.bars):
        bar.width = max(2, min(36, round(slot * 0.7)))
        bar.x = round(left + index * slot + (slot - bar.width) / 2)
        bar.flash_height = round(usable * bar.flash / chart.top)
        bar.pro_height = round(usable * bar.pro / chart.top)
        bar.flash_y = chart.base - bar.flash_height
        bar.pro_y = bar.flash_y - bar.pro_height
    return chart


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """A spreadsheet must not run a cell as a formula: quote anything that could start one."""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


# --- reconcile --------------------------------------------------------------------------


@dataclass(frozen=True)
class WalletCheck:
    team: str
    available: int
    held: int
    ledger_available: int
    ledger_held: int

    @property
    def ok(self) -> bool:
        return self.available == self.ledger_available and self.held == self.ledger_held


def wallets_reconcile() -> list[WalletCheck]:
    """For every wallet: the cached figures beside the sums of its ledger entries."""
    wallets = (
        Wallet.objects.select_related("team")
        .annotate(
            ledger_available=Sum("entries__available_delta"),
            ledger_held=Sum("entries__held_delta"),
        )
        .order_by("team__slug")
    )
    return [
        WalletCheck(
            team=wallet.team.slug,
            available=wallet.available,
            held=wallet.held,
            ledger_available=wallet.ledger_available or 0,
            ledger_held=wallet.ledger_held or 0,
        )
        for wallet in wallets
    ]
