"""Reads for client review: find a live link by its token, and what each page shows."""

from dataclasses import dataclass, field

from django.db.models import Count, Max, OuterRef, Prefetch, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.models import Generation, Status, Tier

from .models import (
    EventKind,
    ReviewComment,
    ReviewEvent,
    ReviewItem,
    ReviewLink,
    ReviewMark,
    Verdict,
)

TOKEN_MAX = 100


def review_link_find(token: str) -> ReviewLink | None:
    """The live link this token opens, or None for a guessed, revoked or expired one."""
    if not token or len(token) > TOKEN_MAX:
        return None
    return (
        ReviewLink.objects.live()
        .select_related("team")
        .filter(token_hash=ReviewLink.hash_token(token))
        .first()
    )


def review_item(*, link: ReviewLink, position: int) -> ReviewItem | None:
    """One image of the link, by its place in the link; None if the link does not name it."""
    return (
        ReviewItem.objects.filter(link=link, position=position)
        .select_related("generation__asset", "final__asset")
        .first()
    )


def review_source_ids(*, team, ids=(), batch_id=None, project_id=None) -> list[int]:
    """The images a new link will name: a selection, a whole grid, or a whole project."""
    images = Generation.objects.filter(team=team, status=Status.SUCCEEDED, archived=False)
    if batch_id:
        images = images.filter(batch_id=batch_id)
    elif project_id:
        images = images.filter(batch__project_id=project_id)
    elif ids:
        order = {pk: n for n, pk in enumerate(ids)}
        found = images.filter(pk__in=ids).values_list("pk", flat=True)
        return sorted(found, key=order.__getitem__)
    else:
        return []
    return list(images.order_by("batch__created", "batch_id", "index").values_list("pk", flat=True))


@dataclass
class ClientTile:
    item: ReviewItem
    shown: Generation
    verdict: str = ""
    rating: int | None = None
    comments: int = 0


def review_client_tiles(*, link: ReviewLink, client_name: str) -> list[ClientTile]:
    """The client's grid: every image of the link with this client's own marks (3 queries)."""
    items = list(
        link.items.select_related("generation__asset", "final__asset").annotate(
            comment_count=Count("comments")
        )
    )
    marks = {
        m.item_id: m for m in ReviewMark.objects.filter(item__link=link, client_name=client_name)
    }
    tiles = []
    for item in items:
        mark = marks.get(item.pk)
        tiles.append(
            ClientTile(
                item=item,
                # The final once delivered, the draft until then.
                shown=item.delivered if link.is_delivery else item.generation,
                verdict=mark.verdict if mark else "",
                rating=mark.rating if mark else None,
                comments=item.comment_count,
            )
        )
    return tiles


def review_mark_of(*, item: ReviewItem, client_name: str) -> ReviewMark | None:
    return ReviewMark.objects.filter(item=item, client_name=client_name).first()


def _count(kind_filter):
    return Coalesce(
        Subquery(
            ReviewEvent.objects.filter(link=OuterRef("pk"))
            .filter(kind_filter)
            .values("link")
            .annotate(n=Count("id"))
            .values("n")[:1]
        ),
        0,
    )


def review_links_for_team(team) -> list[ReviewLink]:
    """Every link of the team, newest first, with its activity counted (one query)."""
    picks = (
        ReviewMark.objects.filter(item__link=OuterRef("pk"), verdict=Verdict.PICK)
        .values("item__link")
        .annotate(n=Count("id"))
        .values("n")[:1]
    )
    comments = (
        ReviewComment.objects.filter(item__link=OuterRef("pk"))
        .values("item__link")
        .annotate(n=Count("id"))
        .values("n")[:1]
    )
    images = (
        ReviewItem.objects.filter(link=OuterRef("pk"))
        .values("link")
        .annotate(n=Count("id"))
        .values("n")[:1]
    )
    return list(
        ReviewLink.objects.filter(team=team)
        .select_related("created_by")
        .annotate(
            view_count=_count(Q(kind=EventKind.VIEW)),
            download_count=_count(Q(kind=EventKind.DOWNLOAD)),
            pick_count=Coalesce(Subquery(picks), 0),
            comment_count=Coalesce(Subquery(comments), 0),
            image_count=Coalesce(Subquery(images), 0),
        )
        .order_by("-created", "-id")
    )


