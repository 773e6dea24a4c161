"""What a provider's batch endpoint offers the batch lane.

A batch client sends many render requests as one job, says how the job is
doing and, once it has succeeded, what each request produced: a
RenderResult, or the ProviderError that request ended in (one request of a
job can fail while the others succeed). Requests are known by a key the
caller chooses (the generation id), never by their position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .base import ProviderError, RenderRequest, RenderResult

PENDING, RUNNING, SUCCEEDED = "pending", "running", "succeeded"
FAILED, CANCELLED, EXPIRED = "failed", "cancelled", "expired"
OPEN_STATES = (PENDING, RUNNING)


@dataclass(frozen=True)
class BatchItem:
    key: str
    request: RenderRequest


@dataclass
class BatchPoll:
    state: str
    # Only for a succeeded job: key -> what that request produced.
    results: dict[str, RenderResult | ProviderError] = field(default_factory=dict)
    error: str = ""


class BatchClient(Protocol):
    name: str

    def submit(self, *, model: str, display_name: str, items: list[BatchItem]) -> str:
        """Send the job; the provider's name for it. Raises ProviderError."""

    def poll(self, name: str) -> BatchPoll: ...

    def cancel(self, name: str) -> None: ...
