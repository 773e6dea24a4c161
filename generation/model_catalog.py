"""What each model can make: sizes, aspect ratios, the pixels it really renders,
what inputs it takes, and when it goes away.

A tier offers what its routed model offers (generation.backends routes each
tier of a team to a provider and model), never more: a size a model cannot
render is refused before anything is held, so nobody pays the Pro 4K price
for a 1024 × 1024 image. Sources: the shared Gemini reference (model table,
output pixel sizes) and the openai SDK's own types (`ImageModel`, the
`size` and `quality` rules of `images.generate`), late 2026.

Models not listed here (a ComfyUI workflow, a model id a studio configured
ahead of us) offer the whole tier and render its pixel sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from . import catalog

# OpenAI's GPT image 2.x models take any WIDTHxHEIGHT with both sides
# divisible by 16, an aspect ratio between 1:3 and 3:1, and at most
# 3840 × 2160 pixels (openai SDK, images.generate `size`).
OPENAI_MAX_PIXELS = 3840 * 2160
OPENAI_MAX_EDGE = 3840
# The 1.x models make three shapes only.
OPENAI_FIXED = {"1:1": (1024, 1024), "3:2": (1536, 1024), "2:3": (1024, 1536)}


def gemini_pixels(size: str, aspect: str) -> tuple[int, int]:
    return catalog.pixel_size(size, aspect)


def openai_fixed_pixels(size: str, aspect: str) -> tuple[int, int]:
    return OPENAI_FIXED[aspect]


def openai_can_make(width: int, height: int) -> bool:
    return (
        width % 16 == 0
        and height % 16 == 0
        and 1 / 3 <= width / height <= 3
        and width * height <= OPENAI_MAX_PIXELS
        and max(width, height) <= OPENAI_MAX_EDGE
    )


@dataclass(frozen=True)
class ModelEntry:
    provider: str
    model: str
    sizes: tuple[str, ...]
    aspects: tuple[str, ...]
    pixels: Callable[[str, str], tuple[int, int]] = gemini_pixels
    max_references: int = 14
    multi_turn: bool = False
    mask: str = ""  # "mask" (a real inpainting mask), "guidance" (a second image), ""
    seed: bool = True
    deprecated: date | None = None
    shut_down: date | None = None
    replacement: str = ""
    cannot: str = ""  # what it cannot make, in words, for the docs and the refusals

    @property
    def retirement(self) -> str:
        """'deprecated on 2026-10-06; use …' or '' for a current model."""
        if self.shut_down:
            text = f"shut down on {self.shut_down:%Y-%m-%d}"
        elif self.deprecated:
            text = f"deprecated on {self.deprecated:%Y-%m-%d}"
        else:
            return ""
        return f"{text}; use {self.replacement} instead" if self.replacement else text


def _openai_2x(model: str, **extra) -> ModelEntry:
    sizes = ("512", "1K", "2K")  # every 4K shape is above 3840 × 2160
    aspects = tuple(
        a
        for a in catalog.ASPECTS[catalog.FLASH]
        if all(openai_can_make(*catalog.pixel_size(s, a)) for s in sizes)
    )
    return ModelEntry(
        "openai", model, sizes, aspects, max_references=16, mask="mask", seed=False,
        cannot="4K (at most 3840 × 2160 pixels), or ratios beyond 1:3 and 3:1", **extra,
    )  # fmt: skip


FLASH_ASPECTS = catalog.ASPECTS[catalog.FLASH]
ENTRIES = {
    (e.provider, e.model): e
    for e in [
        ModelEntry(
            "gemini", "gemini-3.1-flash-image", ("512", "1K", "2K", "4K"), FLASH_ASPECTS,
            multi_turn=True, mask="guidance", deprecated=date(2026, 10, 6),
            replacement="gemini-nano-banana-2.1",
        ),
        ModelEntry(
            "gemini", "gemini-nano-banana-2.1", ("1K", "2K", "4K"), FLASH_ASPECTS,
            multi_turn=True, mask="guidance", cannot="512",
        ),
        ModelEntry(
            "gemini", "gemini-3-pro-image", ("1K", "2K", "4K"), catalog.COMMON_ASPECTS,
            multi_turn=True, mask="guidance", cannot="512, or ratios beyond 21:9",
        ),
        ModelEntry(
            "openai", "gpt-image-1", ("1K",), tuple(OPENAI_FIXED), pixels=openai_fixed_pixels,
            max_references=16, mask="mask", seed=False, shut_down=date(2026, 10, 23),
            replacement="gpt-image-2.5-sunburst or gpt-image-2.5-flare",
        ),
        ModelEntry(
            "openai", "gpt-image-1-mini", ("1K",), tuple(OPENAI_FIXED),
            pixels=openai_fixed_pixels, max_references=16, mask="mask", seed=False,
            cannot="sizes other than 1024 × 1024, 1536 × 1024 and 1024 × 1536",
        ),
        ModelEntry(
            "openai", "gpt-image-1.5", ("1K",), tuple(OPENAI_FIXED), pixels=openai_fixed_pixels,
            max_references=16, mask="mask", seed=False,
            cannot="sizes other than 1024 × 1024, 1536 × 1024 and 1024 × 1536",
        ),
        _openai_2x("gpt-image-2"),
        _openai_2x("gpt-image-2.5-sunburst"),
        _openai_2x("gpt-image-2.5-flare"),
    ]
}  # fmt: skip
# Qualities the GPT image models take; 2.5 adds two above "high".
OPENAI_QUALITIES = ("low", "medium", "high", "auto")
OPENAI_QUALITIES_25 = OPENAI_QUALITIES + ("xhigh", "max")


def openai_qualities(model: str) -> tuple[str, ...]:
    return OPENAI_QUALITIES_25 if model.startswith("gpt-image-2.5") else OPENAI_QUALITIES


@dataclass(frozen=True)
class Offer:
    """What one tier can make on one model: the tier's offer cut to the model's."""

    tier: str
    provider: str
    model: str
    sizes: tuple[str, ...]
    aspects: tuple[str, ...]
    entry: ModelEntry | None = field(default=None, compare=False)

    def pixel_size(self, size: str, aspect: str) -> tuple[int, int]:
        return self.entry.pixels(size, aspect) if self.entry else catalog.pixel_size(size, aspect)

    def problems(self, size: str, aspect: str) -> dict[str, str]:
        """Why this offer cannot make `size` at `aspect`, per field, in words; {} if it can."""
        name = self.model if self.provider != "offline" else "the offline renderer"
        found = {}
        if size not in self.sizes:
            found["size"] = (
                f"{catalog.TIER_LABELS[self.tier]} on {name} renders at "
                f"{', '.join(self.sizes)}, not {size}."
            )
        if aspect not in self.aspects:
            found["aspect"] = (
                f"{catalog.TIER_LABELS[self.tier]} on {name} cannot make {aspect}; "
                f"it makes {', '.join(self.aspects)}."
            )
        return found


def entry_for(provider: str, model: str) -> ModelEntry | None:
    return ENTRIES.get((provider, model))


# What a provider does with a region edit's mask for models the catalog does not
# list: OpenAI's images/edits and ComfyUI's inpainting template take a real mask,
# Gemini has none and takes it as a second image with words (guidance), and the
# offline renderer keeps every pixel outside it.
PROVIDER_MASKS = {"openai": "mask", "comfyui": "mask", "offline": "mask", "gemini": "guidance"}


def mask_kind(provider: str, model: str) -> str:
    """ "mask" (a hard mask), "guidance" (the model is asked to keep to it) or "" (no mask)."""
    entry = entry_for(provider, model)
    return entry.mask if entry is not None else PROVIDER_MASKS.get(provider, "")


def offer(tier: str, provider: str, model: str) -> Offer:
    entry = entry_for(provider, model)
    sizes, aspects = catalog.SIZES[tier], catalog.ASPECTS[tier]
    if entry is not None:
        sizes = tuple(s for s in sizes if s in entry.sizes)
        aspects = tuple(a for a in aspects if a in entry.aspects)
    return Offer(tier, provider, model, sizes, aspects, entry)
