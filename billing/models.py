"""Wallets, the credit ledger, holds, prices, caps and Stripe purchases.

Amounts are integer credits (1 credit = $0.001 of provider list price by
default). The wallet caches `available` and `held`; every change to either is
also an append-only LedgerEntry, and `manage.py reconcile` proves the two
agree. Billing knows nothing about images: a hold is keyed by an opaque
string that the caller supplies.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


def default_low_balance_threshold() -> int:
    return settings.LOW_BALANCE_THRESHOLD


class Wallet(models.Model):
    team = models.OneToOneField("studio.Team", on_delete=models.CASCADE, related_name="wallet")
    # Cached sums of the ledger. Only ever changed by conditional UPDATEs with
    # F() expressions in billing.services, never by saving a loaded instance.
    available = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    frozen = models.BooleanField(default=False)
    frozen_reason = models.CharField(max_length=300, blank=True)
    low_balance_threshold = models.BigIntegerField(
        default=default_low_balance_threshold,
        help_text="Owners and admins are emailed below this many credits.",
    )
    # Set when the alert for the current dip below the threshold went out;
    # cleared when the balance is back above it, so each crossing alerts once.
    low_balance_alerted = models.BooleanField(default=False)
    monthly_budget = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Credits the whole team may spend per month; empty = no budget.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(available__gte=0), name="wallet_available_not_negative"
            ),
            models.CheckConstraint(condition=Q(held__gte=0), name="wallet_held_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Wallet of {self.team}"

    @property
    def is_low(self) -> bool:
        return self.available < self.low_balance_threshold


class Price(models.Model):
    """Credits per image for a tier and size, optionally for one provider and model.

    Blank provider and model mean "any": the blank/blank row is the tier's
    default, and a row naming a provider (and a model of it) overrides it for
    studios that route the tier there. A hold copies the price it was taken at.
    """

    tier = models.CharField(max_length=10)
    size = models.CharField(max_length=10)
    provider = models.CharField(
        max_length=40, blank=True, default="", help_text="Empty: any provider."
    )
    model = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="Empty: any model of the provider. A model needs its provider.",
    )
    credits = models.PositiveIntegerField()

    class Meta:
        ordering = ["tier", "credits", "provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["tier", "size", "provider", "model"],
                name="one_price_per_tier_size_provider_model",
            ),
            models.CheckConstraint(
                condition=Q(model="") | ~Q(provider=""), name="price_model_needs_provider"
            ),
        ]

    def __str__(self) -> str:
        backend = "/".join(part for part in (self.provider, self.model) if part)
        where = f" on {backend}" if backend else ""
        return f"{self.tier} {self.size}{where}: {self.credits} credits"

    def clean(self):
        super().clean()
        self.provider = self.provider.strip().lower()
        self.model = self.model.strip()
        if self.model and not self.provider:
            raise ValidationError({"provider": "Choose the provider this model belongs to."})


class Hold(models.Model):
    """Credits set aside for `count` images; each image is later captured or released."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="holds")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    tier = models.CharField(max_length=10)
    size = models.CharField(max_length=10)
    # The backend the price was looked up for (blank: the tier's default price).
    provider = models.CharField(max_length=40, blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="")
    unit_price = models.PositiveIntegerField()
    # The price table's price when the hold was taken; above unit_price for a
    # discounted lane (0 on holds from before it was kept).
    list_price = models.PositiveIntegerField(default=0)
    count = models.PositiveIntegerField()
    captured = models.PositiveIntegerField(default=0)
    released = models.PositiveIntegerField(default=0)
    key = models.CharField(max_length=200, unique=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(captured__gte=0)
                & Q(released__gte=0)
                & Q(count__gte=F("captured") + F("released")),
                name="hold_settles_at_most_count",
            )
        ]

    def __str__(self) -> str:
        return f"Hold {self.key} ({self.count} × {self.unit_price})"

    @property
    def open_images(self) -> int:
        return self.count - self.captured - self.released


class LedgerQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The ledger is append-only: entries are never updated.")

    def delete(self):
        raise TypeError("The ledger is append-only: entries are never deleted.")


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        TOP_UP = "top-up", "Top-up"
        PURCHASE = "purchase", "Purchase"
        HOLD = "hold", "Hold"
        CAPTURE = "capture", "Capture"
        RELEASE = "release", "Release"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Signed changes to the wallet's two figures; the wallet is their sum.
    available_delta = models.BigIntegerField(default=0)
    held_delta = models.BigIntegerField(default=0)
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    tier = models.CharField(max_length=10, blank=True)
    size = models.CharField(max_length=10, blank=True)
    images = models.PositiveIntegerField(default=0)
    hold = models.ForeignKey(
        Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    purchase = models.ForeignKey(
        "Purchase", on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.available_delta:+} / held {self.held_delta:+}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("The ledger is append-only: entries are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The ledger is append-only: entries are never deleted.")

    @property
    def credits(self) -> int:
        """What the entry did to the team's spendable-plus-held total."""
        return self.available_delta + self.held_delta


class MemberCap(models.Model):
    class Period(models.TextChoices):
        DAY = "day", "today"
        MONTH = "month", "this month"

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="caps")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=5, choices=Period.choices)
    tier = models.CharField(max_length=10, blank=True, help_text="Empty: all tiers together.")
    credits = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["wallet", "member", "period", "tier"], name="one_cap_per_member_period_tier"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member}: {self.credits} {self.tier or 'all tiers'} {self.period}"


class UsageRecord(models.Model):
    """Images delivered to a member: captured (paid) or served from cache (free)."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="usage")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    tier = models.CharField(max_length=10)
    size = models.CharField(max_length=10)
    images = models.PositiveIntegerField()
    credits = models.PositiveBigIntegerField(default=0)
    cached = models.BooleanField(default=False)
    # For a cache hit: what the images would have cost at the price of the day.
    credits_saved = models.PositiveBigIntegerField(default=0)
    key = models.CharField(max_length=255, unique=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.images} {self.tier} {self.size}{' from cache' if self.cached else ''}"


class CreditPack(models.Model):
    name = models.CharField(max_length=60)
    credits = models.PositiveBigIntegerField()
    price = models.PositiveIntegerField(help_text="In the currency's smallest unit (cents).")
    currency = models.CharField(max_length=3, default="usd")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["price"]

    def __str__(self) -> str:
        return f"{self.name} ({self.credits:,} credits)"

    @property
    def price_display(self) -> str:
        return f"{self.price / 100:,.2f} {self.currency.upper()}"


class Purchase(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting checkout"
        PROCESSING = "processing", "Awaiting payment"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="purchases")
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT, related_name="purchases")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Copied from the pack when the checkout starts: a later pack edit never
    # changes what this payment buys.
    credits = models.PositiveBigIntegerField()
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # Learnt from whichever event names it first: the paid session, or a refund
    # or dispute that Stripe delivered before it (see purchases.purchase_for_payment).
    payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    # Refunds and disputes are recorded whether or not the pack is credited yet;
    # crediting applies what is recorded.
    amount_refunded = models.PositiveIntegerField(default=0)
    credits_clawed_back = models.PositiveBigIntegerField(default=0)
    disputed = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    fulfilled = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One payment pays for one purchase: a refund can never reach two.
            models.UniqueConstraint(
                fields=["payment_intent"],
                condition=~Q(payment_intent=""),
                name="one_purchase_per_payment_intent",
            )
        ]

    def __str__(self) -> str:
        return f"Purchase {self.pk}: {self.credits:,} credits ({self.get_status_display()})"


class StripeEvent(models.Model):
    """Each webhook event is handled once; a repeat delivery finds its id here."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
