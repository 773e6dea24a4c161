"""What the edit and vary commands share: who acts, and how a new grid is reported."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.urls import reverse

from generation.backends import PROVIDER_LABELS
from generation.models import Batch
from studio.models import Membership, Team


def team_and_member(slug: str, username: str):
    """The team and the member acting in it, or a CommandError in words."""
    team = Team.objects.filter(slug=slug, deleted_at=None).first()
    if team is None:
        raise CommandError(f"There is no team “{slug}”.")
    member = get_user_model().objects.filter(username=username, is_active=True).first()
    if member is None or not Membership.objects.filter(team=team, user=member).exists():
        raise CommandError(f"“{username}” is not a member of {team.name}.")
    return team, member


def batch_report(batch: Batch) -> list[str]:
    """The lines a command prints for a grid it made: what, the price, each image, where."""
    images = list(batch.generations.order_by("index"))
    cached = [g for g in images if g.cached]
    paid = [g for g in images if not g.cached]
    provider = PROVIDER_LABELS.get(batch.provider, batch.provider)
    what = {
        "edit": "Edit" + (" (a region edit, with a mask)" if batch.mask_sha256 else ""),
        "variation": f"Vary {batch.strength}",
    }.get(batch.kind, batch.get_kind_display())
    lines = [
        f"{what} of image #{batch.source_id}: grid #{batch.pk}, {len(images)} "
        f"image{'s' if len(images) != 1 else ''} on {batch.get_tier_display()} {batch.size} "
        f"({provider} · {batch.model})."
    ]
    price = f"Price: {batch.credits_quoted:,} credits held"
    if paid:
        price += f" ({len(paid)} × {paid[0].credits_held:,})"
    if cached:
        price += f"; {len(cached)} from the cache, free"
    lines.append(price + ".")
    for generation in images:
        words = f"  “{generation.instruction}”" if generation.instruction else ""
        lines.append(f"  #{generation.pk}  seed {generation.seed}  {generation.status}{words}")
    if batch.project_id:
        page = reverse("project", args=[batch.team.slug, batch.project_id]) + f"#grid-{batch.pk}"
    else:
        page = reverse("history", args=[batch.team.slug])
    lines.append(
        f"Watch it: {settings.SITE_URL.rstrip('/')}{page} · API: /api/v1/batches/{batch.pk}"
    )
    return lines
