"""B5–B7 and B10: gallery pages over bulk-loaded rows, through Django's test Client.

Rows are bulk-created directly (the pages read them; how they were rendered
does not matter here). Server time is the whole request through the
middleware, in process, timed with the query log off; queries are counted
in a separate request with CaptureQueriesContext.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

from .pipeline import wait_batch
from .stats import Figure, Row, ratio_text, verdict


def _missing(name: str) -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse(name, kwargs={"slug": "x", "pk": 1})
    except NoReverseMatch:
        try:
            reverse(name, kwargs={"slug": "x"})
        except NoReverseMatch:
            return True
    return False


def _not_yet(id_: str, metric: str, target: str) -> list[Row]:
    return [Row(id_, metric, "—", target=target, verdict="not measured yet (no page)")]


class Pages:
    def __init__(self, user):
        from django.test import Client
        from django.test.utils import override_settings

        self.override = override_settings(
            ROOT_URLCONF="bench.urls", ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"]
        )
        self.override.enable()
        self.client = Client()
        self.client.force_login(user)

    def close(self):
        self.override.disable()

    def get(self, url: str, **headers):
        response = self.client.get(url, **headers)
        if response.status_code not in (200, 286):
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        return response

    def queries(self, url: str, **headers) -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        # The log is a bounded deque: once full (bulk loads), its length stops moving.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            self.get(url, **headers)
        return len(captured.captured_queries)

    def times(self, url: str, runs: int, **headers) -> Figure:
        self.get(url, **headers)  # warm caches of templates and URLs
        out = []
        for _ in range(runs):
            began = time.perf_counter()
            self.get(url, **headers)
            out.append((time.perf_counter() - began) * 1000)
        return Figure.of(out)


def _bulk_grids(*, team, member, project, grids: int, per_grid: int, shared_assets=False):
    """Finished Flash 1K grids, newest last: one asset per image, or per grid when shared."""
    from django.utils import timezone

    from generation.models import Asset, Batch, Generation

    start = timezone.now() - timedelta(days=60)
    batches = Batch.objects.bulk_create(
        Batch(
            team=team,
            project=project,
            member=member,
            tier="flash",
            size="1K",
            aspect="1:1",
            prompt=f"bulk grid {b} {uuid.uuid4().hex[:8]}",
            base_seed=b * 1000,
            count=per_grid,
            provider="offline",
            model="bench",
            created=start + timedelta(seconds=b * 60),
        )  # fmt: skip
        for b in range(grids)
    )
    total = grids if shared_assets else grids * per_grid
    sha = [uuid.uuid4().hex * 2 for _ in range(total)]
    assets = Asset.objects.bulk_create(
        (
            Asset(
                team=team,
                sha256=s,
                original=f"teams/{team.pk}/assets/{s[:2]}/{s}.png",
                thumbnail=f"teams/{team.pk}/assets/{s[:2]}/{s}-thumb.webp",
                preview=f"teams/{team.pk}/assets/{s[:2]}/{s}-preview.webp",
                width=1024,
                height=1024,
                bytes=1_000_000,
            )  # fmt: skip
            for s in sha
        ),
        batch_size=2000,
    )
    if assets[0].pk is None:  # backends that do not return ids from bulk inserts
        by_sha = dict(Asset.objects.filter(team=team, sha256__in=sha).values_list("sha256", "pk"))
        for asset in assets:
            asset.pk = by_sha[asset.sha256]
    rows = []
    for b, batch in enumerate(batches):
        finished = batch.created + timedelta(seconds=20)
        for i in range(per_grid):
            rows.append(
                Generation(
                    batch=batch,
                    team=team,
                    member=member,
                    index=i,
                    tier="flash",
                    size="1K",
                    aspect="1:1",
                    prompt=batch.prompt,
                    seed=batch.base_seed + i,
                    fingerprint=uuid.uuid4().hex,
                    status="succeeded",
                    attempts=1,
                    provider="offline",
                    model="bench",
                    credits_held=40,
                    credits_charged=40,
                    asset=assets[b if shared_assets else b * per_grid + i],
                    created=batch.created,
                    started_at=batch.created,
                    finished_at=finished,
                    changed_at=finished,
                )  # fmt: skip
            )
    Generation.objects.bulk_create(rows, batch_size=5000)
    _refresh_planner_statistics()
    return batches


def _refresh_planner_statistics() -> None:
    """What autovacuum does within a minute of a bulk load on a live server.

    Without it PostgreSQL plans the pages as if the tables were still empty
    (a sort of every row instead of walking the index), which no studio sees.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE generation_generation, generation_batch, generation_asset")