@dataclass
class StudioTile:
    item: ReviewItem
    marks: list[ReviewMark] = field(default_factory=list)
    comments: list[ReviewComment] = field(default_factory=list)

    @property
    def picked_by(self) -> list[str]:
        return [m.client_name for m in self.marks if m.verdict == Verdict.PICK]

    @property
    def rejected_by(self) -> list[str]:
        return [m.client_name for m in self.marks if m.verdict == Verdict.REJECT]


@dataclass
class LinkDetail:
    link: ReviewLink
    tiles: list[StudioTile]
    events: list[ReviewEvent]  # the newest EVENTS_SHOWN
    views: int

    @property
    def picked_ids(self) -> list[int]:
        """The drafts clients picked: what "promote client picks" sends to Pro."""
        return [t.item.generation_id for t in self.tiles if t.picked_by]


EVENTS_SHOWN = 200


def review_link_detail(*, team, pk: int, picks_only: bool = False) -> LinkDetail | None:
    """The studio's page of one link: its images with every client's marks and comments."""
    link = ReviewLink.objects.filter(team=team, pk=pk).select_related("created_by").first()
    if link is None:
        return None
    items = list(
        link.items.select_related("generation", "final").prefetch_related(
            Prefetch("marks", queryset=ReviewMark.objects.order_by("client_name")),
            Prefetch("comments", queryset=ReviewComment.objects.order_by("created", "id")),
        )
    )
    tiles = [StudioTile(i, list(i.marks.all()), list(i.comments.all())) for i in items]
    if picks_only:
        tiles = [t for t in tiles if t.picked_by]
    events = list(link.events.select_related("item")[:EVENTS_SHOWN])
    views = link.events.filter(kind=EventKind.VIEW).count()
    return LinkDetail(link=link, tiles=tiles, events=events, views=views)


def review_activity_rows(link: ReviewLink):
    """Every event of the link, oldest first, for the CSV export."""
    return link.events.select_related("item").order_by("created", "id").iterator()


# --- the clients' marks in the studio's own grid ------------------------------------------


@dataclass
class ClientMarks:
    """What the team's clients did with one image, over every review link that names it."""

    picks: int = 0
    rejects: int = 0
    rating_total: int = 0
    ratings: int = 0
    comments: int = 0

    @property
    def rating(self) -> float | None:
        """The clients' mean rating, to one decimal (4, 4.5), or None when nobody rated."""
        if not self.ratings:
            return None
        mean = round(self.rating_total / self.ratings, 1)
        return int(mean) if mean == int(mean) else mean

    @property
    def version(self) -> str:
        # Part of the tile's data-version: a poll swaps the tile only when this moved.
        return f"{self.picks}.{self.rejects}.{self.rating_total}.{self.ratings}.{self.comments}"

    @property
    def summary(self) -> str:
        parts = []
        if self.picks:
            parts.append(f"picked by {self.picks} client{'s' if self.picks > 1 else ''}")
        if self.rejects:
            parts.append(f"rejected by {self.rejects}")
        if self.ratings:
            parts.append(f"rated {self.rating} of 5")
        if self.comments:
            parts.append(f"{self.comments} comment{'s' if self.comments > 1 else ''}")
        return "Clients: " + ", ".join(parts) if parts else ""

    def __bool__(self) -> bool:
        return bool(self.picks or self.rejects or self.ratings or self.comments)


