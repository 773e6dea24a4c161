"""Campaigns and permutation submits: many batches from one prompt or one CSV, under one budget.

A permutation request expands (generation.permutations) into variants, and
the variants into as many batches as they fill (a batch holds one size and at
most FLASH_MAX_COUNT / PRO_MAX_COUNT images). All of them are quoted, held
and created in one transaction through the same `_create_batch` a single
grid uses, so a refused campaign leaves nothing behind and the lane tokens
go out only after the commit.

A campaign's budget is checked with its row locked (`select_for_update`):
two submits into one campaign at once are serialized, and the second sees
the first's holds. Reads for the campaign page are at the bottom.
"""

import csv
import io
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from . import catalog, lanes
from .models import OUTSTANDING, Batch, Campaign, Generation, Project, Status
from .permutations import Axes, Variant, expand, parse_list
from .requests import SEED_MAX, BatchRequest, InvalidRequest, max_count, parse_batch_request
from .services import (
    SubmitRefused,
    _check_outstanding,
    _check_still_member,
    _create_batch,
    _Job,
    _team_references,
    batch_cancel,
)

CSV_COLUMNS = ("prompt", "size", "aspect", "seed", "count")
CSV_MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class PermutationRequest:
    """A batch request whose prompt and lists stand for many variants."""

    base: BatchRequest
    template: str
    variants: tuple[Variant, ...]

    @property
    def total(self) -> int:
        return len(self.variants) * self.base.count


def _axis_lists(data, tier: str, errors: dict) -> tuple[tuple, tuple, tuple]:
    sizes = tuple(s.upper() for s in parse_list(data.get("sizes")))
    aspects = parse_list(data.get("aspects"))
    seeds = []
    for word in parse_list(data.get("seeds")):
        if not (word.isascii() and word.isdigit()) or int(word) > SEED_MAX - 1000:
            errors["seeds"] = f"“{word[:20]}” is not a seed; seeds are whole numbers from 0."
        else:
            seeds.append(int(word))
    if tier in catalog.TIERS:
        label = catalog.TIER_LABELS[tier]
        for size in sizes:
            if size not in catalog.SIZES[tier]:
                errors["sizes"] = f"{label} renders at {', '.join(catalog.SIZES[tier])}."
        for aspect in aspects:
            if aspect not in catalog.ASPECTS[tier]:
                errors["aspects"] = f"{label} does not offer the aspect ratio “{aspect[:10]}”."
    return sizes, aspects, tuple(dict.fromkeys(seeds))


def parse_permutation_request(data, reference_ids=(), *, limit: int | None = None):
    """The composer's or the API's fields as a PermutationRequest, or InvalidRequest.

    `sizes`, `aspects` and `seeds` are optional lists; when given, their first
    value stands in for the single field so the usual checks still apply.
    """
    limit = settings.PERMUTATIONS_MAX if limit is None else limit
    errors: dict[str, str] = {}
    tier = str(data.get("tier", "")).strip().lower()
    sizes, aspects, seeds = _axis_lists(data, tier, errors)
    fields = {key: data.get(key, "") for key in data}
    fields["per_line"] = ""
    if sizes:
        fields["size"] = sizes[0]
    if aspects:
        fields["aspect"] = aspects[0]
    if seeds:
        fields["seed"] = str(seeds[0])
    try:
        # The count per variant is checked against the cap, not against one grid.
        base = parse_batch_request({**fields, "count": "1"}, reference_ids)
    except InvalidRequest as invalid:
        errors = {**invalid.errors, **errors}
        base = None
    count_text = str(data.get("count", 1)).strip()
    count = int(count_text) if count_text.isascii() and count_text.isdigit() else 0
    if not 1 <= count <= max_count(tier if tier in catalog.TIERS else catalog.FLASH):
        errors["count"] = (
            f"Choose between 1 and {max_count(tier if tier in catalog.TIERS else catalog.FLASH)} "
            "images per prompt."
        )
    if errors:
        raise InvalidRequest(errors)
    template = base.prompts[0]
    axes = Axes(size=base.size, aspect=base.aspect, sizes=sizes, aspects=aspects, seeds=seeds)
    variants = expand(template, axes, count=count, limit=limit)
    base = replace(base, count=count)
    return PermutationRequest(base=base, template=template, variants=tuple(variants))


def permutation_jobs(request: PermutationRequest) -> dict[str, list[_Job]]:
    """{size: jobs}: each variant `count` times; seeds in a row unless the variant names one."""
    count, by_size = request.base.count, {}
    for number, variant in enumerate(request.variants):
        start = request.base.seed + number * count if variant.seed is None else variant.seed
        by_size.setdefault(variant.size, []).extend(
            _Job(prompt=variant.prompt, seed=start + i, aspect=variant.aspect, axes=variant.axes)
            for i in range(count)
        )
    return by_size


