"""Telling owners and admins about their credits: low balance, frozen wallets.

Emails go out after the transaction commits, so a rolled-back hold never
sends a warning, and a slow mail server never holds a database lock.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F

from .models import Wallet

log = logging.getLogger(__name__)


def _recipients(team_id: int, roles: tuple[str, ...]) -> list[str]:
    from django.contrib.auth import get_user_model

    users = (
        get_user_model()
        .objects.filter(memberships__team_id=team_id, memberships__role__in=roles)
        .exclude(email="")
    )
    return sorted(set(users.values_list("email", flat=True)))


def team_tell(*, team_id: int, subject: str, body: str, roles=("owner", "admin")) -> None:
    """Email the team's owners (and admins) once the current transaction commits."""

    def send():
        recipients = _recipients(team_id, tuple(roles))
        if not recipients:
            log.warning("No one to tell for team %s: %s", team_id, subject)
            return
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True)

    transaction.on_commit(send)


def low_balance_check(*, wallet_id: int) -> None:
    """Alert once when available credits have just gone below the team's threshold."""
    crossed = Wallet.objects.filter(
        pk=wallet_id, low_balance_alerted=False, available__lt=F("low_balance_threshold")
    ).update(low_balance_alerted=True)
    if not crossed:
        return
    wallet = Wallet.objects.select_related("team").get(pk=wallet_id)
    team_tell(
        team_id=wallet.team_id,
        subject=f"{wallet.team.name}: credits are running low",
        body=(
            f"{wallet.team.name} has {wallet.available:,} credits available, below the "
            f"{wallet.low_balance_threshold:,} you asked to be warned at.\n\n"
            f"Top up or buy credits: {settings.SITE_URL}/t/{wallet.team.slug}/billing/\n"
        ),
    )


def low_balance_reset(*, wallet_id: int) -> None:
    """Back above the threshold: the next dip below it alerts again."""
    Wallet.objects.filter(
        pk=wallet_id, low_balance_alerted=True, available__gte=F("low_balance_threshold")
    ).update(low_balance_alerted=False)
