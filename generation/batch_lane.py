"""The batch lane: images nobody waits for, rendered by the provider's batch endpoint.

A batch submitted with lane=batch is held at the batch rate like any other
and its images stay queued, with no lane tokens: the interactive workers
never see them. The scheduler calls `tick()` every BATCH_LANE_POLL_SECONDS:

1. Send: the queued images of each open batch-lane grid become one
   provider batch job (one grid is one provider, one model, and one job, so
   canceling a grid cancels exactly its job). The images are marked
   running and pointed at the job in one conditional update before
   anything is sent; an image is never in two jobs.
2. Collect: every open job is polled. A succeeded job's results are stored
   exactly like a lane's (PNG with the parameters embedded, thumbnails,
   lineage) and captured one image at a time; a failed request is released;
   an image the job returned nothing for is released. A job the provider
   reports failed, cancelled or expired releases every image still in it.
   A result for an image we no longer have (canceled, deleted) is logged
   and dropped.

Every settlement goes through generation_succeed / generation_fail: a
conditional update on the image's row plus a capture or release keyed by
generation, so a scheduler killed mid-collection and started again settles
each hold exactly once (it only looks at images still running in the job,
and marks the job finished after all of them are settled).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .cpu_slots import cpu_slot
from .imaging import UnusableImage, make_renditions
from .models import Batch, Generation, Lane, ProviderBatchJob, Status
from .providers import BlockedError, ProviderError, TransientError
from .providers.batch_base import (
    CANCELLED,
    EXPIRED,
    FAILED,
    OPEN_STATES,
    SUCCEEDED,
    BatchClient,
    BatchItem,
    BatchPoll,
)
from .rendering import _request_for, generation_fail, generation_succeed
from .storage import asset_store

log = logging.getLogger(__name__)

# Google keeps a batch job at most 24 hours; past this the job is given up
# even if the provider never says so (its answer for it is then lost).
EXPIRY = timedelta(hours=25)
# A job the scheduler created but stopped before sending (killed mid-send).
UNSENT_GRACE = timedelta(minutes=10)
State = ProviderBatchJob.State

WAITING_MESSAGE = "Waiting for the provider's batch"


def batch_client_for(provider: str) -> BatchClient | None:
    """The provider's batch endpoint, or None when the provider has none."""
    if provider == "offline":
        from .providers.offline_batch import OfflineBatchClient

        return OfflineBatchClient()
    if provider == "gemini":
        from .providers.gemini_batch import GeminiBatchClient

        return GeminiBatchClient(api_key=settings.GEMINI_API_KEY, api_base=settings.GEMINI_API_BASE)
    return None


def offers_batch_lane(provider: str) -> bool:
    return provider in ("offline", "gemini")


def tick() -> dict[str, int]:
    """One round of the scheduler: send what is queued, collect what is done."""
    sent = send_queued()
    collected = collect_open()
    return {"sent": sent, **collected}


# --- sending -------------------------------------------------------------------------


def send_queued() -> int:
    """Send every open batch-lane grid's queued images as a provider batch job."""
    batch_ids = list(
        Generation.objects.filter(
            lane=Lane.BATCH, status=Status.QUEUED, batch__canceled_at__isnull=True
        )
        .values_list("batch_id", flat=True)
        .distinct()
    )
    sent = 0
    for batch_id in batch_ids:
        sent += _send_batch(Batch.objects.get(pk=batch_id))
    _give_up_unsent()
    return sent


