"""Reads for client review: find a live link by its token, and what each page shows."""

from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce

from generation.models import Generation, Status

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