def _chunks(jobs: list, size: int):
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


@dataclass
class Spending:
    """What a campaign's batches have taken: captured, still held, and what is left."""

    budget: int = 0
    spent: int = 0
    held: int = 0

    @property
    def left(self) -> int:
        return max(0, self.budget - self.spent - self.held)


def campaign_spending(campaign: Campaign) -> Spending:
    """One query: credits captured by its images, and held by those not finished."""
    totals = Generation.objects.filter(batch__campaign=campaign).aggregate(
        spent=Sum("credits_charged"),
        held=Sum("credits_held", filter=Q(status__in=OUTSTANDING)),
    )
    return Spending(budget=campaign.budget, spent=totals["spent"] or 0, held=totals["held"] or 0)


def permutations_submit(
    *,
    team,
    member,
    requests: list[PermutationRequest],
    project: Project | None = None,
    campaign: Campaign | None = None,
) -> list[Batch]:
    """Every batch of one or more permutation requests, or none of them.

    Inside a campaign the member's outstanding-jobs cap does not apply: the
    campaign's budget bounds it, and the lanes' round-robin between members
    keeps a teammate's single image from waiting behind thousands.
    """
    if project is not None and (project.team_id != team.pk or project.archived):
        raise SubmitRefused("That project is not open in this team.")
    batches = []
    with transaction.atomic():
        _check_still_member(team=team, member=member)
        if campaign is not None:
            campaign = Campaign.objects.select_for_update().get(pk=campaign.pk, team=team)
            if campaign.canceled_at is not None:
                raise SubmitRefused("This campaign was canceled; start a new one.")
            before = campaign_spending(campaign)
        else:
            tiers = {}
            for request in requests:
                tiers[request.base.tier] = tiers.get(request.base.tier, 0) + request.total
            for tier, adding in tiers.items():
                _check_outstanding(team=team, member=member, tier=tier, adding=adding)
        for request in requests:
            base = request.base
            references = _team_references(team, base.reference_ids)
            for size, jobs in permutation_jobs(request).items():
                for chunk in _chunks(jobs, max_count(base.tier)):
                    batches.append(
                        _create_batch(
                            team=team,
                            member=member,
                            project=project,
                            tier=base.tier,
                            size=size,
                            aspect=chunk[0].aspect,
                            prompt=request.template,
                            base_seed=chunk[0].seed,
                            seed_locked=base.seed_locked,
                            jobs=chunk,
                            references=references,
                            fresh=base.fresh,
                            campaign=campaign,
                            send_tokens=False,
                        )
                    )
        if campaign is not None:
            quoted = sum(batch.credits_quoted for batch in batches)
            if before.spent + before.held + quoted > campaign.budget:
                # Raising rolls back every batch and hold made above.
                raise SubmitRefused(
                    f"This would take {quoted:,} credits; the campaign “{campaign.name}” has "
                    f"{before.left:,} of its {campaign.budget:,} left. Raise its budget or "
                    "submit fewer images.",
                    code="credits",
                )
        # One query for every batch's queued jobs, their tokens after the commit.
        queued: dict[str, list[int]] = {}
        for tier, pk in Generation.objects.filter(
            batch__in=batches, status=Status.QUEUED
        ).values_list("tier", "pk"):
            queued.setdefault(tier, []).append(pk)
        for tier, ids in queued.items():
            lanes.dispatch_many(tier, ids)
    return batches


# --- the campaign itself ------------------------------------------------------------


def campaign_create(*, team, member, name: str, budget) -> Campaign:
    errors = {}
    name = (name or "").strip()[:120]
    if not name:
        errors["name"] = "Give the campaign a name."
    text = str(budget if budget is not None else "").strip().replace(",", "")
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        errors["budget"] = "The budget is a whole number of credits above zero."
    if errors:
        raise InvalidRequest(errors)
    try:
        with transaction.atomic():
            return Campaign.objects.create(
                team=team, name=name, budget=int(text), created_by=member
            )
    except IntegrityError:
        raise InvalidRequest({"name": f"The team already has a campaign named “{name}”."})


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Queued jobs stay queued (and held) but the lanes skip them; running ones finish."""
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk, paused_at=None, canceled_at=None).update(paused_at=now)
    campaign.refresh_from_db(fields=["paused_at"])
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Put the campaign's queued jobs back in the lanes.

    The tokens sent while it was paused found nothing to run and are gone,
    so each queued job gets a new one (after the commit, as on submit).
    """
    with transaction.atomic():
        moved = (
            Campaign.objects.filter(pk=campaign.pk).exclude(paused_at=None).update(paused_at=None)
        )
        if moved:
            queued = Generation.objects.filter(
                batch__campaign=campaign, status=Status.QUEUED
            ).values_list("tier", "pk")
            by_tier: dict[str, list[int]] = {}
            for tier, pk in queued:
                by_tier.setdefault(tier, []).append(pk)
            for tier, ids in by_tier.items():
                lanes.dispatch(tier, ids)
    campaign.refresh_from_db(fields=["paused_at"])
    return campaign


