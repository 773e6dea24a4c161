"""Batches, generations, stored assets and reference images.

A Batch is one submission; each of its Generations is one image job that a
lane worker renders. An Asset is a stored image (original PNG, WebP
thumbnail and preview). A Reference is an uploaded image kept once per team
by content hash.

Generations copy the request fields they need (tier, size, aspect, prompt,
seed) so a lane worker, the gallery and the history search read one row.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from studio.models import Team

from . import catalog


class Tier(models.TextChoices):
    FLASH = catalog.FLASH, "Flash"
    PRO = catalog.PRO, "Pro"


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"
    CANCELED = "canceled", "Canceled"


class Lane(models.TextChoices):
    """How a batch is rendered: by the interactive lanes (Flash and Pro
    workers, results in seconds) or through the provider's batch endpoint
    (lower price, results within hours)."""

    INTERACTIVE = "interactive", "Interactive"
    BATCH = "batch", "Batch (half price, may take hours)"


FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.BLOCKED, Status.CANCELED)
OUTSTANDING = (Status.QUEUED, Status.RUNNING)


class Project(models.Model):
    """A board: where a team keeps the grids of one piece of work."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=120)
    archived = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["archived", "-created"]

    def __str__(self) -> str:
        return self.name


def _team_path(instance, filename: str) -> str:
    return f"teams/{instance.team_id}/{filename}"


class Reference(models.Model):
    """An uploaded reference image, stored once per team by content hash."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="references")
    name = models.CharField(max_length=120)
    sha256 = models.CharField(max_length=64)
    image = models.FileField(upload_to=_team_path, max_length=300)
    mime_type = models.CharField(max_length=40, default="image/png")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "sha256"], name="one_reference_per_hash")
        ]

    def __str__(self) -> str:
        return self.name


class Asset(models.Model):
    """A stored image and its two WebP renditions."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="assets")
    sha256 = models.CharField(max_length=64)
    original = models.FileField(upload_to=_team_path, max_length=300)
    thumbnail = models.FileField(upload_to=_team_path, max_length=300)
    preview = models.FileField(upload_to=_team_path, max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "sha256"], name="one_asset_per_hash")
        ]

    def __str__(self) -> str:
        return f"{self.width}×{self.height} {self.sha256[:10]}"


class Campaign(models.Model):
    """Many batches under one budget: the permutations and imported prompts of one
    piece of work. Pausing keeps its queued jobs queued but out of the lanes."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    budget = models.PositiveIntegerField(help_text="Credits its batches may hold and spend")
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    paused_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="one_campaign_name_per_team")
        ]

    def __str__(self) -> str:
        return self.name


class Kind(models.TextChoices):
    """What a batch makes, and so what each of its images is to its source."""

    DRAFT = "draft", "Draft"
    PROMOTION = "promotion", "Pro render"
    EDIT = "edit", "Edit"
    VARIATION = "variation", "Variation"


class Batch(models.Model):
    """One submission: a draft grid, a promotion to Pro, or edits or variations of one image."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="batches")
    project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="batches"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches"
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="batches"
    )
    tier = models.CharField(max_length=8, choices=Tier.choices)
    size = models.CharField(max_length=4)
    aspect = models.CharField(max_length=5)
    prompt = models.TextField()
    base_seed = models.BigIntegerField()
    seed_locked = models.BooleanField(default=False)
    count = models.PositiveSmallIntegerField()
    per_line = models.BooleanField(default=False)
    fresh = models.BooleanField(default=False, help_text="Bypass the cache")
    is_promotion = models.BooleanField(default=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DRAFT)
    # The image that edits and variations start from (promotions name theirs per image).
    source = models.ForeignKey(
        "Generation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Variations: "subtle" keeps the composition, "strong" only the idea.
    strength = models.CharField(max_length=8, blank=True)
    # Edits: the instructions, one per line (each image keeps its own too).
    instruction = models.TextField(blank=True)
    # A region edit's mask (generation.imaging.clean_mask: a black-and-white PNG the
    # size of the source, white = change), kept by content hash like a reference.
    # A retry reads it from here, and its hash is part of every image's fingerprint.
    mask = models.FileField(upload_to=_team_path, max_length=300, blank=True)
    mask_sha256 = models.CharField(max_length=64, blank=True)
    lane = models.CharField(max_length=12, choices=Lane.choices, default=Lane.INTERACTIVE)
    references = models.ManyToManyField(Reference, blank=True, related_name="batches")
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=80)
    # The billing hold that pays for this batch; billing knows it only by its key.
    hold_id = models.BigIntegerField(null=True, blank=True)
    credits_quoted = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["project", "-created"], name="batch_project_recent")]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} {self.size} × {self.count}: {self.prompt[:40]}"

    @property
    def hold_key(self) -> str:
        return f"batch:{self.pk}"


