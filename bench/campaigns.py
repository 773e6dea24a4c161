"""B15: expanding and submitting a 2,000-image campaign (permutations) through the API.

Server time is the whole POST /api/v1/campaigns/{id}/batches through the
middleware, in process: parsing and expanding the prompt, the campaign's
locked budget check, quoting, holding and creating 40 batches of 50 images,
and sending the 2,000 lane tokens after the commit (no worker takes them; the
queue is purged afterwards). Queries are counted at 500, 1,000 and 2,000
images: the step from one size to the next, divided by the batches it adds,
must be the same number (a constant per batch, nothing per image).
"""

from __future__ import annotations

import time
import uuid

from .stats import Figure, Row, verdict
from .workers import purge_lanes

# 10 colours × 10 surfaces × 4 ratios = 400 combinations; × count gives the size.
PROMPT = ("{red|blue|green|amber|teal|ivory|black|rose|olive|slate} teapot "
          "on {linen|marble|oak|slate|felt|paper|brass|glass|cork|sand}")  # fmt: skip
ASPECTS = ["1:1", "4:5", "9:16", "16:9"]


class Submitter:
    def __init__(self, studio):
        from django.test import Client
        from django.test.utils import override_settings

        from studio.api.tokens import api_token_create

        self.override = override_settings(
            SUBMITS_PER_MINUTE=10_000, ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"]
        )
        self.override.enable()
        self.studio = studio
        token = api_token_create(user=studio.owner, team=studio.team, name="bench B15")[1]
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def close(self):
        self.override.disable()

    def campaign(self) -> int:
        response = self.client.post(
            "/api/v1/campaigns",
            {"name": f"B15 {uuid.uuid4().hex[:8]}", "budget": 2_000_000_000},
            content_type="application/json",
        )
        if response.status_code != 201:
            raise RuntimeError(f"create answered {response.status_code}: {response.content[:300]}")
        return response.json()["id"]

    def submit(self, campaign: int, images: int) -> dict:
        # A prompt no earlier run used, so nothing is served from the cache.
        body = {"prompt": f"{PROMPT} {uuid.uuid4().hex[:8]}", "tier": "flash", "size": "1K",
                "aspects": ASPECTS, "count": images // 400}  # fmt: skip
        response = self.client.post(
            f"/api/v1/campaigns/{campaign}/batches", body, content_type="application/json"
        )
        if response.status_code != 201:
            raise RuntimeError(f"submit answered {response.status_code}: {response.content[:300]}")
        return response.json()

    def queries(self, images: int) -> tuple[int, int]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        campaign = self.campaign()
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            body = self.submit(campaign, images)
        return len(captured.captured_queries), len(body["batches"])


def _cancel_queued(team) -> None:
    """No worker runs these; cancel them so later benches start with empty lanes
    (and within the member's cap of outstanding images)."""
    from generation.models import Batch, Status
    from generation.services import batch_cancel

    for batch in Batch.objects.filter(team=team, generations__status=Status.QUEUED).distinct():
        batch_cancel(batch=batch)


def b15_campaign_submit(ctx, runs: int = 5) -> list[Row]:
    from django.test.utils import override_settings

    submitter = Submitter(ctx.studio)
    try:
        submitter.submit(submitter.campaign(), 400)  # warm imports, templates, prices
        purge_lanes()
        # The token's last-use stamp adds a query now and then: the fewer of two runs.
        counted = [
            min(submitter.queries(images), submitter.queries(images)) for images in (400, 800, 2000)
        ]
        purge_lanes()
        times = []
        # Production runs without DEBUG: no query log (it costs ~10 % here).
        quiet = override_settings(DEBUG=False)
        quiet.enable()
        for _ in range(runs):
            campaign = submitter.campaign()
            began = time.perf_counter()
            body = submitter.submit(campaign, 2000)
            times.append(time.perf_counter() - began)
            assert body["images"] == 2000, body["images"]
            purge_lanes()
        quiet.disable()
    finally:
        submitter.close()
        _cancel_queued(ctx.studio.team)
    (q1, b1), (q2, b2), (q3, b3) = counted
    per_batch = [(q2 - q1) / (b2 - b1), (q3 - q2) / (b3 - b2)]
    constant = per_batch[0] == per_batch[1] and per_batch[0] == int(per_batch[0])
    figure = Figure.of(times, unit="s", digits=2)
    return [
        Row(
            "B15",
            f"submit a 2,000-image permutation campaign ({b3} batches): server time",
            str(figure),
            target="≤ 2 s",
            verdict=verdict(figure.median <= 2.0),
        ),
        Row(
            "B15q",
            f"queries: {q1} for {b1} batches, {q2} for {b2}, {q3} for {b3}",
            f"{per_batch[1]:g} per batch",
            target="constant per batch",
            verdict=verdict(constant),
        ),
    ]
