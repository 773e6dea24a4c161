"""Prove every wallet's cached balance equals the sum of its ledger entries."""

from django.core.management.base import BaseCommand, CommandError

from billing.selectors import wallets_reconcile


class Command(BaseCommand):
    help = "Check every wallet against its ledger; exit 1 on any mismatch."

    def handle(self, *args, **options):
        checks = wallets_reconcile()
        bad = [check for check in checks if not check.ok]
        for check in bad:
            self.stdout.write(
                f"MISMATCH {check.team}: available {check.available:,} cached, "
                f"{check.ledger_available:,} in ledger; held {check.held:,} cached, "
                f"{check.ledger_held:,} in ledger"
            )
        total_available = sum(check.available for check in checks)
        total_held = sum(check.held for check in checks)
        summary = (
            f"{len(checks)} wallets, {len(checks) - len(bad)} match, {len(bad)} mismatched; "
            f"{total_available:,} credits available, {total_held:,} held."
        )
        if bad:
            raise CommandError(summary, returncode=1)
        self.stdout.write(self.style.SUCCESS(summary))