def client_marks_of(*, team, generation_ids, since=None) -> tuple[dict, set, set]:
    """The clients' marks on these images of `team`.

    Returns ({generation id: ClientMarks} for the images someone marked or
    commented on, the ids of those still on a live link — a client may mark
    them any moment, so their grid keeps asking — and the ids whose marks or
    comments changed after `since`).

    One plain query when none of the images is on a link (every grid poll
    asks, so that case stays cheap: bench B6), and one grouped count each
    for marks and comments when some are.
    """
    ids = list(generation_ids)
    if not ids:
        return {}, set(), set()
    now = timezone.now()
    items = (
        ReviewItem.objects.filter(link__team=team, generation_id__in=ids)
        .order_by()
        .values_list("pk", "generation_id", "link__revoked_at", "link__expires_at")
    )
    image_of, live = {}, set()
    for item, generation_id, revoked_at, expires_at in items:
        image_of[item] = generation_id
        if revoked_at is None and (expires_at is None or expires_at > now):
            live.add(generation_id)
    if not image_of:
        return {}, set(), set()
    marks = (
        ReviewMark.objects.filter(item_id__in=image_of)
        .values("item_id")
        .order_by()
        .annotate(
            picks=Count("id", filter=Q(verdict=Verdict.PICK)),
            rejects=Count("id", filter=Q(verdict=Verdict.REJECT)),
            rating_total=Coalesce(Sum("rating"), 0),
            ratings=Count("rating"),
            at=Max("updated"),
        )
    )
    comments = (
        ReviewComment.objects.filter(item_id__in=image_of)
        .values("item_id")
        .order_by()
        .annotate(n=Count("id"), at=Max("created"))
    )
    by_image: dict[int, ClientMarks] = {}
    changed = set()
    for row in marks:
        pk = image_of[row["item_id"]]
        tally = by_image.setdefault(pk, ClientMarks())
        tally.picks += row["picks"]
        tally.rejects += row["rejects"]
        tally.rating_total += row["rating_total"]
        tally.ratings += row["ratings"]
        if since is not None and row["at"] and row["at"] > since:
            changed.add(pk)
    for row in comments:
        pk = image_of[row["item_id"]]
        by_image.setdefault(pk, ClientMarks()).comments += row["n"]
        if since is not None and row["at"] > since:
            changed.add(pk)
    return {pk: t for pk, t in by_image.items() if t}, live, changed


def client_marks_attach(*, team, generations) -> set[int]:
    """Set `client_marks` on each image, None where no client marked it (see client_marks_of).

    Returns the ids of the batches that have an image on a live review link:
    a finished grid among them keeps polling, slowly, for the clients' marks.
    """
    generations = list(generations)
    tallies, live, _ = client_marks_of(team=team, generation_ids=[g.pk for g in generations])
    watched = set()
    for generation in generations:
        generation.client_marks = tallies.get(generation.pk)
        if generation.pk in live:
            watched.add(generation.batch_id)
    return watched


def client_marks_on_grids(*, team, grids) -> None:
    """Attach the clients' marks to every tile of these grids at once, and say which
    grids stay watched for more (one query for the whole page)."""
    watched = client_marks_attach(team=team, generations=[t for g in grids for t in g.tiles])
    for grid in grids:
        grid.watched = grid.batch.pk in watched


def client_picked_ids(*, team, link_id: int | None = None):
    """The ids of the team's images a client picked (on one link, or on any): a subquery."""
    items = ReviewItem.objects.filter(link__team=team, marks__verdict=Verdict.PICK)
    if link_id is not None:
        items = items.filter(link_id=link_id)
    return items.values("generation_id")


def image_comments(*, team, generation_id: int) -> list[ReviewComment]:
    """Every client comment on this image, over all the team's links, oldest first."""
    return list(
        ReviewComment.objects.filter(item__link__team=team, item__generation_id=generation_id)
        .select_related("item__link")
        .order_by("created", "id")
    )


def client_picks_to_promote(*, team, link_id: int | None = None) -> list[int]:
    """The client-picked images that can go to Pro: finished Flash drafts still in their grids."""
    return list(
        Generation.objects.filter(
            team=team,
            pk__in=client_picked_ids(team=team, link_id=link_id),
            tier=Tier.FLASH,
            status=Status.SUCCEEDED,
            archived=False,
        )
        .order_by("batch_id", "index")
        .values_list("pk", flat=True)
    )
