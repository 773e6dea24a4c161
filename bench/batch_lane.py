"""B16: collecting a 1,000-request batch-lane job against the lane's own ingest.

Both sides store the same images (the offline renderer's 512 px draft, as
the provider returned it) for 1,000 running generations, one grid each:

- baseline, the lane's ingest: per image what a lane thread does once the
  provider has answered (`_request_for` for the parameters, make_renditions,
  asset_store, generation_succeed with its capture);
- ours, the batch lane: `job_collect` on a 1,000-request provider batch job
  whose poll says succeeded with the 1,000 results, so the whole
  collection runs: the job's rows, each result matched by key and stored,
  the leftovers and the job's end.

Provider time is left out of both (a batch job's results arrive together);
what is measured is the server's cost per returned image. Rate =
images / wall time in this process.
"""

from __future__ import annotations

import time

from django.conf import settings

from .pipeline import sample_image
from .stats import Row, verdict

REQUESTS = 1000


def _grid(studio, *, lane: str):
    from generation.requests import parse_batch_request
    from generation.services import batch_submit

    request = parse_batch_request(
        {
            "prompt": f"bench batch lane {lane} {time.time_ns()}",
            "tier": "flash",
            "size": "512",
            "aspect": "1:1",
            "count": REQUESTS,
            "seed": "",
            "lane": lane,
        }
    )
    return batch_submit(team=studio.team, member=studio.owner, request=request)


def _lane_ingest(studio, image: bytes) -> float:
    from django.utils import timezone

    from generation.imaging import make_renditions
    from generation.models import Generation, Status
    from generation.providers import RenderResult
    from generation.rendering import _request_for, generation_succeed
    from generation.storage import asset_store

    batch = _grid(studio, lane="interactive")
    # Claimed as a lane claims them. The grid's tokens went to the flash queue,
    # and a worker an earlier bench left running may claim a few first: only
    # the rows this claim moved (marked by its start time) are measured.
    mark = timezone.now()
    Generation.objects.filter(batch=batch, status=Status.QUEUED).update(
        status=Status.RUNNING, attempts=1, started_at=mark
    )
    generations = list(
        Generation.objects.filter(batch=batch, started_at=mark).select_related(
            "batch", "parent__asset"
        )
    )
    result = RenderResult(image=image, mime_type="image/png", model="bench", usage={})
    started = time.perf_counter()
    for generation in generations:
        _, meta = _request_for(generation, deadline=None)
        renditions = make_renditions(result.image, meta)
        asset = asset_store(team_id=generation.team_id, renditions=renditions)
        assert generation_succeed(generation, asset=asset, usage=result.usage, attempt=1)
    # Seconds per image, scaled to the whole grid.
    return (time.perf_counter() - started) * REQUESTS / len(generations)


def _batch_collect(studio, image: bytes) -> float:
    from generation import batch_lane
    from generation.models import Generation, ProviderBatchJob, Status
    from generation.providers import RenderResult
    from generation.providers.batch_base import SUCCEEDED, BatchPoll

    batch = _grid(studio, lane="batch")
    batch_lane.send_queued()  # the offline batch endpoint: nothing rendered yet
    job = ProviderBatchJob.objects.filter(generations__batch=batch).distinct().get()
    keys = Generation.objects.filter(provider_job=job).values_list("pk", flat=True)
    result = RenderResult(image=image, mime_type="image/png", model="bench", usage={})
    poll = BatchPoll(state=SUCCEEDED, results={str(pk): result for pk in keys})
    started = time.perf_counter()
    done, released = batch_lane.job_collect(job, poll=poll)
    elapsed = time.perf_counter() - started
    assert (done, released) == (REQUESTS, 0), (done, released)
    assert not Generation.objects.filter(batch=batch).exclude(status=Status.SUCCEEDED).exists()
    return elapsed


def b16_batch_lane_ingest(ctx) -> list[Row]:
    image = sample_image(ctx.data_dir / "flash-512.png", size="512")
    # One grid of 1,000: past the composer's per-grid and per-member limits,
    # which a campaign's permutations split into grids anyway.
    settings.FLASH_MAX_COUNT = max(settings.FLASH_MAX_COUNT, REQUESTS)
    settings.LANE_MEMBER_OUTSTANDING_CAP = max(settings.LANE_MEMBER_OUTSTANDING_CAP, 2 * REQUESTS)
    lane_seconds = _lane_ingest(ctx.studio, image)
    batch_seconds = _batch_collect(ctx.studio, image)
    lane_rate, batch_rate = REQUESTS / lane_seconds, REQUESTS / batch_seconds
    ratio = batch_rate / lane_rate
    return [
        Row(
            "B16",
            f"batch-lane job of {REQUESTS:,} results (512 px) collected: match by key, "
            "store with metadata + thumbnails, capture each",
            f"{batch_rate:.0f} images/s ({batch_seconds:.1f} s)",
            f"{lane_rate:.0f} images/s ({lane_seconds:.1f} s) the lane's ingest",
            f"{ratio:.2f}×",
            "≥ 0.8×",
            verdict(ratio >= 0.8),
        )
    ]