class ProviderBatchJob(models.Model):
    """One job on a provider's batch endpoint: the batch-lane images of one
    provider and model, sent together and collected by the scheduler."""

    class State(models.TextChoices):
        SUBMITTING = "submitting", "Submitting"
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=80)
    # The provider's name for it (Gemini: batches/…); blank until submitted.
    name = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.SUBMITTING)
    created = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["state"], name="provider_job_state")]

    def __str__(self) -> str:
        return f"{self.provider} {self.model} {self.name or '(unsent)'} {self.state}"

    @property
    def is_open(self) -> bool:
        return self.state in (self.State.SUBMITTING, self.State.PENDING, self.State.RUNNING)


class Generation(models.Model):
    """One image job and, once done, its image."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="generations")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="generations")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generations"
    )
    index = models.PositiveSmallIntegerField()
    tier = models.CharField(max_length=8, choices=Tier.choices)
    size = models.CharField(max_length=4)
    aspect = models.CharField(max_length=5)
    prompt = models.TextField()
    seed = models.BigIntegerField()
    # The image this one was made from, and how (the edges of the version tree):
    # a Pro render of a draft, an edit with its instruction, or a variation.
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    edge = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DRAFT)
    # The first image of the version tree this one belongs to (null for that
    # image itself), so a whole tree is read in one query.
    root = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    instruction = models.TextField(blank=True)
    # How many edits in a row led here: a chain of edits is one conversation,
    # and its length is capped (EDIT_CHAIN_MAX_TURNS).
    chain_turns = models.PositiveSmallIntegerField(default=0)
    # Gemini's thoughtSignature of the image part it answered with: the next
    # edit in the chain sends it back with the image, as the model expects.
    thought_signature = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, db_index=True)
    # The value this image took on each axis of a permutation ({"choice 1": "red",
    # "aspect": "4:5"}); empty for a plain prompt. Grids draw a table from it.
    axes = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)  # retry backoff
    dispatched_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=80)
    # Copied from the batch: batch-lane images never reach the interactive lanes.
    lane = models.CharField(max_length=12, choices=Lane.choices, default=Lane.INTERACTIVE)
    # The batch lane: the provider batch job this image was sent in.
    provider_job = models.ForeignKey(
        ProviderBatchJob,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="generations",
    )
    error = models.TextField(blank=True)
    cached = models.BooleanField(default=False)
    credits_held = models.PositiveIntegerField(default=0)
    credits_charged = models.PositiveIntegerField(default=0)
    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, null=True, blank=True, related_name="generations"
    )
    usage = models.JSONField(default=dict, blank=True)

    starred = models.BooleanField(default=False)
    # Culling marks: a rejected image leaves the default grid view but stays
    # one key away (undo, "show rejected"); archiving is the heavier move.
    rejected = models.BooleanField(default=False)
    rating = models.PositiveSmallIntegerField(default=0, help_text="0 unrated, 1–5 stars")
    archived = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change a polling grid must see.
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["batch_id", "index"]
        indexes = [
            # The lane picks the next job among queued ones.
            models.Index(
                fields=["tier", "member", "created"],
                name="gen_lane_queue",
                condition=Q(status="queued"),
            ),
            # History and search, newest first, per team.
            models.Index(fields=["team", "-created", "-id"], name="gen_team_recent"),
            models.Index(fields=["batch", "changed_at"], name="gen_batch_changes"),
            models.Index(fields=["status", "lease_until"], name="gen_leases"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.tier} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class LaneTurn(models.Model):
    """When a member's job last started in a lane: the lane serves the member
    who waited longest first (round-robin between members)."""

    lane = models.CharField(max_length=8, choices=Tier.choices)
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_started = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lane", "member"], name="one_turn_per_lane_member")
        ]

    def __str__(self) -> str:
        return f"{self.lane}: {self.member_id} at {self.last_started}"


class TeamBackend(models.Model):
    """Which provider and model render a tier for one team (owners choose,
    among the backends the site enables; see generation.backends)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="backends")
    tier = models.CharField(max_length=8, choices=Tier.choices)
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=80)
    updated = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "tier"], name="one_backend_per_team_tier")
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.tier} on {self.provider} {self.model}"