def _team(ctx, name: str):
    from studio.services import team_create

    return team_create(name=f"{name} {uuid.uuid4().hex[:6]}", owner=ctx.studio.owner)


def b5_project_page(ctx, runs: int = 11) -> list[Row]:
    metric = "project page, 50 grids × 50 images"
    if _missing("project"):
        return _not_yet("B5", metric, "same queries as 1 grid; ≤ 50 ms")
    from django.urls import reverse

    from generation.models import Project

    team = _team(ctx, "Bench pages")
    owner = ctx.studio.owner
    big = Project.objects.create(team=team, name="Fifty grids", created_by=owner)
    small = Project.objects.create(team=team, name="One grid", created_by=owner)
    _bulk_grids(team=team, member=owner, project=big, grids=50, per_grid=50)
    _bulk_grids(team=team, member=owner, project=small, grids=1, per_grid=50)
    ctx.pages_team = team
    pages = Pages(owner)
    try:
        big_url = reverse("project", kwargs={"slug": team.slug, "pk": big.pk})
        small_url = reverse("project", kwargs={"slug": team.slug, "pk": small.pk})
        big_q, small_q = pages.queries(big_url), pages.queries(small_url)
        big_t, small_t = pages.times(big_url, runs), pages.times(small_url, runs)
    finally:
        pages.close()
    ok = big_q == small_q and big_t.median <= 50
    return [
        Row(
            "B5",
            f"{metric}: server time, {big_q} queries (1 grid: {small_q})",
            str(big_t),
            f"{small_t} with 1 grid",
            ratio_text(big_t.median / small_t.median),
            "same queries as 1 grid; ≤ 50 ms",
            verdict(ok),
        )
    ]


def b6_grid_poll(ctx, runs: int = 15) -> list[Row]:
    metric = "grid poll of a 50-image grid"
    if _missing("batch-poll"):
        return _not_yet("B6", metric, "≤ 3 queries; ≤ 5 ms")
    from django.urls import reverse

    from generation.models import Batch
    from generation.selectors import to_micros

    team = getattr(ctx, "pages_team", None) or _team(ctx, "Bench poll")
    owner = ctx.studio.owner
    batch = Batch.objects.filter(team=team).order_by("-created").first()
    if batch is None:
        batch = _bulk_grids(team=team, member=owner, project=None, grids=1, per_grid=50)[0]
    base = reverse("batch-poll", kwargs={"slug": team.slug, "pk": batch.pk})
    # The steady case: a tab polling a grid in which nothing changed since it last asked.
    quiet = f"{base}?since={to_micros(batch.created + timedelta(days=1))}"
    everything = f"{base}?since={to_micros(batch.created - timedelta(days=1))}"
    pages = Pages(owner)
    empty = reverse("bench-empty")
    headers = {"HTTP_HX_REQUEST": "true"}
    try:
        empty_q = pages.queries(empty)
        quiet_q = pages.queries(quiet, **headers) - empty_q
        all_q = pages.queries(everything, **headers) - empty_q
        empty_t = pages.times(empty, runs)
        quiet_t = pages.times(quiet, runs, **headers)
        all_t = pages.times(everything, runs, **headers)
    finally:
        pages.close()
    extra = quiet_t.median - empty_t.median
    extra_all = all_t.median - empty_t.median
    return [
        Row(
            "B6",
            f"{metric}, nothing changed: +{quiet_q} queries over the empty view, +{extra:.1f} ms",
            str(quiet_t),
            f"{empty_t} empty view ({empty_q} queries: session, user)",
            ratio_text(quiet_t.median / empty_t.median),
            "≤ 3 queries; ≤ 5 ms over empty",
            verdict(quiet_q <= 3 and extra <= 5),
        ),
        Row(
            "B6b",
            f"{metric}, all 50 tiles changed: +{all_q} queries, +{extra_all:.1f} ms",
            str(all_t),
            f"{empty_t} empty view",
            ratio_text(all_t.median / empty_t.median),
            "≤ 3 queries; ≤ 5 ms over empty",
            verdict(all_q <= 3 and extra_all <= 5),
        ),
    ]


