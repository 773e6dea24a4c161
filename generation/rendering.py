"""Running one claimed job: call the provider, store the image, settle the credits.

The provider call and the image encoding happen outside any transaction.
Finishing is one short transaction: a conditional update that only succeeds
for the attempt that holds the lease, plus the capture (or release) keyed by
generation, so a repeated delivery or a late worker can never charge twice.
"""

import logging
import random
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.services import hold_capture, hold_release

from . import lanes
from .imaging import UnusableImage, make_renditions
from .models import Batch, Generation, Status
from .providers import (
    BlockedError,
    CanceledError,
    PermanentError,
    ProviderError,
    RenderRequest,
    TransientError,
    provider_named,
)
from .storage import asset_store, read, reference_bytes

log = logging.getLogger(__name__)


def lane_run(lane: str) -> int | None:
    """Claim the fairest job in the lane and run it; the id it ran, or None."""
    generation = lanes.claim_next(lane)
    if generation is None:
        return None
    generation_render(generation)
    return generation.pk


def _request_for(generation: Generation) -> tuple[RenderRequest, dict]:
    batch = generation.batch
    references = list(batch.references.all())
    images = [reference_bytes(r) for r in references]
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


def generation_render(generation: Generation) -> None:
    attempt = generation.attempts
    try:
        request, meta = _request_for(generation)
        # The provider chosen at submit, even if the team has switched since.
        result = provider_named(generation.provider).render(request)
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
    except SoftTimeLimitExceeded:
        _retry_or_fail(generation, "The render took too long.", None, attempt)
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
