"""Writes for client review: make a link, revoke it, deliver it, and what a client does.

Who may share: owners and admins. A review link puts the team's work in
front of people outside it, so it is the same call as inviting someone;
members draft, and ask an owner or admin to share.
"""

import secrets
from datetime import datetime

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from generation.models import Generation, Status, Tier

from ..models import MANAGER_ROLES, Membership
from .models import (
    COMMENT_MAX,
    NAME_MAX,
    NOTE_MAX,
    TITLE_MAX,
    TOKEN_BYTES,
    EventKind,
    ReviewComment,
    ReviewEvent,
    ReviewItem,
    ReviewKind,
    ReviewLink,
    ReviewMark,
    Verdict,
)

MAX_IMAGES = 500
PASSWORD_MAX = 128


class ReviewRefused(Exception):
    """A request that changes nothing; the message says why, `status` how to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _one_line(text: str, limit: int) -> str:
    return " ".join((text or "").split())[:limit]


def review_link_create(
    *,
    team,
    created_by,
    title: str,
    generation_ids,
    note: str = "",
    password: str = "",
    expires_at: datetime | None = None,
    kind: str = ReviewKind.REVIEW,
    download_limit: int | None = None,
    show_prompts: bool = False,
    watermark: bool = False,
) -> tuple[ReviewLink, str]:
    """Make a link naming these finished images of `team`; return it and its token.

    The token is shown once and never stored: only its sha256 is.
    """
    role = Membership.objects.filter(team=team, user=created_by).values_list("role", flat=True)
    if not role or role[0] not in MANAGER_ROLES:
        raise ReviewRefused("Only the team's owners and admins can share images.", status=403)
    title = _one_line(title, TITLE_MAX)
    if not title:
        raise ReviewRefused("Give the link a title the client will recognise.")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReviewRefused(f"Keep the note under {NOTE_MAX:,} characters.")
    if len(password or "") > PASSWORD_MAX:
        raise ReviewRefused(f"Keep the password under {PASSWORD_MAX} characters.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ReviewRefused("Choose an expiry in the future, or none.")
    if kind not in ReviewKind.values:
        raise ReviewRefused("A link is a review or a delivery.")
    if download_limit is not None and download_limit < 1:
        raise ReviewRefused("A download limit is at least 1, or none.")
    ids = list(dict.fromkeys(generation_ids))[: MAX_IMAGES + 1]
    if len(ids) > MAX_IMAGES:
        raise ReviewRefused(f"Share at most {MAX_IMAGES} images in one link.")
    found = {
        g.pk: g
        for g in Generation.objects.filter(
            team=team, pk__in=ids, status=Status.SUCCEEDED, archived=False
        ).exclude(asset=None)
    }
    ordered = [pk for pk in ids if pk in found]
    if not ordered:
        raise ReviewRefused("Choose finished images to share.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        link = ReviewLink.objects.create(
            team=team,
            created_by=created_by,
            title=title,
            note=note,
            token_hash=ReviewLink.hash_token(token),
            password=make_password(password) if password else "",
            expires_at=expires_at,
            kind=kind,
            download_limit=download_limit,
            show_prompts=show_prompts,
            watermark=watermark,
        )
        ReviewItem.objects.bulk_create(
            ReviewItem(link=link, generation_id=pk, position=n)
            for n, pk in enumerate(ordered, start=1)
        )
    return link, token


def review_link_revoke(*, link: ReviewLink) -> bool:
    """End the link's access at once: every view checks `revoked_at` on every request."""
    moved = ReviewLink.objects.filter(pk=link.pk, revoked_at=None).update(revoked_at=timezone.now())
    link.refresh_from_db(fields=["revoked_at"])
    return bool(moved)


def review_link_deliver(*, link: ReviewLink, download_limit: int | None = None, actor=None) -> int:
    """Switch the link to a delivery of the finals; return how many Pro renders it delivers.

    Each draft whose promotion has finished is delivered as its newest Pro
    render, in the draft's place (its marks and comments stay with it).
    Running it again picks up promotions that finished since.
    """
    if download_limit is not None and download_limit < 1:
        raise ReviewRefused("A download limit is at least 1, or none.")
    if not link.is_live:
        raise ReviewRefused("This link is revoked or expired; share the images again.")
    items = list(link.items.select_related("generation"))
    drafts = [i.generation_id for i in items if i.generation.tier == Tier.FLASH]
    newest = {}
    for pro in (
        Generation.objects.filter(
            team=link.team_id, parent_id__in=drafts, tier=Tier.PRO, status=Status.SUCCEEDED
        )
        .exclude(asset=None)
        .order_by("created", "id")
    ):
        newest[pro.parent_id] = pro.pk  # later rows win: the newest render
    with transaction.atomic():
        for item in items:
            final = newest.get(item.generation_id)
            if final and item.final_id != final:
                ReviewItem.objects.filter(pk=item.pk).update(final_id=final)
        ReviewLink.objects.filter(pk=link.pk).update(
            kind=ReviewKind.DELIVERY, download_limit=download_limit
        )
        if not link.is_delivery:
            _record(link, EventKind.DELIVER, "", detail=_by(actor))
    link.refresh_from_db()
    return len(newest)


