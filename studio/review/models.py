"""Review links and what a client does with them.

A ReviewLink is a capability: whoever holds its token sees the images it
names (ReviewItem rows, in order) and nothing else of the team. Only the
token's sha256 is stored, like invites and API tokens. Marks, comments and
events belong to an item, so a client's pick stays put when the studio
delivers the Pro render of that image in the draft's place.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..models import Team, _hash_token

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 256 bits
COMMENT_MAX = 2000
NAME_MAX = 60
TITLE_MAX = 120
NOTE_MAX = 2000


class ReviewKind(models.TextChoices):
    REVIEW = "review", "Review"
    DELIVERY = "delivery", "Delivery"


class ReviewLinkQuerySet(models.QuerySet):
    def live(self):
        """Links whose token still opens something: not revoked, not expired, of a team
        that was not deleted."""
        return self.filter(revoked_at=None, team__deleted_at=None).filter(
            Q(expires_at=None) | Q(expires_at__gt=timezone.now())
        )


class ReviewLink(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="review_links")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    title = models.CharField(max_length=TITLE_MAX)
    note = models.TextField(blank=True, max_length=NOTE_MAX)
    token_hash = models.CharField(max_length=64, unique=True)
    # Django's make_password hash, or empty for a link without a password.
    password = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    kind = models.CharField(max_length=10, choices=ReviewKind.choices, default=ReviewKind.REVIEW)
    # Downloads of a delivery (a ZIP or one original each); empty means no limit.
    download_limit = models.PositiveIntegerField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    show_prompts = models.BooleanField(default=False)
    # The team's name drawn across each preview and thumbnail, until delivery.
    watermark = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    generations = models.ManyToManyField(
        "generation.Generation",
        through="ReviewItem",
        through_fields=("link", "generation"),
        related_name="review_links",
    )

    objects = ReviewLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_kind_display()}) for {self.team}"

    @staticmethod
    def hash_token(token: str) -> str:
        return _hash_token(token)

    @property
    def is_delivery(self) -> bool:
        return self.kind == ReviewKind.DELIVERY

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )

    @property
    def downloads_left(self) -> int | None:
        if self.download_limit is None:
            return None
        return max(0, self.download_limit - self.downloads)


class ReviewItem(models.Model):
    """One image a link names. Clients address it by `position` (1, 2, …), never
    by a team-wide id, so nothing in a review URL walks to another image."""

    link = models.ForeignKey(ReviewLink, on_delete=models.CASCADE, related_name="items")
    generation = models.ForeignKey(
        "generation.Generation", on_delete=models.CASCADE, related_name="+"
    )
    # The final delivered in the image's place (its Pro render), if any.
    final = models.ForeignKey(
        "generation.Generation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["link", "position"]
        constraints = [
            models.UniqueConstraint(fields=["link", "position"], name="one_item_per_position"),
            models.UniqueConstraint(fields=["link", "generation"], name="one_item_per_image"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} of {self.link_id}"

    @property
    def delivered(self):
        return self.final or self.generation


class Verdict(models.TextChoices):
    PICK = "pick", "Pick"
    REJECT = "reject", "Reject"


class ReviewMark(models.Model):
    """One client's verdict and rating on one image; a client changes it freely."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="marks")
    client_name = models.CharField(max_length=NAME_MAX)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "client_name"], name="one_mark_per_client"),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="rating_one_to_five",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_name}: {self.verdict or '-'} {self.rating or ''}"


class ReviewComment(models.Model):
    """Plain text (escaped wherever shown), optionally pinned to a point of the image."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="comments")
    client_name = models.CharField(max_length=NAME_MAX)
    body = models.TextField(max_length=COMMENT_MAX)
    # Fractions of the image's width and height, 0–1, both or neither.
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.client_name}: {self.body[:40]}"

    @property
    def x_percent(self) -> float:
        return round((self.x or 0) * 100, 2)

    @property
    def y_percent(self) -> float:
        return round((self.y or 0) * 100, 2)


class EventKind(models.TextChoices):
    VIEW = "view", "Viewed"
    PICK = "pick", "Picked"
    REJECT = "reject", "Rejected"
    UNMARK = "unmark", "Cleared a mark"
    RATING = "rating", "Rated"
    COMMENT = "comment", "Commented"
    DOWNLOAD = "download", "Downloaded"
    DELIVER = "deliver", "Switched to delivery"
    REOPEN = "reopen", "Switched back to review"


class ReviewEvent(models.Model):
    """The activity log of a link: append-only, shown to the studio and exported as CSV."""

    link = models.ForeignKey(ReviewLink, on_delete=models.CASCADE, related_name="events")
    item = models.ForeignKey(
        ReviewItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    client_name = models.CharField(max_length=NAME_MAX, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["link", "kind"], name="review_event_link_kind")]

    def __str__(self) -> str:
        return f"{self.kind} by {self.client_name or 'someone'} on {self.link_id}"
