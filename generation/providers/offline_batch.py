"""The offline renderer's batch mode: the batch lane's whole flow with no key.

A submitted job is kept in the shared cache (Redis), so every scheduler
process sees it; it is `running` until OFFLINE_BATCH_DELAY seconds have
passed, then its requests are rendered by the offline renderer and it has
succeeded. Faults, for tests and demonstrations, are asked for in a prompt:
`[batch:fail]` makes that one request fail, `[batch:expire]` expires the
whole job and `[batch:job-fail]` makes the whole job fail.
"""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.core.cache import cache

from .base import PermanentError, ProviderError, RenderRequest
from .batch_base import (
    CANCELLED,
    EXPIRED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    BatchItem,
    BatchPoll,
)
from .offline import OfflineProvider

# A day and an hour: the provider's own limit plus time for the scheduler to look.
KEEP_SECONDS = 25 * 3600
_FIELDS = ("prompt", "seed", "tier", "size", "aspect", "model", "references")


def _cache_key(name: str) -> str:
    return f"offline-batch:{name}"


class OfflineBatchClient:
    name = "offline"

    def submit(self, *, model: str, display_name: str, items: list[BatchItem]) -> str:
        name = f"batches/offline-{uuid.uuid4().hex[:16]}"
        job = {
            "model": model,
            "display_name": display_name,
            "submitted": time.time(),
            "cancelled": False,
            "items": [(item.key, {f: getattr(item.request, f) for f in _FIELDS}) for item in items],
        }
        cache.set(_cache_key(name), job, timeout=KEEP_SECONDS)
        return name

    def poll(self, name: str) -> BatchPoll:
        job = cache.get(_cache_key(name))
        if job is None:
            return BatchPoll(state=EXPIRED, error="The offline batch job is no longer known.")
        if job["cancelled"]:
            return BatchPoll(state=CANCELLED)
        if time.time() - job["submitted"] < settings.OFFLINE_BATCH_DELAY:
            return BatchPoll(state=RUNNING)
        prompts = [fields["prompt"] for _, fields in job["items"]]
        if any("[batch:expire]" in p for p in prompts):
            return BatchPoll(state=EXPIRED, error="The batch job expired before it ran.")
        if any("[batch:job-fail]" in p for p in prompts):
            return BatchPoll(state=FAILED, error="The batch job failed.")
        renderer = OfflineProvider()
        results = {}
        for key, fields in job["items"]:
            if "[batch:fail]" in fields["prompt"]:
                results[key] = PermanentError(
                    "The batch endpoint could not render this request.",
                    detail="offline batch: [batch:fail]",
                )
                continue
            try:
                results[key] = renderer.render(RenderRequest(**fields))
            except ProviderError as error:
                results[key] = error
        return BatchPoll(state=SUCCEEDED, results=results)

    def cancel(self, name: str) -> None:
        key = _cache_key(name)
        job = cache.get(key)
        if job is not None:
            job["cancelled"] = True
            cache.set(key, job, timeout=KEEP_SECONDS)
