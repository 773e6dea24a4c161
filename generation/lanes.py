"""Lanes: which job a worker runs next, and how jobs reach the workers.

The broker never carries "render generation 42". It carries lane tokens:
one `run_lane` task per queued image, sent to the lane's queue. A worker that
takes a token asks the database for the fairest queued job in its lane and
claims it. So when member A has 50 images queued and member B adds one, the
very next token any worker takes runs B's image: B waits at most for the
jobs already running (C slots) plus one.

A token that finds nothing to do (its job was canceled, or a duplicate
delivery) does nothing. A job whose token was lost (broker restart, a failed
send) is found by the sweeper and given a new one.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import metrics
from .models import Generation, Lane, LaneTurn, Status

log = logging.getLogger(__name__)

# A claim that finds every runnable row held by other claimers looks again
# this often, this many times (other claims commit within milliseconds).
CLAIM_TRIES = 50
CLAIM_RETRY_SECONDS = 0.02


def dispatch(lane: str, generation_ids: list[int], *, countdown: float = 0) -> None:
    """Send one token per job, after the surrounding transaction commits."""
    if not generation_ids:
        return
    ids = list(generation_ids)
    transaction.on_commit(lambda: _send_tokens(lane, ids, countdown))


# Above this many jobs, the tokens are sent by a lane worker (`fan_out`), not by the
# request: each token is a broker round trip and a task event, about 3 ms, so a
# 2,000-image campaign would spend 6 s of its submit sending them (bench B15).
FAN_OUT_AT = 200


def dispatch_many(lane: str, generation_ids: list[int]) -> None:
    """Like `dispatch`, but a large set goes as one message a lane worker fans out.

    If that message is lost, the jobs are queued with no dispatch time and the
    sweeper sends their tokens, as for any lost token.
    """
    if len(generation_ids) <= FAN_OUT_AT:
        dispatch(lane, generation_ids)
        return
    from .tasks import fan_out

    ids = list(generation_ids)

    def send() -> None:
        try:
            fan_out.apply_async(args=[lane, ids], queue=lane)
        except Exception:  # noqa: BLE001 - the broker is down; the sweeper re-sends
            log.warning("could not reach the broker; %d %s jobs wait for the sweeper",
                        len(ids), lane)  # fmt: skip

    transaction.on_commit(send)


def dispatch_now(lane: str, generation_ids: list[int]) -> None:
    """Send tokens at once, outside any transaction (a token handing itself back)."""
    _send_tokens(lane, list(generation_ids), 0)


def _send_tokens(lane: str, generation_ids: list[int], countdown: float) -> None:
    from .tasks import run_lane

    sent = 0
    try:
        for _ in generation_ids:
            run_lane.apply_async(args=[lane], queue=lane, countdown=countdown or None)
            sent += 1
    except Exception:  # noqa: BLE001 - the broker is down; the sweeper re-sends
        log.warning(
            "could not reach the broker; %d %s jobs wait for the sweeper",
            len(generation_ids) - sent,
            lane,
        )
    if sent:
        Generation.objects.filter(pk__in=generation_ids[:sent]).update(dispatched_at=timezone.now())


def fairest_queued(
    lane: str, *, provider: str | None = None, lock: bool = False
) -> Generation | None:
    """The job the lane should run next.

    Fair: among members with runnable jobs, the one whose last job in this
    lane started longest ago goes first; within a member, oldest first.
    With `lock` (inside a transaction), the row is locked for the caller and
    rows other claimers hold are skipped, so fifty threads claiming at once
    each get a different job instead of all racing for the same one.
    """
    now = timezone.now()
    runnable = (
        Generation.objects.filter(tier=lane, status=Status.QUEUED, lane=Lane.INTERACTIVE)
        .exclude(not_before__gt=now)
        # A paused campaign's jobs stay queued but are not run (see generation.campaigns).
        .filter(Q(batch__campaign__isnull=True) | Q(batch__campaign__paused_at__isnull=True))
    )
    if provider is not None:
        runnable = runnable.filter(provider=provider)
    members = set(runnable.values_list("member_id", flat=True).distinct())
    turns = dict(
        LaneTurn.objects.filter(lane=lane, member_id__in=members).values_list(
            "member_id", "last_started"
        )
    )
    for member in sorted(members, key=lambda m: (turns.get(m) is not None, turns.get(m) or now, m)):
        jobs = runnable.filter(member_id=member).order_by("created", "id")
        if lock:
            # PostgreSQL; SQLite ignores it, its write transactions run one at a time.
            jobs = jobs.select_for_update(skip_locked=True, of=("self",))
        candidate = jobs.first()
        if candidate is not None:
            return candidate
    return None


def claim_next(lane: str, *, provider: str | None = None) -> Generation | None:
    """Claim the fairest runnable job in the lane (of one provider, if given), or None.

    None means no job is left to claim: a claim never gives up while one is,
    so every lane token that finds work runs it. On PostgreSQL the locked
    search skips rows other claimers hold; when it finds nothing but runnable
    rows remain, they are being claimed or about to be free again, so it
    looks once more instead of spending its token. The queued -> running
    update stays conditional and checked by row count all the same.
    """
    for _ in range(CLAIM_TRIES):
        with transaction.atomic():
            candidate = fairest_queued(lane, provider=provider, lock=True)
            if candidate is not None:
                now = timezone.now()
                lease = now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
                claimed = Generation.objects.filter(pk=candidate.pk, status=Status.QUEUED).update(
                    status=Status.RUNNING,
                    attempts=F("attempts") + 1,
                    lease_until=lease,
                    started_at=now,
                    changed_at=now,
                )
                if claimed:
                    LaneTurn.objects.update_or_create(
                        lane=lane, member_id=candidate.member_id, defaults={"last_started": now}
                    )
        if candidate is not None and claimed:
            # What the render needs, in the one read that confirms the claim.
            return Generation.objects.select_related("batch", "parent__asset").get(pk=candidate.pk)
        if fairest_queued(lane, provider=provider) is None:
            return None
        time.sleep(CLAIM_RETRY_SECONDS)
    return None


def sweep(now=None) -> dict[str, int]:
    """Re-queue jobs whose lease expired and re-send tokens that were lost.

    A job whose worker died stays `running` until its lease ends; it is put
    back in the queue (the attempt counts). Capture is keyed by generation,
    so a job that finished after all is never charged twice.
    """
    now = now or timezone.now()
    expired = list(
        Generation.objects.filter(status=Status.RUNNING, lease_until__lt=now).values_list(
            "pk", "tier", "attempts"
        )
    )
    requeued = 0
    for pk, tier, attempts in expired:
        if attempts >= settings.GENERATION_MAX_ATTEMPTS:
            from .rendering import generation_fail

            generation_fail(
                pk,
                status=Status.FAILED,
                message="The render stopped unexpectedly several times. Nothing was charged.",
                expect=Status.RUNNING,
                reason="lease_expired",
            )
            continue
        with transaction.atomic():
            moved = Generation.objects.filter(
                pk=pk, status=Status.RUNNING, lease_until__lt=now
            ).update(status=Status.QUEUED, lease_until=None, changed_at=now, dispatched_at=None)
            if moved:
                requeued += 1
                dispatch(tier, [pk])
                metrics.count("contact_sheet_sweeper_requeued_total", lane=tier, cause="lease")
    # Tokens lost with the broker, or never sent: queued jobs not dispatched
    # recently. Spare tokens are harmless; a missing one would strand a job.
    stale = now - timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    # Batch-lane images have no tokens: the batch lane's scheduler sends them.
    queued = Generation.objects.filter(status=Status.QUEUED, lane=Lane.INTERACTIVE)
    lost = queued.filter(
        dispatched_at__isnull=True, created__lt=now - timedelta(seconds=10)
    ) | queued.filter(dispatched_at__lt=stale)
    resent = 0
    for tier in ("flash", "pro"):
        ids = list(lost.filter(tier=tier).values_list("pk", flat=True)[:500])
        if ids:
            _send_tokens(tier, ids, 0)
            resent += len(ids)
            metrics.count(
                "contact_sheet_sweeper_requeued_total", len(ids), lane=tier, cause="token"
            )
    return {"requeued": requeued, "resent": resent}
