"""Reads the gallery pages need, each in a fixed number of queries.

A project page, a poll, an image page and a history page each cost the same
number of queries whether the team has ten images or seventy thousand: grids
are fetched as one page of batches plus one query for all their images,
history walks the (team, -created, -id) index with a cursor instead of an
OFFSET, and the lane's pace is kept in the cache for a few seconds.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from . import quotas
from .models import OUTSTANDING, Batch, Generation, Kind, Lane, Project, Reference, Status
from .requests import parse_id

# What a batch-lane grid's progress says it waits for ("waiting for …").
BATCH_WAITING_FOR = "the provider's batch"

# Three grids of up to 50 keep the page under 50 ms; older ones load on demand.
GRIDS_PER_PAGE = 3
HISTORY_PER_PAGE = 60
PACE_SAMPLE = 20
PACE_CACHE_SECONDS = 10
# Columns a tile never shows; skipping them keeps 2,500-tile pages light.
TILE_DEFERRED = ("usage", "fingerprint", "lease_until", "not_before", "dispatched_at")
# What a poll reads of each image: its progress, its place in the lane and its
# tile (a poll swaps tiles by id: the edit chain and matrix axes stay on the
# page). Every poll reads all of a grid's rows, so each column it skips counts.
POLL_FIELDS = (
    "id", "batch_id", "team_id", "index", "status", "cached", "archived", "changed_at",
    "created", "started_at", "lane", "tier", "provider", "size", "aspect", "seed",
    "prompt", "error", "starred", "rejected", "rating", "parent_id",
)  # fmt: skip


# --- projects -----------------------------------------------------------------------


def projects_for_team(team, *, archived: bool = False) -> list[Project]:
    """The team's projects with their newest image as a cover, in one query."""
    newest = Generation.objects.filter(
        batch__project=OuterRef("pk"), status=Status.SUCCEEDED, archived=False
    ).order_by("-created", "-id")
    return list(
        Project.objects.filter(team=team, archived=archived)
        .annotate(
            cover_id=Subquery(newest.values("pk")[:1]),
            cover_aspect=Subquery(newest.values("aspect")[:1]),
            cover_prompt=Subquery(newest.values("prompt")[:1]),
            last_activity=Subquery(
                Batch.objects.filter(project=OuterRef("pk"))
                .order_by("-created")
                .values("created")[:1]
            ),
        )
        .order_by("-created", "-id")
    )


@dataclass
class ProjectUsage:
    name: str
    images: int = 0
    cached: int = 0
    flash: int = 0
    pro: int = 0

    @property
    def credits(self) -> int:
        return self.flash + self.pro


def usage_by_project(team, *, since: datetime, member=None) -> list[ProjectUsage]:
    """Images delivered since `since` and the credits they were charged, per project.

    Read from the images themselves (what each was charged), in one grouped
    query; billing's usage records know nothing of projects.
    """
    images = Generation.objects.filter(team=team, status=Status.SUCCEEDED, finished_at__gte=since)
    if member is not None:
        images = images.filter(member=member)
    grouped = (
        images.values("batch__project_id", "batch__project__name", "tier", "cached")
        .annotate(count=Count("id"), credits=Sum("credits_charged"))
        .order_by()
    )
    projects: dict[int | None, ProjectUsage] = {}
    for row in grouped:
        key = row["batch__project_id"]
        usage = projects.setdefault(
            key, ProjectUsage(name=row["batch__project__name"] or "(no project)")
        )
        usage.images += row["count"]
        usage.cached += row["count"] if row["cached"] else 0
        if row["tier"] == "pro":
            usage.pro += row["credits"] or 0
        else:
            usage.flash += row["credits"] or 0
    return sorted(projects.values(), key=lambda p: (-p.credits, -p.images, p.name))


def references_for_team(team) -> list[Reference]:
    return list(Reference.objects.filter(team=team).order_by("name", "id"))


# --- grids --------------------------------------------------------------------------


@dataclass
class Progress:
    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    blocked: int = 0
    canceled: int = 0
    queued: int = 0
    running: int = 0
    eta_seconds: int | None = None
    next_place: int | None = None
    waiting_for: str = ""  # "Gemini's rate limit" when the quota holds the grid back

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.blocked + self.canceled

    @property
    def is_finished(self) -> bool:
        return self.finished >= self.total

    @property
    def done_percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def eta_text(self) -> str:
        if self.is_finished or self.eta_seconds is None:
            return ""
        if self.eta_seconds < 60:
            return f"about {max(1, self.eta_seconds)} s left"
        return f"about {round(self.eta_seconds / 60)} min left"


