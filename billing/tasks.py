"""Periodic billing jobs run by the scheduler."""

import logging

from celery import shared_task

from .selectors import wallets_reconcile

log = logging.getLogger(__name__)


@shared_task(name="billing.tasks.reconcile_wallets")
def reconcile_wallets() -> int:
    """Log every wallet whose cached figures disagree with its ledger; return how many."""
    bad = [check for check in wallets_reconcile() if not check.ok]
    for check in bad:
        log.error(
            "Wallet of %s does not reconcile: available %s cached vs %s ledger, "
            "held %s cached vs %s ledger",
            check.team, check.available, check.ledger_available, check.held, check.ledger_held,
        )  # fmt: skip
    return len(bad)