def campaign_cancel(*, campaign: Campaign, actor=None) -> int:
    """Cancel every batch's queued images (credits released); the campaign takes no more."""
    Campaign.objects.filter(pk=campaign.pk, canceled_at=None).update(canceled_at=timezone.now())
    canceled = 0
    for batch in Batch.objects.filter(campaign=campaign, canceled_at=None).select_related("team"):
        canceled += batch_cancel(batch=batch, actor=actor)
    campaign.refresh_from_db(fields=["canceled_at"])
    return canceled


def parse_campaign_csv(data: bytes, defaults, reference_ids=()) -> list[PermutationRequest]:
    """One request per CSV row (columns prompt, size, aspect, seed, count; only prompt
    is required, the others fall back to `defaults`). Every bad row is named by
    its line number, and one bad row refuses the whole file."""
    if len(data) > CSV_MAX_BYTES:
        raise InvalidRequest({"csv": "The CSV file is larger than 2 MB; split it."})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest({"csv": "The CSV file is not UTF-8 text."})
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "prompt" not in columns:
        raise InvalidRequest({"csv": "The CSV file needs a header row with a “prompt” column."})
    unknown = [c for c in columns if c and c not in CSV_COLUMNS]
    if unknown:
        raise InvalidRequest(
            {"csv": f"Unknown column “{unknown[0]}”; the columns are {', '.join(CSV_COLUMNS)}."}
        )
    reader.fieldnames = columns
    requests, problems, total = [], [], 0
    for row in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in row.items() if k}
        if not any(values.values()):
            continue
        fields = dict(defaults)
        fields.update({k: v for k, v in values.items() if v})
        if values.get("seed"):
            fields["seed_mode"] = "locked"
        try:
            request = parse_permutation_request(fields, reference_ids)
        except InvalidRequest as invalid:
            problems.append(f"Line {line}: {'; '.join(invalid.errors.values())}")
            continue
        requests.append(request)
        total += request.total
    if problems:
        raise InvalidRequest({"csv": " ".join(problems[:20])})
    if not requests:
        raise InvalidRequest({"csv": "The CSV file has no prompts."})
    if total > settings.PERMUTATIONS_MAX:
        raise InvalidRequest(
            {
                "csv": f"The file makes {total:,} images; the limit is "
                f"{settings.PERMUTATIONS_MAX:,}."
            }  # fmt: skip
        )
    return requests


# --- reads --------------------------------------------------------------------------


@dataclass
class Progress:
    campaign: Campaign
    spending: Spending
    total: int = 0
    done: int = 0
    failed: int = 0
    canceled: int = 0
    queued: int = 0
    running: int = 0
    batches: int = 0
    batch_ids: list[int] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.campaign.canceled_at:
            return "canceled"
        if self.campaign.paused_at:
            return "paused"
        return "finished" if self.total and not (self.queued + self.running) else "active"


def campaign_progress(campaign: Campaign) -> Progress:
    """Done/total and credits across every batch of the campaign: two queries."""
    counts = dict(
        Generation.objects.filter(batch__campaign=campaign)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    batch_ids = list(
        Batch.objects.filter(campaign=campaign)
        .order_by("created", "id")
        .values_list("pk", flat=True)
    )
    return Progress(
        campaign=campaign,
        spending=campaign_spending(campaign),
        total=sum(counts.values()),
        done=counts.get(Status.SUCCEEDED, 0),
        failed=counts.get(Status.FAILED, 0) + counts.get(Status.BLOCKED, 0),
        canceled=counts.get(Status.CANCELED, 0),
        queued=counts.get(Status.QUEUED, 0),
        running=counts.get(Status.RUNNING, 0),
        batches=len(batch_ids),
        batch_ids=batch_ids,
    )


def campaigns_for_team(team) -> list[Campaign]:
    return list(
        Campaign.objects.filter(team=team).annotate(
            images=Count("batches__generations"),
            done=Count(
                "batches__generations",
                filter=Q(batches__generations__status=Status.SUCCEEDED),
            ),
        )
    )


CAMPAIGN_GRIDS_SHOWN = 12


def campaign_grids(*, team, campaign: Campaign, limit: int = CAMPAIGN_GRIDS_SHOWN):
    """The campaign's newest grids with their tiles, in the project page's constant queries."""
    from .selectors import _grids

    batches = list(
        Batch.objects.filter(team=team, campaign=campaign).select_related("member")[:limit]
    )
    return _grids(team, batches) if batches else []
