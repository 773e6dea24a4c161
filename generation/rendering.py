"""Running one claimed job: call the provider, store the image, settle the credits.

A lane thread first takes a slot on the provider's quota, then claims the
fairest job: claiming only once a request can really be sent keeps the lane
fair when the quota is the bottleneck (a job claimed early would wait in
front of a teammate's later, fairer one).

The provider call and the image encoding happen outside any transaction,
and with no database connection held: a worker keeps dozens of renders in
flight, and a connection per waiting render would exhaust PostgreSQL's.
Finishing is one short transaction: a conditional update that only succeeds
for the attempt that holds the lease, plus the capture (or release) keyed by
generation, so a repeated delivery or a late worker can never charge twice.
"""

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from billing.services import hold_capture, hold_release

from . import lanes, quotas
from .cpu_slots import cpu_slot
from .imaging import UnusableImage, make_renditions
from .models import Batch, Generation, Status
from .providers import (
    BlockedError,
    CanceledError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    RenderRequest,
    TransientError,
    provider_named,
)
from .storage import asset_store, read

log = logging.getLogger(__name__)

# How long a lane token waits for a quota slot before handing itself back to
# the broker; well under the broker's visibility timeout.
QUOTA_WAIT_SECONDS = 60


def lane_run(lane: str) -> int | None:
    """Take a quota slot, claim the fairest job in the lane and run it; the id it ran, or None."""
    candidate = lanes.fairest_queued(lane)
    if candidate is None:
        return None
    credential = quotas.credential_for(candidate.provider)
    slot = quotas.acquire(
        credential,
        lease_seconds=settings.RENDER_DEADLINE_SECONDS + 30,
        wait_seconds=QUOTA_WAIT_SECONDS,
    )
    if slot is None:
        # The quota stayed full: the job keeps its place, and a fresh token
        # will ask again, so this thread is not tied up for hours.
        lanes.dispatch_now(lane, [candidate.pk])
        return None
    with slot:
        generation = lanes.claim_next(lane, provider=candidate.provider)
        if generation is None:
            return None
        generation_render(generation, slot=slot)
    return generation.pk


def _request_for(generation: Generation, deadline: float) -> tuple[RenderRequest, dict]:
    batch = generation.batch
    references = list(batch.references.all())
    images = [read(r.image.name) for r in references]
    parent_hash = ""
    if generation.parent_id and generation.parent.asset_id:
        # The draft itself goes in as a reference, so the composition survives.
        images.append(read(generation.parent.asset.original.name))
        parent_hash = generation.parent.asset.sha256
    request = RenderRequest(
        prompt=generation.prompt,
        seed=generation.seed,
        tier=generation.tier,
        size=generation.size,
        aspect=generation.aspect,
        model=generation.model,
        references=tuple(images),
        cancel_check=lambda: Batch.objects.filter(
            pk=generation.batch_id, canceled_at__isnull=False
        ).exists(),
        deadline=deadline,
    )
    meta = {
        "prompt": generation.prompt,
        "seed": generation.seed,
        "tier": generation.tier,
        "size": generation.size,
        "aspect": generation.aspect,
        "model": generation.model,
        "provider": generation.provider,
        "references": [r.sha256 for r in references],
        "parent": parent_hash or None,
        "generation": generation.pk,
    }
    return request, meta


