"""Image providers: which one renders each tier, and the names lanes need.

Settings map a tier to a provider (`FLASH_PROVIDER` / `PRO_PROVIDER`:
"offline" or "gemini") and a model id (`FLASH_MODEL` / `PRO_MODEL`). The
offline renderer keeps the configured model id too, so cache fingerprints do
not change meaning when a studio switches providers on and off.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from generation import catalog

from .base import (
    BlockedError,
    PermanentError,
    Provider,
    ProviderError,
    RenderRequest,
    RenderResult,
    TransientError,
)

__all__ = [
    "BlockedError",
    "PermanentError",
    "Provider",
    "ProviderError",
    "RenderRequest",
    "RenderResult",
    "TransientError",
    "model_for",
    "provider_for",
]


def _setting(tier: str, name: str) -> str:
    if tier not in catalog.TIERS:
        raise ValueError(f"Unknown tier {tier!r}; expected one of {', '.join(catalog.TIERS)}.")
    return getattr(settings, f"{tier.upper()}_{name}")


def provider_for(tier: str) -> Provider:
    name = _setting(tier, "PROVIDER")
    if name == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    if name == "gemini":
        from .gemini import GeminiProvider

        return GeminiProvider(api_key=settings.GEMINI_API_KEY, api_base=settings.GEMINI_API_BASE)
    raise ImproperlyConfigured(
        f"{tier.upper()}_PROVIDER is {name!r}; expected 'offline' or 'gemini'."
    )


def model_for(tier: str) -> str:
    return _setting(tier, "MODEL")
