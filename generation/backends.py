"""Which backend (provider and model) renders each tier for a team.

The site decides what may be used: BACKEND_CHOICES lists `tier:provider:model`
entries; left empty it offers, for each tier, the site default
(FLASH_PROVIDER/FLASH_MODEL, PRO_PROVIDER/PRO_MODEL) and the offline
renderer. A team's owners pick one of those per tier; a pick the site no
longer offers falls back to the default, so a change of configuration never
strands a team.
"""

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from . import catalog, model_catalog
from .models import TeamBackend

PROVIDER_LABELS = {
    "offline": "Offline renderer",
    "gemini": "Gemini",
    "openai": "OpenAI",
    "comfyui": "ComfyUI (studio GPUs)",
}


class BackendRefused(ValueError):
    """A backend choice the site does not offer; the message says so."""


@dataclass(frozen=True)
class Backend:
    tier: str
    provider: str
    model: str

    @property
    def label(self) -> str:
        name = PROVIDER_LABELS.get(self.provider, self.provider)
        return name if self.provider == "offline" else f"{name} · {self.model}"

    @property
    def value(self) -> str:
        return f"{self.provider}:{self.model}"

    @property
    def mask(self) -> str:
        """What a region edit's mask is here: "mask", "guidance" or "" (none taken).

        ComfyUI takes one only through its inpainting template; a site that sets
        COMFYUI_INPAINT_WORKFLOW empty has none, and masked edits are refused."""
        if self.provider == "comfyui" and not settings.COMFYUI_INPAINT_WORKFLOW:
            return ""
        return model_catalog.mask_kind(self.provider, self.model)


def site_default(tier: str) -> Backend:
    prefix = tier.upper()
    return Backend(
        tier, getattr(settings, f"{prefix}_PROVIDER"), getattr(settings, f"{prefix}_MODEL")
    )


def choices(tier: str) -> list[Backend]:
    """The backends the site offers for a tier, the default first."""
    offered = [site_default(tier)]
    configured = settings.BACKEND_CHOICES
    if configured:
        for entry in configured:
            parts = entry.split(":", 2)
            # An entry naming a provider we do not have is ignored, so a
            # typo in the setting cannot route a team to a submit that fails.
            if len(parts) == 3 and parts[0] == tier and parts[1] in PROVIDER_LABELS:
                offered.append(Backend(tier, parts[1], parts[2]))
    else:
        offered.append(Backend(tier, "offline", site_default(tier).model))
    return list(dict.fromkeys(offered))


def backend_for(team, tier: str) -> Backend:
    row = TeamBackend.objects.filter(team=team, tier=tier).first()
    if row is not None:
        chosen = Backend(tier, row.provider, row.model)
        if chosen in choices(tier):
            return chosen
    return site_default(tier)


def backends_for(team) -> dict[str, Backend]:
    return {tier: backend_for(team, tier) for tier in catalog.TIERS}


def backend_set(*, team, tier: str, value: str, member) -> Backend:
    """Route a tier of this team to one of the offered backends (`provider:model`)."""
    if tier not in catalog.TIERS:
        raise BackendRefused("Choose Flash or Pro.")
    offered = {backend.value: backend for backend in choices(tier)}
    if value not in offered:
        raise BackendRefused("That backend is not offered on this site.")
    backend = offered[value]
    TeamBackend.objects.update_or_create(
        team=team,
        tier=tier,
        defaults={
            "provider": backend.provider,
            "model": backend.model,
            "updated": timezone.now(),
            "updated_by": member,
        },
    )
    return backend


def team_quote(
    *, team, tier: str, size: str, count: int, price_percent: int = 100
) -> tuple[int, Backend]:
    """What `count` images would cost this team on the backend its tier uses
    (`price_percent`: the lane's rate, 50 on the batch lane by default)."""
    from billing.services import quote

    backend = backend_for(team, tier)
    credits = quote(
        tier=tier,
        size=size,
        count=count,
        provider=backend.provider,
        model=backend.model,
        price_percent=price_percent,
    )
    return credits, backend


def team_offer(team, tier: str) -> model_catalog.Offer:
    """What this team's tier can make: the tier's sizes and ratios cut to its routed model's."""
    backend = backend_for(team, tier)
    return model_catalog.offer(tier, backend.provider, backend.model)