def generation_render(generation: Generation, *, slot: quotas.Slot | None = None) -> None:
    """Render a claimed job and settle it. `slot` is its quota slot, given
    back as soon as the provider has answered (before the local work)."""
    attempt = generation.attempts
    deadline = time.monotonic() + settings.RENDER_DEADLINE_SECONDS
    slot = slot or quotas.Slot(quotas.credential_for(generation.provider), None)
    try:
        request, meta = _request_for(generation, deadline)
        _close_idle_connections()
        try:
            # The provider chosen at submit, even if the team has switched since.
            result = provider_named(generation.provider).render(request)
        except RateLimitedError as error:
            slot.throttled(error.retry_after)
            raise
        except BaseException:
            slot.release()
            raise
        slot.succeeded()
        with cpu_slot():
            renditions = make_renditions(result.image, meta)
        asset = asset_store(team_id=generation.team_id, renditions=renditions)
    except CanceledError:
        generation_fail(
            generation.pk,
            status=Status.CANCELED,
            message="Canceled while rendering. Nothing was charged.",
            attempt=attempt,
        )
        return
    except BlockedError as error:
        generation_fail(
            generation.pk, status=Status.BLOCKED, message=error.message, attempt=attempt
        )
        return
    except TransientError as error:
        _retry_or_fail(generation, error.message, error.retry_after, attempt)
        return
    except (PermanentError, ProviderError) as error:
        generation_fail(generation.pk, status=Status.FAILED, message=error.message, attempt=attempt)
        return
    except UnusableImage as error:
        generation_fail(
            generation.pk,
            status=Status.FAILED,
            message=f"The provider sent back something that is not a usable image ({error}).",
            attempt=attempt,
        )
        return
    except Exception:  # noqa: BLE001 - a fault of ours or the storage; retry, then give up
        log.exception("generation %s: unexpected error", generation.pk)
        _retry_or_fail(generation, "Something went wrong while rendering.", None, attempt)
        return
    generation_succeed(generation, asset=asset, usage=result.usage, attempt=attempt)


def _close_idle_connections() -> None:
    """Give this thread's database connections back while it waits on the provider."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def generation_succeed(generation: Generation, *, asset, usage: dict, attempt: int) -> bool:
    now = timezone.now()
    with transaction.atomic():
        finished = Generation.objects.filter(
            pk=generation.pk, status=Status.RUNNING, attempts=attempt
        ).update(
            status=Status.SUCCEEDED,
            asset=asset,
            usage=usage or {},
            finished_at=now,
            changed_at=now,
            lease_until=None,
            credits_charged=generation.credits_held,
            error="",
        )
        if finished and generation.batch.hold_id:
            hold_capture(
                hold_id=generation.batch.hold_id, images=1, key=f"gen:{generation.pk}:capture"
            )
    if not finished:
        log.info("generation %s finished by another attempt; result dropped", generation.pk)
    return bool(finished)


def generation_fail(
    pk: int, *, status: str, message: str, attempt: int | None = None, expect: str = Status.RUNNING
) -> bool:
    """End a job as failed or blocked and give its credits back."""
    now = timezone.now()
    with transaction.atomic():
        match = Generation.objects.filter(pk=pk, status=expect)
        if attempt is not None:
            match = match.filter(attempts=attempt)
        ended = match.update(
            status=status, error=message[:2000], finished_at=now, changed_at=now, lease_until=None
        )
        if ended:
            hold_id = Generation.objects.filter(pk=pk).values_list("batch__hold_id", flat=True)[0]
            if hold_id:
                hold_release(hold_id=hold_id, images=1, key=f"gen:{pk}:release")
    return bool(ended)


def backoff_seconds(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider asked."""
    base = settings.GENERATION_RETRY_BASE_SECONDS * (2 ** (attempt - 1))
    delay = random.uniform(base / 2, base)
    return max(delay, retry_after or 0)


def _retry_or_fail(generation: Generation, message: str, retry_after, attempt: int) -> None:
    if attempt >= settings.GENERATION_MAX_ATTEMPTS:
        generation_fail(
            generation.pk,
            status=Status.FAILED,
            message=f"{message} Gave up after {attempt} attempts. Nothing was charged.",
            attempt=attempt,
        )
        return
    delay = backoff_seconds(attempt, retry_after)
    limit = settings.GENERATION_MAX_ATTEMPTS
    now = timezone.now()
    with transaction.atomic():
        moved = Generation.objects.filter(
            pk=generation.pk, status=Status.RUNNING, attempts=attempt
        ).update(
            status=Status.QUEUED,
            not_before=now + timedelta(seconds=delay),
            lease_until=None,
            changed_at=now,
            error=f"{message} Retrying (attempt {attempt + 1} of {limit}).",
        )
        if moved:
            lanes.dispatch(generation.tier, [generation.pk], countdown=delay)