@dataclass
class Grid:
    batch: Batch
    tiles: list[Generation] = field(default_factory=list)
    progress: Progress = field(default_factory=Progress)
    # Where the next poll starts (microseconds since the epoch).
    since: int = 0
    # Keep polling, slowly, once finished: people outside the team may still
    # mark its images (the studio sets it for grids on a live review link).
    watched: bool = False


def progress_of(generations) -> Progress:
    progress = Progress(total=len(generations))
    for generation in generations:
        status = generation.status
        if status == Status.SUCCEEDED:
            progress.done += 1
            progress.cached += generation.cached
        elif status == Status.FAILED:
            progress.failed += 1
        elif status == Status.BLOCKED:
            progress.blocked += 1
        elif status == Status.CANCELED:
            progress.canceled += 1
        elif status == Status.QUEUED:
            progress.queued += 1
        else:
            progress.running += 1
    return progress


@dataclass(frozen=True)
class LanePace:
    between_finishes: float  # seconds between finished images lately: the lane's throughput
    render_seconds: float  # the median time one render took, claim to finish


def lane_pace(tier: str) -> LanePace | None:
    """How the lane has been going lately, or None when it has not run.

    Measured from the last finishes, so it already reflects how many renders
    are in flight and how tight the provider's quota is. Cached briefly:
    every polling grid of the lane asks, and the answer moves slowly.
    """
    key = f"gallery:lane-pace:{tier}"
    pace = cache.get(key)
    if pace is not None:
        return LanePace(*pace) if pace else None
    recent = list(
        Generation.objects.filter(
            tier=tier,
            status__in=(Status.SUCCEEDED, Status.FAILED),
            cached=False,
            finished_at__gte=timezone.now() - timedelta(minutes=15),
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:PACE_SAMPLE]
    )
    durations = sorted((f - s).total_seconds() for s, f in recent if s and f)
    render_seconds = durations[len(durations) // 2] if durations else 0.0
    between = 0.0
    if len(recent) >= 3:
        between = (recent[0][1] - recent[-1][1]).total_seconds() / (len(recent) - 1)
    if between <= 0:
        between = render_seconds
    pace = (between, render_seconds) if render_seconds > 0 else ()
    cache.set(key, pace, PACE_CACHE_SECONDS)
    return LanePace(*pace) if pace else None


def _place_in_lane(tiles: list[Generation]) -> None:
    """Set `place` (1 = next to start) on each queued tile: one count per lane.

    The lane serves members round-robin, so the count of older queued jobs is
    the longest a tile may wait; it is what the tile promises.
    """
    queued_by_lane: dict[str, list[Generation]] = {}
    for tile in tiles:
        # Batch-lane images have no place in a lane: the provider's batch holds them.
        if tile.status == Status.QUEUED and tile.lane == Lane.INTERACTIVE:
            queued_by_lane.setdefault(tile.tier, []).append(tile)
    for lane, queued in queued_by_lane.items():
        queued.sort(key=lambda g: (g.created, g.pk))
        first = queued[0]
        ahead = (
            Generation.objects.filter(tier=lane, status=Status.QUEUED, lane=Lane.INTERACTIVE)
            .filter(Q(created__lt=first.created) | Q(created=first.created, pk__lt=first.pk))
            .count()
        )
        for rank, tile in enumerate(queued):
            tile.place = ahead + rank + 1


def _estimate(grid: Grid) -> None:
    """Time left from the lane's measured pace, and what the grid waits for.

    A running image is done about one render's time after it started; a
    queued one at place p starts once p images ahead have started, at the
    lane's pace, then takes a render's time. When the provider's quota is
    what holds the lane back, the grid says so.
    """
    progress = grid.progress
    if progress.is_finished:
        return
    if grid.batch.lane == Lane.BATCH:
        # Hours at most, usually minutes; there is no pace to estimate it from.
        progress.waiting_for = BATCH_WAITING_FOR
        return
    places = [t.place for t in grid.tiles if getattr(t, "place", None)]
    progress.next_place = min(places) if places else None
    if progress.queued:
        credential = quotas.credential_for(grid.batch.provider)
        state = quotas.state(credential)
        if state is not None and state.is_bottleneck(credential):
            progress.waiting_for = f"{credential.label}'s rate limit"
    pace = lane_pace(grid.batch.tier)
    if pace is None:
        return
    now = timezone.now()
    running = [
        max(0.0, pace.render_seconds - (now - t.started_at).total_seconds())
        for t in grid.tiles
        if t.status == Status.RUNNING and t.started_at
    ]
    queued = max(places) * pace.between_finishes + pace.render_seconds if places else 0.0
    progress.eta_seconds = round(max([queued, *running, 1.0]))


def to_micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def from_micros(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1_000_000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# A change is committed a moment after its changed_at is stamped, so a poll
# could read just before a worker's commit lands with an older timestamp than
# the newest it saw. The next poll therefore starts this far back: a tile may
# be sent twice (the browser skips an unchanged one), never missed.
POLL_OVERLAP = timedelta(seconds=1)


def _next_since(read_at: datetime) -> int:
    return to_micros(read_at - POLL_OVERLAP)


def _grids(team, batches: list[Batch]) -> list[Grid]:
    read_at = timezone.now()
    by_batch: dict[int, list[Generation]] = {b.pk: [] for b in batches}
    generations = (
        Generation.objects.filter(batch_id__in=list(by_batch))
        .defer(*TILE_DEFERRED)
        .order_by("batch_id", "index")
    )
    for generation in generations:
        by_batch[generation.batch_id].append(generation)
    grids = []
    all_tiles = []
    for batch in batches:
        generations = by_batch[batch.pk]
        grid = Grid(
            batch=batch,
            tiles=[g for g in generations if not g.archived],
            progress=progress_of(generations),
            since=_next_since(read_at),
        )
        grids.append(grid)
        all_tiles.extend(g for g in generations if g.status == Status.QUEUED)
    _place_in_lane(all_tiles)
    for grid in grids:
        _estimate(grid)
    return grids


def _cursor_filter(queryset, cursor: tuple[datetime, int] | None):
    if cursor is None:
        return queryset
    created, pk = cursor
    # The separate `created <= cursor` term lets the database seek straight to
    # the cursor in the (team, created, id) index; the OR alone makes it scan
    # every newer row first, so deep pages got slower the deeper they were.
    return queryset.filter(created__lte=created).filter(Q(created__lt=created) | Q(pk__lt=pk))


def encode_cursor(created: datetime, pk: int) -> str:
    raw = f"{to_micros(created)}.{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        micros, pk = raw.split(".")
        created, pk = from_micros(micros), parse_id(pk)
        return (created, pk) if created and pk is not None else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _with_images_left():
    """A grid whose every image was archived is gone from the page, not an empty card."""
    return Exists(Generation.objects.filter(batch=OuterRef("pk"), archived=False))


# Coming back to `?through=<batch>` reloads every grid down to that one, at most this many.
GRIDS_THROUGH_MAX = 60


def project_grids(*, team, project, cursor=None, through=None) -> tuple[list[Grid], str]:
    """One page of the project's grids, newest first, and the cursor for older ones.

    `through` (a batch id) widens the page down to that batch, so a person who
    scrolled into older grids and comes back finds them loaded again.
    """
    batches = (
        Batch.objects.filter(team=team, project=project)
        .filter(_with_images_left())
        .select_related("member")
    )
    limit = GRIDS_PER_PAGE
    if through is not None and cursor is None:
        oldest = batches.filter(pk=through).values_list("created", flat=True).first()
        if oldest is not None:
            newer = batches.filter(Q(created__gt=oldest) | Q(created=oldest, pk__gte=through))
            limit = max(GRIDS_PER_PAGE, min(GRIDS_THROUGH_MAX, newer.count()))
    batches = list(_cursor_filter(batches, cursor).order_by("-created", "-id")[: limit + 1])
    more = len(batches) > limit
    batches = batches[:limit]
    next_cursor = encode_cursor(batches[-1].created, batches[-1].pk) if more else ""
    return _grids(team, batches), next_cursor


def batch_grid(*, team, pk: int) -> Grid | None:
    batch = Batch.objects.filter(team=team, pk=pk).select_related("member").first()
    return _grids(team, [batch])[0] if batch else None


@dataclass
class Changes:
    progress: Progress
    changed: list[Generation]
    since: int
    settled: int  # images that finished (captured or released) in this window
    queued: list[Generation] = field(default_factory=list)
    # Every image of the grid still in it, for marks kept outside generation.
    tiles: list[Generation] = field(default_factory=list)


def batch_changes(*, team, pk: int, since: datetime | None) -> Changes | None:
    """What a polling grid must update: its progress and the tiles changed since `since`.

    One query for the batch's images (50 at most), one count when some are
    still queued; the lane's pace usually comes from the cache.
    """
    read_at = timezone.now()
    generations = list(
        Generation.objects.filter(batch_id=pk, team=team).only(*POLL_FIELDS).order_by("index")
    )
    if not generations:
        return None
    changed = [g for g in generations if since is None or g.changed_at > since]
    progress = progress_of(generations)
    _place_in_lane(generations)
    batch = Batch(pk=pk, tier=generations[0].tier, provider=generations[0].provider, team=team)
    grid = Grid(batch=batch, tiles=generations, progress=progress)
    _estimate(grid)
    settled = sum(1 for g in changed if g.status not in OUTSTANDING and not g.archived)
    return Changes(
        progress=progress,
        changed=[g for g in changed if not g.archived],
        since=_next_since(read_at),
        settled=settled,
        queued=[g for g in generations if g.status == Status.QUEUED and not g.archived],
        tiles=[g for g in generations if not g.archived],
    )


# --- one image ----------------------------------------------------------------------


@dataclass
class Detail:
    generation: Generation
    previous_id: int | None
    next_id: int | None
    promotions: list[Generation]
    references: list[Reference]


def generation_detail(*, team, pk: int) -> Detail | None:
    generation = (
        Generation.objects.filter(team=team, pk=pk)
        .select_related("batch", "batch__project", "member", "asset", "parent")
        .first()
    )
    if generation is None:
        return None
    siblings = list(
        Generation.objects.filter(batch_id=generation.batch_id, archived=False)
        .order_by("index")
        .values_list("pk", flat=True)
    )
    position = siblings.index(pk) if pk in siblings else -1
    previous_id = siblings[position - 1] if position > 0 else None
    next_id = siblings[position + 1] if 0 <= position < len(siblings) - 1 else None
    promotions = list(
        generation.children.filter(team=team, edge=Kind.PROMOTION).order_by("-created", "-id")
    )
    references = list(generation.batch.references.all())
    return Detail(generation, previous_id, next_id, promotions, references)


def edit_chain(generation: Generation) -> list[Generation]:
    """The edits that led to `generation`, oldest first, ending with it if it is one.

    A chain is the run of edit edges back to the first image that was not an
    edit (a draft, a variation or a Pro render); its length is capped, so
    this is at most EDIT_CHAIN_MAX_TURNS reads.
    """
    chain = []
    node = generation
    while node is not None and node.edge == Kind.EDIT:
        chain.append(node)
        node = (
            Generation.objects.select_related("asset").filter(pk=node.parent_id).first()
            if node.parent_id
            else None
        )
    chain.reverse()
    return chain


@dataclass
class TreeNode:
    generation: Generation
    depth: int
    children: list[TreeNode] = field(default_factory=list)

    @property
    def edge(self) -> str:
        return self.generation.edge

    @property
    def instruction(self) -> str:
        return self.generation.instruction


@dataclass
class VersionTree:
    root: TreeNode
    nodes: list[TreeNode]  # depth first: each node before its children, siblings oldest first
    current_id: int

    @property
    def is_trivial(self) -> bool:
        return len(self.nodes) < 2


# A tree can grow large (variation grids of variations); the page shows the newest.
TREE_NODES_SHOWN = 300
UNFINISHED_BRANCHES = (Status.FAILED, Status.BLOCKED, Status.CANCELED)


def version_tree(*, team, pk: int) -> VersionTree | None:
    """Every image made from the same first image as `pk`, as a tree, in two queries
    (three when the tree is larger than the page shows).

    Failed, blocked and canceled images are left out (they made nothing to
    build on) unless one of them is the image asked for.
    """
    current = Generation.objects.filter(team=team, pk=pk).values("pk", "root_id").first()
    if current is None:
        return None
    root_id = current["root_id"] or current["pk"]
    rows = list(
        Generation.objects.filter(team=team)
        .filter(Q(pk=root_id) | Q(root_id=root_id))
        .exclude(Q(status__in=UNFINISHED_BRANCHES) & ~Q(pk=pk))
        .select_related("member", "asset", "batch")
        .order_by("-created", "-id")[:TREE_NODES_SHOWN]
    )
    if all(g.pk != root_id for g in rows):
        # A tree past the cut still shows where it began.
        root = (
            Generation.objects.filter(team=team, pk=root_id)
            .select_related("member", "asset", "batch")
            .first()
        )
        if root is None:
            return None
        rows.append(root)
    rows.sort(key=lambda g: (g.created, g.pk))
    by_id = {g.pk: TreeNode(g, 0) for g in rows}
    tops = []
    for node in by_id.values():
        parent = by_id.get(node.generation.parent_id)
        if parent is not None and node.generation.pk != root_id:
            parent.children.append(node)
        else:
            tops.append(node)
    ordered: list[TreeNode] = []
    stack = [(top, 0) for top in reversed(tops)]
    while stack:
        node, depth = stack.pop()
        node.depth = depth
        ordered.append(node)
        stack.extend((child, depth + 1) for child in reversed(node.children))
    return VersionTree(root=by_id[root_id], nodes=ordered, current_id=pk)


def compare_pair(*, team, pk: int) -> tuple[Generation, Generation] | None:
    """(Flash draft, Pro render) for a Pro image or for a draft's newest finished promotion."""
    generation = (
        Generation.objects.filter(team=team, pk=pk)
        .select_related("parent", "parent__asset", "parent__batch", "asset", "batch")
        .first()
    )
    if generation is None:
        return None
    if generation.parent_id:
        return generation.parent, generation
    pro = (
        generation.children.filter(team=team, edge=Kind.PROMOTION, status=Status.SUCCEEDED)
        .select_related("asset", "batch")
        .order_by("-created", "-id")
        .first()
    )
    return (generation, pro) if pro else None


def outstanding_count(*, team, member, tier: str) -> int:
    """The member's images of this tier still waiting or rendering (the lane's cap counts them)."""
    return Generation.objects.filter(
        team=team, member=member, tier=tier, status__in=OUTSTANDING
    ).count()


COMPARE_MAX = 4


def compare_images(*, team, ids) -> list[Generation]:
    """Up to four finished images, in the order asked, for a side-by-side compare."""
    ids = list(dict.fromkeys(ids))[:COMPARE_MAX]
    found = {
        g.pk: g
        for g in Generation.objects.filter(team=team, pk__in=ids, status=Status.SUCCEEDED)
        .exclude(asset=None)
        .select_related("asset", "batch")
    }
    return [found[pk] for pk in ids if pk in found]


def compare_nodes(*, team, pk: int, other: int) -> tuple[Generation, Generation] | None:
    """Any two finished images of one version tree, the older first."""
    pair = list(
        Generation.objects.filter(team=team, pk__in={pk, other}, status=Status.SUCCEEDED)
        .exclude(asset=None)
        .select_related("asset")
        .order_by("created", "id")
    )
    if len(pair) != 2 or (pair[0].root_id or pair[0].pk) != (pair[1].root_id or pair[1].pk):
        return None
    return pair[0], pair[1]


def generations_for_download(*, team, ids) -> list[Generation]:
    return list(
        Generation.objects.filter(team=team, pk__in=ids, status=Status.SUCCEEDED)
        .exclude(asset=None)
        .select_related("asset", "member")
        .order_by("batch_id", "index")
    )


def generations_for_sheet(*, team, ids=(), batch_id: int | None = None) -> list[Generation]:
    """A contact sheet's images: a selection, or a grid's images left outside the archive."""
    images = Generation.objects.filter(team=team).select_related("asset", "member")
    if batch_id is not None:
        images = images.filter(batch_id=batch_id, archived=False)
    else:
        images = images.filter(pk__in=ids)
    return list(images.order_by("batch_id", "index"))


def batches_emptied(*, team, generation_ids) -> list[int]:
    """The grids among these images' that have no image left outside the archive."""
    return list(
        Batch.objects.filter(team=team, generations__pk__in=generation_ids)
        .exclude(_with_images_left())
        .values_list("pk", flat=True)
        .distinct()
    )


def generations_selected(*, team, ids) -> list[Generation]:
    return list(Generation.objects.filter(team=team, pk__in=ids).order_by("batch_id", "index"))


def batch_cache_hits(*, team, request) -> int:
    """How many images of this request the cache would serve (free), as submit decides.

    A random seed is drawn again at submit, so only a locked seed can repeat a render.
    """
    from .backends import backend_for
    from .providers import provider_named
    from .services import batch_jobs, job_fingerprints, stored_renders

    if request.fresh or not request.seed_locked:
        return 0
    backend = backend_for(team, request.tier)
    references = list(Reference.objects.filter(team=team, pk__in=request.reference_ids))
    jobs = batch_jobs(request)
    prints = job_fingerprints(
        provider=provider_named(backend.provider).name,
        model=backend.model,
        size=request.size,
        references=references,
        jobs=jobs,
    )
    stored = stored_renders(team=team, fingerprints=prints)
    return sum(1 for print_ in prints if print_ in stored)


# --- history ------------------------------------------------------------------------


SORTS = {
    "newest": ("-created", "-id"),
    "oldest": ("created", "id"),
    "starred": ("-starred", "-created", "-id"),
}


@dataclass(frozen=True)
class HistoryFilters:
    text: str = ""
    project_id: int | None = None
    sort: str = "newest"
    starred: bool = False
    tier: str = ""
    size: str = ""
    member_id: int | None = None
    status: str = ""
    since: date | None = None
    until: date | None = None
    archived: bool = False
    # Only images whose id is among these: a subquery of ids the caller builds
    # from what generation knows nothing of (the studio's client picks).
    among: object = None


def prompt_words(text: str) -> list[str]:
    """The words a search must all find, in any order ("grass golden")."""
    return list(dict.fromkeys(word.lower() for word in text.split()))[:12]


def _history_cursor_filter(queryset, sort: str, cursor):
    """Rows after the cursor in the page's order (a seek, never an OFFSET)."""
    if cursor is None:
        return queryset
    # (created, id) from a plain cursor (the API's), or (created, id, starred).
    created, pk, starred = (*cursor, None)[:3]
    if sort == "oldest":
        return queryset.filter(created__gte=created).filter(Q(created__gt=created) | Q(pk__gt=pk))
    if sort == "starred":
        starred = bool(starred)
        after = Q(starred=starred) & (Q(created__lt=created) | Q(created=created, pk__lt=pk))
        if starred:
            after |= Q(starred=False)
        return queryset.filter(after)
    return _cursor_filter(queryset, (created, pk))


def encode_history_cursor(row: Generation, sort: str) -> str:
    if sort != "starred":
        return encode_cursor(row.created, row.pk)
    raw = f"{to_micros(row.created)}.{row.pk}.{int(row.starred)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_history_cursor(value: str | None) -> tuple[datetime, int, int | None] | None:
    """(created, id, starred or None) from a cursor; a plain grid cursor works too."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        parts = raw.split(".")
        if len(parts) not in (2, 3):
            return None
        created = from_micros(parts[0])
        starred = int(parts[2]) if len(parts) == 3 else None
        return (created, int(parts[1]), starred) if created else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def history_page(*, team, filters: HistoryFilters, cursor=None) -> tuple[list[Generation], str]:
    """A page of the team's images in the chosen order, and the cursor of the next page.

    Walks the (team, -created, -id) index from the cursor: no OFFSET and no
    COUNT, so page 1,000 costs what page 1 does.

    Search: every word of the query must be in the prompt, in any order and
    any case. One case-insensitive `contains` per word, on every database:
    the index walk stops at the first page of matches, so even a word found
    in one prompt of 70,000 costs one pass over the team's rows, a few tens
    of milliseconds on SQLite, with no search index to keep in step with
    every insert (bench B7 bulk-loads 70,000 rows).
    """
    images = Generation.objects.filter(team=team, archived=filters.archived)
    for word in prompt_words(filters.text):
        images = images.filter(prompt__icontains=word)
    if filters.project_id:
        images = images.filter(batch__project_id=filters.project_id)
    if filters.starred:
        images = images.filter(starred=True)
    if filters.among is not None:
        images = images.filter(pk__in=filters.among)
    if filters.tier:
        images = images.filter(tier=filters.tier)
    if filters.size:
        images = images.filter(size=filters.size)
    if filters.member_id:
        images = images.filter(member_id=filters.member_id)
    if filters.status:
        images = images.filter(status=filters.status)
    tz = timezone.get_current_timezone()
    if filters.since:
        images = images.filter(
            created__gte=datetime.combine(filters.since, datetime.min.time(), tz)
        )
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), datetime.min.time(), tz)
        images = images.filter(created__lt=end)
    sort = filters.sort if filters.sort in SORTS else "newest"
    rows = list(
        _history_cursor_filter(images, sort, cursor)
        .select_related("member")
        .defer(*TILE_DEFERRED)
        .order_by(*SORTS[sort])[: HISTORY_PER_PAGE + 1]
    )
    more = len(rows) > HISTORY_PER_PAGE
    rows = rows[:HISTORY_PER_PAGE]
    return rows, (encode_history_cursor(rows[-1], sort) if more else "")