def _send_batch(batch: Batch) -> int:
    now = timezone.now()
    with transaction.atomic():
        job = ProviderBatchJob.objects.create(provider=batch.provider, model=batch.model)
        ids = list(
            Generation.objects.filter(batch=batch, lane=Lane.BATCH, status=Status.QUEUED)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        claimed = Generation.objects.filter(pk__in=ids, status=Status.QUEUED).update(
            status=Status.RUNNING,
            provider_job=job,
            attempts=F("attempts") + 1,
            started_at=now,
            changed_at=now,
            lease_until=None,
            error=WAITING_MESSAGE + ".",
        )
        if not claimed:
            job.delete()
            return 0
    generations = list(
        Generation.objects.filter(provider_job=job, status=Status.RUNNING).select_related(
            "batch", "parent__asset"
        )
    )
    client = batch_client_for(job.provider)
    if client is None:
        _end_job(job, State.FAILED, f"{job.provider} has no batch endpoint.")
        return 0
    try:
        items = [
            BatchItem(key=str(g.pk), request=_request_for(g, deadline=None)[0]) for g in generations
        ]
    except Exception:  # noqa: BLE001 - a reference or draft file we cannot read
        log.exception("batch job %s: could not prepare its requests", job.pk)
        _end_job(job, State.FAILED, "The images' references could not be read.")
        return 0
    try:
        name = client.submit(model=job.model, display_name=f"contact-sheet-{job.pk}", items=items)
    except TransientError as error:
        # Nothing reached the provider: the images go back to the queue for the next round.
        log.warning("batch job %s not sent, will retry: %s", job.pk, error.message)
        with transaction.atomic():
            Generation.objects.filter(provider_job=job, status=Status.RUNNING).update(
                status=Status.QUEUED, provider_job=None, changed_at=timezone.now()
            )
            job.delete()
        return 0
    except ProviderError as error:
        _end_job(job, State.FAILED, error.message)
        return 0
    sent = ProviderBatchJob.objects.filter(pk=job.pk, state=State.SUBMITTING).update(
        name=name, state=State.PENDING, submitted_at=timezone.now()
    )
    if not sent:
        # Canceled from the grid while it was being sent: cancel it at the provider too.
        try:
            client.cancel(name)
        except ProviderError as error:
            log.warning("batch job %s: cancel failed: %s", name, error.message)
        ProviderBatchJob.objects.filter(pk=job.pk).update(name=name)
        return 0
    log.info("batch job %s sent as %s with %d images", job.pk, name, len(items))
    return len(items)


def _give_up_unsent() -> None:
    """Jobs left unsent by a scheduler that stopped mid-send: their images go back."""
    stale = ProviderBatchJob.objects.filter(
        state=State.SUBMITTING, name="", created__lt=timezone.now() - UNSENT_GRACE
    )
    for job in stale:
        with transaction.atomic():
            Generation.objects.filter(provider_job=job, status=Status.RUNNING).update(
                status=Status.QUEUED, provider_job=None, changed_at=timezone.now()
            )
            ProviderBatchJob.objects.filter(pk=job.pk).update(
                state=State.FAILED, error="Not sent; its images were queued again."
            )


# --- collecting ----------------------------------------------------------------------


def collect_open() -> dict[str, int]:
    totals = {"polled": 0, "succeeded": 0, "released": 0}
    # A succeeded job not yet marked finished was being collected when its
    # scheduler stopped: it is collected again (only its unsettled images).
    open_jobs = ProviderBatchJob.objects.filter(
        Q(state__in=[State.PENDING, State.RUNNING]) | Q(state=State.SUCCEEDED, finished_at=None)
    ).exclude(name="")
    for job in open_jobs:
        done, released = job_collect(job)
        totals["polled"] += 1
        totals["succeeded"] += done
        totals["released"] += released
    return totals


def job_collect(job: ProviderBatchJob, *, poll: BatchPoll | None = None) -> tuple[int, int]:
    """Poll one job and settle what it says; (images captured, images released)."""
    if poll is None:
        client = batch_client_for(job.provider)
        try:
            poll = client.poll(job.name)
        except ProviderError as error:
            log.warning("batch job %s (%s): poll failed: %s", job.pk, job.name, error.message)
            if job.submitted_at and timezone.now() - job.submitted_at > EXPIRY:
                poll = BatchPoll(state=EXPIRED, error="The provider never finished it.")
            else:
                ProviderBatchJob.objects.filter(pk=job.pk).update(polled_at=timezone.now())
                return 0, 0
    now = timezone.now()
    if poll.state in OPEN_STATES and job.submitted_at and now - job.submitted_at > EXPIRY:
        # Past the provider's own 24 hours and still not done: given up on
        # here, so no hold stays open on a job that will never answer.
        try:
            batch_client_for(job.provider).cancel(job.name)
        except ProviderError as error:
            log.warning("batch job %s: cancel failed: %s", job.name, error.message)
        poll = BatchPoll(state=EXPIRED, error="It was still not done after 25 hours.")
    if poll.state in OPEN_STATES:
        ProviderBatchJob.objects.filter(pk=job.pk).update(state=poll.state, polled_at=now)
        return 0, 0
    if poll.state == SUCCEEDED:
        # Recorded first: a scheduler stopped mid-collection collects it again.
        ProviderBatchJob.objects.filter(pk=job.pk).update(state=State.SUCCEEDED, polled_at=now)
        done, released = _ingest(job, poll)
        released += _release_rest(
            job, "The provider's batch job returned no image for this request. Nothing was charged."
        )
        _end_job(job, State.SUCCEEDED, "")
        return done, released
    words = {
        FAILED: "The provider's batch job failed",
        CANCELLED: "The provider's batch job was cancelled",
        EXPIRED: "The provider's batch job expired before it ran (24 hours)",
    }.get(poll.state, f"The provider's batch job ended ({poll.state})")
    detail = f": {poll.error}" if poll.error else ""
    state = {FAILED: State.FAILED, CANCELLED: State.CANCELLED}.get(poll.state, State.EXPIRED)
    released = _release_rest(job, f"{words}{detail}. Nothing was charged.")
    _end_job(job, state, poll.error or words)
    return 0, released


def _ingest(job: ProviderBatchJob, poll: BatchPoll) -> tuple[int, int]:
    running = {
        g.pk: g
        for g in Generation.objects.filter(provider_job=job, status=Status.RUNNING).select_related(
            "batch", "parent__asset"
        )
    }
    done = released = 0
    for key, result in poll.results.items():
        generation = running.get(int(key)) if str(key).isdigit() else None
        if generation is None:
            log.info("batch job %s: result for request %r we no longer have; dropped", job.pk, key)
            continue
        if generation_ingest(generation, result):
            done += 1
        else:
            released += 1
    return done, released


def generation_ingest(generation: Generation, result) -> bool:
    """Store one returned result exactly as a lane would and settle it; True if captured."""
    attempt = generation.attempts
    if isinstance(result, ProviderError):
        status = Status.BLOCKED if isinstance(result, BlockedError) else Status.FAILED
        generation_fail(
            generation.pk,
            status=status,
            message=result.message,
            attempt=attempt,
            reason="blocked" if status == Status.BLOCKED else "permanent",
        )
        return False
    _, meta = _request_for(generation, deadline=None)
    try:
        with cpu_slot():
            renditions = make_renditions(result.image, meta)
        asset = asset_store(team_id=generation.team_id, renditions=renditions)
    except UnusableImage as error:
        generation_fail(
            generation.pk,
            status=Status.FAILED,
            message=f"The provider sent back something that is not a usable image ({error}).",
            attempt=attempt,
        )
        return False
    return generation_succeed(generation, asset=asset, usage=result.usage, attempt=attempt)


def _release_rest(job: ProviderBatchJob, message: str) -> int:
    released = 0
    for pk, attempt in Generation.objects.filter(
        provider_job=job, status=Status.RUNNING
    ).values_list("pk", "attempts"):
        released += generation_fail(
            pk, status=Status.FAILED, message=message, attempt=attempt, reason="batch_job"
        )
    return released


def _end_job(job: ProviderBatchJob, state: str, error: str) -> None:
    if state != State.SUCCEEDED:
        _release_rest(job, f"{error} Nothing was charged.")
    ProviderBatchJob.objects.filter(pk=job.pk).update(
        state=state, error=error[:2000], finished_at=timezone.now(), polled_at=timezone.now()
    )


# --- canceling -----------------------------------------------------------------------


def batch_lane_cancel(batch: Batch) -> int:
    """Cancel the provider batch jobs of a grid and release their images."""
    released = 0
    jobs = ProviderBatchJob.objects.filter(
        generations__batch=batch, state__in=[State.SUBMITTING, State.PENDING, State.RUNNING]
    ).distinct()
    for job in jobs:
        client = batch_client_for(job.provider)
        if job.name and client is not None:
            try:
                client.cancel(job.name)
            except ProviderError as error:
                # The images are released all the same; a result that still
                # comes back finds them canceled and is dropped.
                log.warning("batch job %s: cancel failed: %s", job.name, error.message)
        for pk, attempt in Generation.objects.filter(
            provider_job=job, batch=batch, status=Status.RUNNING
        ).values_list("pk", "attempts"):
            released += generation_fail(
                pk,
                status=Status.CANCELED,
                message="Canceled while waiting for the provider's batch. Nothing was charged.",
                attempt=attempt,
                reason="canceled",
            )
        ProviderBatchJob.objects.filter(pk=job.pk).update(
            state=State.CANCELLED, finished_at=timezone.now(), error="Canceled from the grid."
        )
    return released


def wait_for(batches, *, timeout: float = 60, every: float = 0.2) -> None:
    """Run ticks until no image of these batches is outstanding (tests, `render_prompts`)."""
    deadline = time.monotonic() + timeout
    ids = [b.pk for b in batches]
    while Generation.objects.filter(
        batch_id__in=ids, status__in=[Status.QUEUED, Status.RUNNING]
    ).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the batch lane did not finish in time")
        tick()
        time.sleep(every)