def review_link_reopen(*, link: ReviewLink, actor=None) -> bool:
    """Switch a delivery back to a review: previews again, originals 404 again.

    The finals found at delivery stay recorded on the items (a later delivery
    finds them again), but a review shows each draft, as it did before.
    The download count is kept: it is the link's history, not a budget to refill.
    """
    if not link.is_live:
        raise ReviewRefused("This link is revoked or expired; share the images again.")
    with transaction.atomic():
        moved = ReviewLink.objects.filter(pk=link.pk, kind=ReviewKind.DELIVERY).update(
            kind=ReviewKind.REVIEW
        )
        if moved:
            _record(link, EventKind.REOPEN, "", detail=_by(actor))
    link.refresh_from_db(fields=["kind"])
    return bool(moved)


def _by(actor) -> str:
    return f"by {actor.get_username()}" if actor is not None else ""


def review_password_matches(*, link: ReviewLink, password: str) -> bool:
    return bool(link.password) and check_password(password[:PASSWORD_MAX], link.password)


def review_client_name(name: str) -> str:
    name = _one_line(name, NAME_MAX)
    if not name:
        raise ReviewRefused("Tell the studio who you are: type your name.")
    return name


def _record(link, kind, client_name, item=None, detail="") -> None:
    ReviewEvent.objects.create(
        link=link, item=item, kind=kind, client_name=client_name, detail=detail[:200]
    )


def review_view_record(*, link: ReviewLink, client_name: str = "") -> None:
    _record(link, EventKind.VIEW, client_name)


def review_mark_set(
    *, item: ReviewItem, client_name: str, verdict: str | None = None, rating: str | None = None
) -> ReviewMark:
    """Set this client's verdict (pick, reject, or "" to clear) and/or rating (1–5, or "")."""
    changes = {}
    if verdict is not None:
        if verdict not in ("", *Verdict.values):
            raise ReviewRefused("Pick or reject the image.")
        changes["verdict"] = verdict
    if rating is not None:
        if rating == "":
            changes["rating"] = None
        else:
            try:
                value = int(rating)
            except ValueError:
                raise ReviewRefused("Rate the image from 1 to 5 stars.")
            if not 1 <= value <= 5:
                raise ReviewRefused("Rate the image from 1 to 5 stars.")
            changes["rating"] = value
    if not changes:
        raise ReviewRefused("Pick, reject or rate the image.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                mark, _ = ReviewMark.objects.update_or_create(
                    item=item,
                    client_name=client_name,
                    defaults={**changes, "updated": timezone.now()},
                )
        except IntegrityError:  # the same client marking twice at the same moment
            ReviewMark.objects.filter(item=item, client_name=client_name).update(
                **changes, updated=timezone.now()
            )
            mark = ReviewMark.objects.get(item=item, client_name=client_name)
        if "verdict" in changes:
            kind = {"pick": EventKind.PICK, "reject": EventKind.REJECT}.get(
                changes["verdict"], EventKind.UNMARK
            )
            _record(item.link, kind, client_name, item, f"image {item.position}")
        if "rating" in changes:
            stars = changes["rating"]
            detail = f"image {item.position}: {stars} stars" if stars else f"image {item.position}"
            _record(item.link, EventKind.RATING, client_name, item, detail)
    return mark


def _fraction(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReviewRefused("A pin is a point on the image.")
    if not 0.0 <= number <= 1.0:  # also refuses NaN
        raise ReviewRefused("A pin is a point on the image.")
    return number


def review_comment_add(
    *, item: ReviewItem, client_name: str, body: str, x=None, y=None
) -> ReviewComment:
    body = (body or "").strip()
    if not body:
        raise ReviewRefused("Write a comment first.")
    if len(body) > COMMENT_MAX:
        raise ReviewRefused(
            f"Comments are at most {COMMENT_MAX:,} characters; this one has {len(body):,}."
        )
    x, y = _fraction(x), _fraction(y)
    if (x is None) != (y is None):
        raise ReviewRefused("A pin is a point on the image.")
    with transaction.atomic():
        comment = ReviewComment.objects.create(
            item=item, client_name=client_name, body=body, x=x, y=y
        )
        _record(item.link, EventKind.COMMENT, client_name, item, f"image {item.position}")
    return comment


def review_download_claim(
    *, link: ReviewLink, client_name: str, item: ReviewItem | None = None
) -> None:
    """Count one download of a delivery, or refuse one past its limit.

    One conditional UPDATE: two clients downloading the last allowed copy at
    the same moment cannot both get it.
    """
    live = ReviewLink.objects.live().filter(pk=link.pk, kind=ReviewKind.DELIVERY)
    # Only the link's own columns in this WHERE: a condition through a join
    # becomes `id IN (subquery)`, which PostgreSQL does not re-check against a
    # row a concurrent claim just changed, so every racer would get through.
    # (The team's deletion was checked when the token was looked up.)
    claimable = (
        ReviewLink.objects.filter(pk=link.pk, kind=ReviewKind.DELIVERY, revoked_at=None)
        .filter(Q(expires_at=None) | Q(expires_at__gt=timezone.now()))
        .filter(Q(download_limit=None) | Q(downloads__lt=F("download_limit")))
    )
    with transaction.atomic():
        claimed = claimable.update(downloads=F("downloads") + 1)
        if claimed != 1:
            if not live.exists():
                raise ReviewRefused("This link does not offer downloads.", status=404)
            raise ReviewRefused(
                "This delivery's download limit is reached. Ask the studio for another link.",
                status=403,
            )
        detail = f"image {item.position}" if item else "all images (ZIP)"
        _record(link, EventKind.DOWNLOAD, client_name, item, detail)
