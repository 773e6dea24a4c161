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

from . import lanes, metrics, quotas
from .cpu_slots import cpu_slot
from .imaging import UnusableImage, make_renditions
from .log_context import render_fields
from .models import Batch, Generation, Kind, Status
from .providers import (
    BlockedError,
    CanceledError,
    EditTurn,
    PermanentError,
    ProviderError,
    RateLimitedError,
    RenderRequest,
    TransientError,
    provider_named,
)
from .selectors import edit_chain
from .storage import asset_store, read, reference_bytes

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
    images = [reference_bytes(r) for r in references]
    parent_hash = ""
    start_from: dict = {}
    if generation.parent_id and generation.parent.asset_id:
        parent_hash = generation.parent.asset.sha256
        source = read(generation.parent.asset.original.name)
        if generation.edge == Kind.EDIT:
            start_from = _edit_inputs(generation, source)
        elif generation.edge == Kind.VARIATION:
            start_from = {
                "source": source,
                "variation": generation.batch.strength,
                "source_seed": generation.parent.seed,
            }
        else:
            # The draft itself goes in as a reference, so the composition survives.
            images.append(source)
    request = RenderRequest(
        prompt=generation.prompt,
        seed=generation.seed,
        tier=generation.tier,
        size=generation.size,
        aspect=generation.aspect,
        model=generation.model,
        references=tuple(images),
        **start_from,
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
    if generation.edge in (Kind.EDIT, Kind.VARIATION):
        meta["made_by"] = generation.edge
        meta["instruction"] = generation.instruction or None
        meta["variation"] = start_from.get("variation") or None
        if start_from.get("mask"):
            meta["mask"] = batch.mask_sha256
    return request, meta


def _edit_inputs(generation: Generation, source: bytes) -> dict:
    """An edit's source image and, for a chained edit, the conversation so far."""
    chain = edit_chain(generation.parent)  # the earlier edits, oldest first
    turns = tuple(
        EditTurn(instruction=g.instruction, image=read(g.asset.original.name),
                 signature=g.thought_signature)
        for g in chain
    )  # fmt: skip
    chain_start = b""
    if chain:
        first_source = (
            Generation.objects.select_related("asset").filter(pk=chain[0].parent_id).first()
        )
        if first_source is not None and first_source.asset_id:
            chain_start = read(first_source.asset.original.name)
    batch = generation.batch
    return {
        "source": source,
        "instruction": generation.instruction,
        "turns": turns,
        "chain_start": chain_start,
        # The same mask on every attempt: it is kept with the batch, not the request.
        "mask": read(batch.mask.name) if batch.mask_sha256 and batch.mask else b"",
    }


def generation_render(generation: Generation, *, slot: quotas.Slot | None = None) -> None:
    """Render a claimed job and settle it. `slot` is its quota slot, given
    back as soon as the provider has answered (before the local work)."""
    with render_fields(
        batch=generation.batch_id,
        generation=generation.pk,
        team=generation.team_id,
        provider=generation.provider,
        model=generation.model,
        lane=generation.tier,
    ):
        _render(generation, slot=slot)


def _render(generation: Generation, *, slot: quotas.Slot | None) -> None:
    attempt = generation.attempts
    deadline = time.monotonic() + settings.RENDER_DEADLINE_SECONDS
    slot = slot or quotas.Slot(quotas.credential_for(generation.provider), None)
    try:
        request, meta = _request_for(generation, deadline)
        _close_idle_connections()
        started = time.monotonic()
        try:
            # The provider chosen at submit, even if the team has switched since.
            result = provider_named(generation.provider).render(request)
        except RateLimitedError as error:
            _latency_observe(generation, started, "throttled")
            slot.throttled(error.retry_after)
            raise
        except BaseException:
            _latency_observe(generation, started, "error")
            slot.release()
            raise
        _latency_observe(generation, started, "succeeded")
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
            reason="canceled",
        )
        return
    except BlockedError as error:
        generation_fail(
            generation.pk,
            status=Status.BLOCKED,
            message=error.message,
            attempt=attempt,
            reason="blocked",
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
    if generation_succeed(
        generation, asset=asset, usage=result.usage, attempt=attempt, signature=result.signature
    ):
        log.info("generation %s rendered", generation.pk)


def _latency_observe(generation: Generation, started: float, outcome: str) -> None:
    metrics.observe(
        "contact_sheet_render_seconds",
        time.monotonic() - started,
        lane=generation.tier,
        provider=generation.provider,
        model=generation.model,
        outcome=outcome,
    )


def _close_idle_connections() -> None:
    """Give this thread's database connections back while it waits on the provider."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def generation_succeed(
    generation: Generation, *, asset, usage: dict, attempt: int, signature: str = ""
) -> bool:
    now = timezone.now()
    with transaction.atomic():
        finished = Generation.objects.filter(
            pk=generation.pk, status=Status.RUNNING, attempts=attempt
        ).update(
            status=Status.SUCCEEDED,
            asset=asset,
            usage=usage or {},
            thought_signature=signature or "",
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
    pk: int,
    *,
    status: str,
    message: str,
    attempt: int | None = None,
    expect: str = Status.RUNNING,
    reason: str = "permanent",
) -> bool:
    """End a job as failed or blocked and give its credits back. `reason` is
    what the metrics count it under: permanent (the provider refused),
    transient (gave up retrying), lease_expired, blocked or canceled."""
    now = timezone.now()
    with transaction.atomic():
        match = Generation.objects.filter(pk=pk, status=expect)
        if attempt is not None:
            match = match.filter(attempts=attempt)
        ended = match.update(
            status=status, error=message[:2000], finished_at=now, changed_at=now, lease_until=None
        )
        if ended:
            hold_id, tier, provider = Generation.objects.filter(pk=pk).values_list(
                "batch__hold_id", "tier", "provider"
            )[0]
            if hold_id:
                hold_release(hold_id=hold_id, images=1, key=f"gen:{pk}:release")
            metrics.count(
                "contact_sheet_render_failures_total",
                lane=tier,
                provider=provider,
                status=status,
                reason=reason,
            )
    if ended:
        log.log(
            logging.INFO if status == Status.CANCELED else logging.WARNING,
            "generation %s %s (%s): %s",
            pk,
            status,
            reason,
            message,
            extra={"generation": pk, "lane": tier, "provider": provider},
        )
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
            reason="transient",
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
            metrics.count(
                "contact_sheet_render_retries_total",
                lane=generation.tier,
                provider=generation.provider,
                credential=quotas.credential_for(generation.provider).key,
            )
    if moved:
        log.info("generation %s retries in %.1f s: %s", generation.pk, delay, message)