def b7_history(ctx, runs: int = 15) -> list[Row]:
    metric = "history page over 70,000 images"
    if _missing("history"):
        return _not_yet("B7", metric, "≤ 1.5× first page over 100; ≤ 100 ms")
    from django.urls import reverse

    from generation.models import Batch, Generation
    from generation.selectors import encode_cursor

    owner = ctx.studio.owner
    large, small = _team(ctx, "Bench history"), _team(ctx, "Bench history small")
    began = time.monotonic()
    _bulk_grids(team=large, member=owner, project=None, grids=1400, per_grid=50, shared_assets=True)
    load_s = time.monotonic() - began
    _bulk_grids(team=small, member=owner, project=None, grids=2, per_grid=50, shared_assets=True)
    deep_row = (
        Generation.objects.filter(team=large)
        .order_by("-created", "-id")
        .values_list("created", "pk")[60_000]
    )
    deep = encode_cursor(*deep_row)
    large_url = reverse("history", kwargs={"slug": large.slug})
    small_url = reverse("history", kwargs={"slug": small.slug})
    deep_url = f"{large_url}?cursor={deep}"
    # Two words in reverse order that only one old grid's prompt holds: the
    # search must pass over most of the 70,000 rows to fill its page.
    rare = Batch.objects.filter(team=large).order_by("created")[100].prompt.split()
    search_url = f"{large_url}?q={rare[3]}+{rare[1]}"
    pages = Pages(owner)
    try:
        queries = [pages.queries(u) for u in (small_url, large_url, deep_url, search_url)]
        small_t = pages.times(small_url, runs)
        first_t = pages.times(large_url, runs)
        deep_t = pages.times(deep_url, runs)
        search_t = pages.times(search_url, runs)
    finally:
        pages.close()
    rows = []
    for id_, label, figure, q in (
        ("B7", "first page", first_t, queries[1]),
        ("B7b", "deep cursor page (row 60,000)", deep_t, queries[2]),
        ("B7c", "search, two words in reverse order, 50 matches", search_t, queries[3]),
    ):
        ratio = figure.median / small_t.median
        # A search that finds one old grid must read past every newer row, so
        # it is held to the time target only, not to the ratio of a plain page.
        passes = figure.median <= 100 if id_ == "B7c" else ratio <= 1.5 and figure.median <= 100
        rows.append(
            Row(
                id_,
                f"{metric}, {label}: {q} queries (100 images: {queries[0]})"
                + (f"; 70,000 rows bulk-loaded in {load_s:.0f} s" if id_ == "B7" else ""),
                str(figure),
                f"{small_t} first page over 100 images",
                ratio_text(ratio),
                "≤ 100 ms" if id_ == "B7c" else "≤ 1.5×; ≤ 100 ms",
                verdict(passes),
            )
        )
    return rows


def b10_page_weight(ctx) -> list[Row]:
    """A real 50-image grid rendered by the workers, fetched as a browser would."""
    metric = "page weight of a 50-image grid (HTML + thumbnails)"
    if _missing("project"):
        return _not_yet("B10", metric, "≤ 2.5 MB")
    from django.urls import reverse

    from generation.models import Project
    from generation.requests import parse_batch_request
    from generation.services import batch_submit

    studio = ctx.studio
    if "flash" not in ctx.workers.processes:
        from .pipeline import CORES

        ctx.workers.start("flash", CORES)
    project = Project.objects.create(team=studio.team, name="Weight", created_by=studio.owner)
    request = parse_batch_request(
        {"prompt": "a harbour at dawn, wide shot", "tier": "flash", "size": "1K",
         "aspect": "1:1", "count": 50, "seed": ""}
    )  # fmt: skip
    batch = batch_submit(team=studio.team, member=studio.owner, request=request, project=project)
    wait_batch(batch)
    pages = Pages(studio.owner)
    try:
        html = pages.get(reverse("project", kwargs={"slug": studio.team.slug, "pk": project.pk}))
        body = html.content
        sources = set(re.findall(rb'src="(/t/[^"]+)"', body))
        images = 0
        for src in sources:
            response = pages.get(src.decode().replace("&amp;", "&"))
            images += (
                len(b"".join(response.streaming_content))
                if response.streaming
                else len(response.content)
            )
    finally:
        pages.close()
    total = len(body) + images
    return [
        Row(
            "B10",
            f"{metric}: HTML {len(body) / 1024:.0f} KB + {len(sources)} images "
            f"{images / 1024:.0f} KB",
            f"{total / 1e6:.2f} MB",
            "—",
            "—",
            "≤ 2.5 MB",
            verdict(total <= 2.5e6 and len(sources) >= 50),
        )
    ]
