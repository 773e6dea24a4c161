"""Image providers: which one renders each tier, and the names lanes need.

Settings map a tier to a provider (`FLASH_PROVIDER` / `PRO_PROVIDER`:
"offline", "gemini", "openai" or "comfyui"; see docs/BACKENDS.md) and a
model id (`FLASH_MODEL` / `PRO_MODEL`). The offline renderer keeps the
configured model id too, so cache fingerprints do not change meaning when a
studio switches providers on and off.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from generation import catalog

from .base import (
    BlockedError,
    CanceledError,
    EditTurn,
    PermanentError,
    Provider,
    ProviderError,
    RateLimitedError,
    RenderRequest,
    RenderResult,
    TransientError,
)

__all__ = [
    "BlockedError",
    "CanceledError",
    "EditTurn",
    "PermanentError",
    "Provider",
    "ProviderError",
    "RateLimitedError",
    "RenderRequest",
    "RenderResult",
    "TransientError",
    "configured_model_problems",
    "model_for",
    "provider_for",
    "provider_named",
]


def _setting(tier: str, name: str) -> str:
    if tier not in catalog.TIERS:
        raise ValueError(f"Unknown tier {tier!r}; expected one of {', '.join(catalog.TIERS)}.")
    return getattr(settings, f"{tier.upper()}_{name}")


def provider_for(tier: str) -> Provider:
    """The site's default provider for a tier (teams may choose others: generation.backends)."""
    name = _setting(tier, "PROVIDER")
    try:
        return provider_named(name)
    except ImproperlyConfigured as error:
        raise ImproperlyConfigured(f"{tier.upper()}_PROVIDER: {error}")


def provider_named(name: str) -> Provider:
    if name == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    if name == "gemini":
        from .gemini import GeminiProvider

        return GeminiProvider(api_key=settings.GEMINI_API_KEY, api_base=settings.GEMINI_API_BASE)
    if name == "openai":
        from .openai import OpenAIProvider

        return OpenAIProvider(
            api_key=settings.OPENAI_API_KEY,
            api_base=settings.OPENAI_API_BASE,
            qualities={
                "flash": settings.OPENAI_FLASH_QUALITY,
                "pro": settings.OPENAI_PRO_QUALITY,
            },
        )
    if name == "comfyui":
        from .comfyui import ComfyUIProvider

        return ComfyUIProvider(
            servers={"flash": settings.COMFYUI_FLASH_URLS, "pro": settings.COMFYUI_PRO_URLS},
            workflows={
                "flash": settings.COMFYUI_FLASH_WORKFLOW,
                "pro": settings.COMFYUI_PRO_WORKFLOW,
            },
            inpaint_workflow=settings.COMFYUI_INPAINT_WORKFLOW,
            img2img_workflow=settings.COMFYUI_IMG2IMG_WORKFLOW,
            redis_url=settings.CELERY_BROKER_URL,
            slots_per_server=settings.COMFYUI_SERVER_SLOTS,
            outage_seconds=settings.COMFYUI_OUTAGE_MINUTES * 60,
            keep_outputs=settings.COMFYUI_KEEP_OUTPUTS,
            poll_seconds=settings.COMFYUI_POLL_SECONDS,
        )
    raise ImproperlyConfigured(
        f"Unknown provider {name!r}; expected 'offline', 'gemini', 'openai' or 'comfyui'."
    )


def model_for(tier: str) -> str:
    return _setting(tier, "MODEL")


def configured_model_problems() -> list[str]:
    """Start-up check: model ids of Gemini tiers that Gemini does not serve, in words.

    Only runs when a key is set (without one there is nothing to ask, and the
    renders themselves say the key is missing). Makes one listing request.
    """
    model_ids = [
        model_for(tier) for tier in catalog.TIERS if _setting(tier, "PROVIDER") == "gemini"
    ]
    if not model_ids or not settings.GEMINI_API_KEY:
        return []
    from .gemini import check_models

    return check_models(settings.GEMINI_API_BASE, settings.GEMINI_API_KEY, model_ids)
