"""The price table, read once and kept in memory for a few seconds.

Every quote and hold needs a price, and prices change rarely (an admin edit),
so each process keeps the whole table instead of asking the database on every
call. A saved or deleted Price clears this process's copy at once; other
processes see the change within PRICE_CACHE_SECONDS. A change never alters a
hold already taken: the hold copies its unit price.

A price row may name a provider and a model. The most specific row wins:
provider + model, then the provider with a blank model, then the blank/blank
default of the tier and size.
"""

from __future__ import annotations

import threading
import time

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Price

PRICE_CACHE_SECONDS = 5.0

PriceKey = tuple[str, str, str, str]  # tier, size, provider, model

_lock = threading.Lock()
_table: dict[PriceKey, int] | None = None
_expires = 0.0


def _read() -> dict[PriceKey, int]:
    rows = Price.objects.values_list("tier", "size", "provider", "model", "credits")
    return {(tier, size, provider, model): credits for tier, size, provider, model, credits in rows}


def _changed_in_open_transaction() -> bool:
    """True while this connection's transaction has saved a Price and not yet committed.

    Such a transaction must read prices fresh and must not fill the shared copy:
    if it rolls back, the copy would keep a price that never existed.
    The marker is our on-commit callback, which Django drops on rollback.
    """
    return any(entry[1] is _clear for entry in connection.run_on_commit)


def _clear() -> None:
    global _table, _expires
    with _lock:
        _table, _expires = None, 0.0


def price_table(*, fresh: bool = False) -> dict[PriceKey, int]:
    global _table, _expires
    if _changed_in_open_transaction():
        return _read()
    table, now = _table, time.monotonic()
    if fresh or table is None or now >= _expires:
        table = _read()
        with _lock:
            _table, _expires = table, now + PRICE_CACHE_SECONDS
    return table


def price_keys(*, tier: str, size: str, provider: str = "", model: str = "") -> list[PriceKey]:
    """The rows that could price this request, most specific first."""
    provider, model = (provider or "").strip().lower(), (model or "").strip()
    keys = [(tier, size, provider, model), (tier, size, provider, ""), (tier, size, "", "")]
    return list(dict.fromkeys(keys))


def price_lookup(*, tier: str, size: str, provider: str = "", model: str = "") -> int | None:
    """Credits per image, or None when no row prices this tier and size."""
    keys = price_keys(tier=tier, size=size, provider=provider, model=model)
    for fresh in (False, True):
        # A miss in the kept copy is checked once against the database: rows
        # added by bulk_create or another process must not read as "no price".
        table = price_table(fresh=fresh)
        for key in keys:
            if key in table:
                return table[key]
    return None


@receiver(post_save, sender=Price, dispatch_uid="billing-prices-saved")
@receiver(post_delete, sender=Price, dispatch_uid="billing-prices-deleted")
def _price_changed(**kwargs) -> None:
    _clear()
    # Cleared again after commit: another thread may have refilled the copy
    # with the old row in between. Also marks the open transaction (above).
    transaction.on_commit(_clear, using=kwargs.get("using"))
