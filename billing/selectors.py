"""Reads for billing pages and for other apps: balances, limits, ledger, usage, reconcile."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, Sum

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
    images: int = 0
    cached_images: int = 0

    @property
    def tiering_saved(self) -> int:
        return max(0, self.all_pro - self.spent)

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
    return report


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
