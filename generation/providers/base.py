"""The provider interface: what a lane asks for and what it gets back.

A provider turns one RenderRequest into one encoded image. Failures are
sorted into three kinds so the task knows what to do: retry (TransientError),
give up (PermanentError), or report the refusal (BlockedError). Each error
carries a `message` a designer can read in the gallery and a `detail` for logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class EditTurn:
    """One earlier turn of an edit chain: what was asked and the image that came back."""

    instruction: str
    image: bytes  # the encoded image the provider answered with
    # Gemini's thoughtSignature of that image part ("" from other providers):
    # a multi-turn edit must send it back with the image.
    signature: str = ""


@dataclass(frozen=True)
class RenderRequest:
    prompt: str
    seed: int
    tier: str  # "flash" | "pro"
    size: str  # "512" | "1K" | "2K" | "4K"
    aspect: str  # "16:9" ...
    model: str
    references: tuple[bytes, ...] = ()  # encoded images (PNG/JPEG/WebP bytes), at most 14
    # Edits and variations start from an image: `source` is the one to edit
    # or vary now (the latest of a chain). An edit carries its `instruction`,
    # and a chained one its earlier turns (oldest first) and the image the
    # chain began with, for providers that keep the conversation (Gemini).
    source: bytes = b""
    instruction: str = ""
    turns: tuple[EditTurn, ...] = ()
    chain_start: bytes = b""
    # A region edit: a black-and-white PNG the size of `source` (white = change,
    # black = keep; generation.imaging.clean_mask). Providers turn it into their
    # own form: OpenAI's and ComfyUI's alpha masks, a second image for Gemini.
    mask: bytes = b""
    # Variations: "subtle" (keep the composition) or "strong" (keep the idea),
    # and the seed of the image being varied.
    variation: str = ""
    source_seed: int | None = None
    # Asked between polls by providers that follow a long job (ComfyUI): True
    # means the person canceled, so the provider stops the job and raises
    # CanceledError. Not part of what the request is, so not compared.
    cancel_check: Callable[[], bool] | None = field(default=None, compare=False)
    # time.monotonic() by which the provider must have answered or given up:
    # lane threads cannot be killed, so every wait is bounded by this instead.
    deadline: float | None = field(default=None, compare=False)

    @property
    def is_edit(self) -> bool:
        return bool(self.instruction)


@dataclass(frozen=True)
class RenderResult:
    image: bytes  # encoded image bytes as the provider returned them (PNG for offline)
    mime_type: str
    model: str
    usage: dict  # provider usage metadata (may be {})
    text: str = ""  # any text parts
    # Gemini's thoughtSignature of the returned image part, kept for the next edit.
    signature: str = ""


class ProviderError(Exception):
    """A render that did not produce an image."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail or message

    def __str__(self) -> str:
        if self.detail and self.detail != self.message:
            return f"{self.message} ({self.detail})"
        return self.message


class TransientError(ProviderError):
    """Worth retrying: overload, quota, a timeout, a dropped connection."""

    def __init__(self, message: str, detail: str = "", retry_after: float | None = None):
        super().__init__(message, detail)
        self.retry_after = retry_after


class RateLimitedError(TransientError):
    """The provider said 429: its quota for this credential is used up for now.

    Every worker on the credential backs off together (generation.quotas), not
    one job at a time."""


class PermanentError(ProviderError):
    """Retrying will not help: a bad request, a wrong key or model id, a broken answer."""


class BlockedError(ProviderError):
    """The provider refused the content (its safety or recitation filters)."""

    def __init__(self, message: str, detail: str = "", reason: str = ""):
        super().__init__(message, detail)
        self.reason = reason


class CanceledError(ProviderError):
    """The request's cancel_check said stop; the provider stopped the job on its side."""


class Provider(Protocol):
    name: str  # "offline", "gemini"
    label: str  # shown in the UI: "Offline renderer", "Gemini"

    def render(self, request: RenderRequest) -> RenderResult: ...
