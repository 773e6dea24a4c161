"""Writes for generation: submit a batch, promote drafts, edit and vary images, cancel, star,
archive, upload references.

Submitting is one transaction: validate, quote, hold the credits, create the
batch and its jobs. The lane tokens go to the broker only after it commits,
so a refused or rolled-back request leaves nothing behind.

Canceling, archiving and renaming take the acting person (`actor`): a plain
member changes only what is theirs (their batches and images, the projects
they made), owners and admins anything of the team. Without an actor the
site itself acts (removing a member, scripts, tests).
"""

import hashlib
import json
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from billing.services import Refusal, hold_place, hold_release, usage_record_cached

from . import catalog, lanes, model_catalog
from .backends import backend_for
from .imaging import CleanMask, clean_upload
from .models import OUTSTANDING, Batch, Generation, Kind, Lane, Project, Reference, Status
from .providers import provider_named
from .requests import (
    SEED_MAX,
    STRENGTHS,
    BatchRequest,
    InvalidRequest,
    max_count,
    parse_id,
    parse_ids,
    parse_instructions,
    parse_mask,
)
from .selectors import edit_chain
from .storage import mask_store, reference_store


@dataclass
class SubmitRefused(Exception):
    """A submit that was not made. `code`: invalid (400), credits (402), busy (429)."""

    message: str
    code: str = "invalid"
    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def fingerprint(
    *,
    provider: str,
    model: str,
    prompt: str,
    seed: int,
    size: str,
    aspect: str,
    reference_hashes: list[str],
    parent_hash: str = "",
    instructions: tuple[str, ...] = (),
    strength: str = "",
    mask_hash: str = "",
) -> str:
    """Identity of a render request: identical ones can reuse the stored image.

    An edit is identified by its source image (parent_hash) and the chain's
    instructions up to and including its own, a region edit by its mask too;
    a variation by its strength. Drafts and promotions leave them out, so their
    fingerprints (and those of unmasked edits) keep the meaning they had before.
    """
    material = [provider, model, prompt, seed, size, aspect, sorted(reference_hashes), parent_hash]
    if instructions or strength:
        material += [list(instructions), strength]
    if mask_hash:
        material.append({"mask": mask_hash})
    material = json.dumps(material, ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class _Job:
    prompt: str
    seed: int
    aspect: str
    parent: Generation | None = None
    axes: dict | None = None  # a permutation's axis values (generation.permutations)
    edge: str = Kind.DRAFT
    instruction: str = ""
    # The chain's instructions before this one (edits), for the fingerprint.
    earlier_instructions: tuple[str, ...] = ()
    chain_turns: int = 0
    strength: str = ""


def batch_jobs(request: BatchRequest) -> list[_Job]:
    """The images a batch request makes: each prompt `count` times, seeds in a row."""
    return [
        _Job(prompt=prompt, seed=request.seed + p * request.count + i, aspect=request.aspect)
        for p, prompt in enumerate(request.prompts)
        for i in range(request.count)
    ]


def job_fingerprints(
    *, provider: str, model: str, size: str, references, jobs, mask_hash: str = ""
) -> list[str]:
    reference_hashes = [r.sha256 for r in references]
    return [
        fingerprint(
            provider=provider,
            model=model,
            prompt=job.prompt,
            seed=job.seed,
            size=size,
            aspect=job.aspect,
            reference_hashes=reference_hashes,
            parent_hash=job.parent.asset.sha256 if job.parent and job.parent.asset else "",
            instructions=(
                (*job.earlier_instructions, job.instruction) if job.edge == Kind.EDIT else ()
            ),
            strength=job.strength,
            mask_hash=mask_hash if job.edge == Kind.EDIT else "",
        )
        for job in jobs
    ]


def stored_renders(*, team, fingerprints) -> dict[str, tuple[int, str]]:
    """{fingerprint: (asset id, thought signature)} of the renders already stored: one
    query for a whole grid. The signature comes along: a later edit of the cached
    copy sends it back to Gemini like the original's."""
    return {
        print_: (asset_id, signature)
        for print_, asset_id, signature in Generation.objects.filter(
            team=team, fingerprint__in=set(fingerprints), status=Status.SUCCEEDED
        )
        .exclude(asset=None)
        .values_list("fingerprint", "asset_id", "thought_signature")
    }


def _team_references(team, ids) -> list[Reference]:
    references = list(Reference.objects.filter(team=team, pk__in=ids))
    if len(references) != len(set(ids)):
        raise SubmitRefused(
            "A reference image was not found in this team's library.",
            errors={"references": "Unknown reference image."},
        )
    return references


def _check_still_member(*, team, member) -> None:
    """Inside the submit's transaction, with the membership row locked: a
    person being removed from the team at this moment either has this batch
    in before the removal (which then cancels it) or is refused here."""
    if not team.memberships.select_for_update().filter(user=member).exists():
        raise SubmitRefused("You are no longer a member of this team.", code="not_found")


def lane_price_percent(lane: str) -> int:
    """What a lane charges, as a percentage of the price table's price."""
    return settings.BATCH_PRICE_PERCENT if lane == Lane.BATCH else 100


def _check_outstanding(*, team, member, tier: str, adding: int) -> None:
    outstanding = Generation.objects.filter(
        team=team, member=member, tier=tier, status__in=OUTSTANDING, lane=Lane.INTERACTIVE
    ).count()
    cap = settings.LANE_MEMBER_OUTSTANDING_CAP
    if outstanding + adding > cap:
        raise SubmitRefused(
            f"You already have {outstanding} {catalog.TIER_LABELS[tier]} "
            f"image{pluralize(outstanding)} waiting or "
            f"rendering; the limit is {cap}. Wait for some to finish or cancel a batch.",
            code="busy",
        )


def _create_batch(
    *,
    team,
    member,
    project,
    tier,
    size,
    aspect,
    prompt,
    base_seed,
    seed_locked,
    jobs: list[_Job],
    references: list[Reference],
    per_line=False,
    fresh=False,
    is_promotion=False,
    campaign=None,
    send_tokens=True,
    kind: str = Kind.DRAFT,
    source: Generation | None = None,
    strength: str = "",
    instruction: str = "",
    lane=Lane.INTERACTIVE,
    mask: CleanMask | None = None,
) -> Batch:
    """Hold the credits and create the batch with its jobs; caller holds the transaction."""
    backend = backend_for(team, tier)
    # A size or ratio the routed model cannot render is refused before anything is
    # held: nobody pays for 4K and receives 1024 × 1024.
    offer = model_catalog.offer(tier, backend.provider, backend.model)
    for job_aspect in dict.fromkeys(job.aspect for job in jobs) or [aspect]:
        problems = offer.problems(size, job_aspect)
        if problems:
            raise SubmitRefused(next(iter(problems.values())), errors=problems)
    if lane == Lane.BATCH:
        from .batch_lane import offers_batch_lane

        if not offers_batch_lane(backend.provider):
            raise SubmitRefused(
                f"The batch lane needs a provider with a batch endpoint (Gemini); "
                f"{catalog.TIER_LABELS[tier]} here renders on {backend.provider}. "
                "Choose the interactive lane.",
                errors={"lane": "Not offered on this backend."},
            )
    provider = provider_named(backend.provider)
    model = backend.model
    batch = Batch.objects.create(
        team=team,
        project=project,
        member=member,
        tier=tier,
        size=size,
        aspect=aspect,
        prompt=prompt,
        base_seed=base_seed,
        seed_locked=seed_locked,
        count=len(jobs),
        per_line=per_line,
        fresh=fresh,
        is_promotion=is_promotion,
        campaign=campaign,
        kind=Kind.PROMOTION if is_promotion else kind,
        source=source,
        strength=strength,
        instruction=instruction,
        lane=lane,
        provider=provider.name,
        model=model,
        mask_sha256=mask.sha256 if mask else "",
    )
    if references:
        batch.references.set(references)

    now = timezone.now()
    prints = job_fingerprints(
        provider=provider.name,
        model=model,
        size=size,
        references=references,
        jobs=jobs,
        mask_hash=mask.sha256 if mask else "",
    )
    stored = {} if fresh else stored_renders(team=team, fingerprints=prints)
    rows, cached = [], 0
    for index, (job, print_) in enumerate(zip(jobs, prints, strict=True)):
        row = Generation(
            batch=batch,
            team=team,
            member=member,
            index=index,
            tier=tier,
            size=size,
            aspect=job.aspect,
            prompt=job.prompt,
            seed=job.seed,
            parent=job.parent,
            axes=job.axes or {},
            root_id=(job.parent.root_id or job.parent.pk) if job.parent else None,
            edge=job.edge,
            instruction=job.instruction,
            chain_turns=job.chain_turns,
            fingerprint=print_,
            provider=provider.name,
            model=model,
            lane=lane,
            created=now,
            changed_at=now,
        )
        if print_ in stored:
            cached += 1
            row.status = Status.SUCCEEDED
            row.cached = True
            row.asset_id, row.thought_signature = stored[print_]
            row.finished_at = now
        rows.append(row)

    to_render = len(jobs) - cached
    if to_render:
        try:
            hold = hold_place(
                team=team,
                member=member,
                tier=tier,
                size=size,
                count=to_render,
                key=batch.hold_key,
                provider=backend.provider,
                model=backend.model,
                price_percent=lane_price_percent(lane),
            )
        except Refusal as refusal:
            code = (
                "credits"
                if refusal.code in ("credits", "member_cap", "team_budget", "frozen")
                else "invalid"
            )
            raise SubmitRefused(refusal.message, code=code)
        batch.hold_id = hold.pk
        batch.credits_quoted = hold.unit_price * to_render
        batch.save(update_fields=["hold_id", "credits_quoted"])
        for row in rows:
            if not row.cached:
                row.credits_held = hold.unit_price
    if cached:
        usage_record_cached(
            team=team,
            member=member,
            tier=tier,
            size=size,
            count=cached,
            key=f"{batch.hold_key}:cached",
        )

    if mask is not None:
        # Written only now that nothing can refuse the batch any more, so a refused
        # edit stores nothing; a small file, kept once per team by its hash.
        batch.mask = mask_store(team_id=team.pk, mask=mask)
        batch.save(update_fields=["mask"])
    Generation.objects.bulk_create(rows)
    if not send_tokens:
        return batch  # the caller dispatches many batches at once (generation.campaigns)
    queued = list(
        Generation.objects.filter(batch=batch, status=Status.QUEUED).values_list("pk", flat=True)
    )
    if lane == Lane.INTERACTIVE:
        lanes.dispatch(tier, queued)
    # Batch-lane images get no lane tokens: the batch lane's scheduler sends them.
    return batch


def batch_submit(*, team, member, request: BatchRequest, project: Project | None = None) -> Batch:
    if project is not None and (project.team_id != team.pk or project.archived):
        raise SubmitRefused("That project is not open in this team.")
    jobs = batch_jobs(request)
    with transaction.atomic():
        _check_still_member(team=team, member=member)
        references = _team_references(team, request.reference_ids)
        if request.lane == Lane.INTERACTIVE:
            # The batch lane takes no interactive lane's room: it has no cap here.
            _check_outstanding(team=team, member=member, tier=request.tier, adding=len(jobs))
        return _create_batch(
            team=team,
            member=member,
            project=project,
            tier=request.tier,
            size=request.size,
            aspect=request.aspect,
            prompt=request.prompt_text,
            base_seed=request.seed,
            seed_locked=request.seed_locked,
            jobs=jobs,
            references=references,
            per_line=request.per_line,
            fresh=request.fresh,
            lane=request.lane,
        )


PROMOTE_SIZES = ("2K", "4K")


def generation_promote(*, team, member, generation_ids, size: str, fresh: bool = False) -> Batch:
    """Render finished Flash drafts again on Pro, each with its draft as a reference."""
    if size not in PROMOTE_SIZES:
        raise SubmitRefused("Promote to Pro at 2K or 4K.", errors={"size": "Choose 2K or 4K."})
    ids = []
    for value in generation_ids:
        pk = parse_id(value)
        if pk is None:
            raise SubmitRefused("Choose images from the grid to promote.")
        ids.append(pk)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise SubmitRefused("Choose at least one image to promote.")
    if len(ids) > settings.PRO_MAX_COUNT:
        raise SubmitRefused(f"Promote at most {settings.PRO_MAX_COUNT} images at a time.")
    drafts = {
        g.pk: g
        for g in Generation.objects.filter(team=team, pk__in=ids)
        .select_related("asset", "batch")
        .prefetch_related("batch__references")
    }
    if len(drafts) != len(ids):
        raise SubmitRefused("Some of these images are not in this team.", code="not_found")
    for draft in drafts.values():
        if draft.tier != catalog.FLASH:
            raise SubmitRefused("Only Flash drafts can be promoted; this one is already Pro.")
        if draft.status != Status.SUCCEEDED or draft.asset_id is None:
            raise SubmitRefused("Only finished drafts can be promoted; wait for it to render.")
        if draft.aspect not in catalog.ASPECTS[catalog.PRO]:
            raise SubmitRefused(f"Pro does not render {draft.aspect} images; choose another draft.")
    ordered = [drafts[pk] for pk in ids]
    first = ordered[0]
    references = list({r.pk: r for d in ordered for r in d.batch.references.all()}.values())
    jobs = [
        _Job(prompt=d.prompt, seed=d.seed, aspect=d.aspect, parent=d, edge=Kind.PROMOTION)
        for d in ordered
    ]
    with transaction.atomic():
        _check_still_member(team=team, member=member)
        _check_outstanding(team=team, member=member, tier=catalog.PRO, adding=len(jobs))
        return _create_batch(
            team=team,
            member=member,
            project=first.batch.project,
            tier=catalog.PRO,
            size=size,
            aspect=first.aspect,
            prompt=first.prompt,
            base_seed=first.seed,
            seed_locked=True,
            jobs=jobs,
            references=references[:13],
            fresh=fresh,
            is_promotion=True,
        )


def _source_image(team, source) -> Generation:
    """The finished image of this team that an edit or a variation starts from."""
    pk = source.pk if isinstance(source, Generation) else parse_id(source)
    found = None
    if pk is not None:
        found = (
            Generation.objects.filter(team=team, pk=pk)
            .select_related("asset", "batch__project")
            .prefetch_related("batch__references")
            .first()
        )
    if found is None:
        raise SubmitRefused("That image is not in this team.", code="not_found")
    if found.status != Status.SUCCEEDED or found.asset_id is None:
        state = {
            Status.QUEUED: "is still waiting to render",
            Status.RUNNING: "is still rendering",
            Status.FAILED: "failed",
            Status.BLOCKED: "was blocked by the provider",
            Status.CANCELED: "was canceled",
        }.get(found.status, "has no image")
        raise SubmitRefused(
            f"This image {state}; only finished images can be edited or varied.",
            errors={"source": "Wait for the image to render."},
        )
    return found


def _invalid(invalid: InvalidRequest) -> SubmitRefused:
    return SubmitRefused(next(iter(invalid.errors.values())), errors=invalid.errors)


def edit_size(tier: str, source_size: str) -> str:
    """An edit keeps its source's size where the tier offers it, else takes the tier's smallest."""
    return source_size if source_size in catalog.SIZES[tier] else catalog.SIZES[tier][0]


def generation_edit(
    *,
    team,
    member,
    source,
    instructions,
    tier: str = catalog.FLASH,
    size: str | None = None,
    fresh: bool = False,
    mask: bytes | None = None,
) -> Batch:
    """Edit a finished image with words: one image per instruction, as one grid.

    The edit renders at the source's aspect ratio on the chosen tier, at the
    source's size when the tier offers it (else the tier's smallest). Editing
    an edit continues its chain: the lane sends the earlier turns along.

    `mask` (PNG bytes the size of the source, white = change) makes it a region
    edit: every instruction says what goes in the painted area. The tier's model
    must take a mask, as a hard mask or as guidance (Backend.mask).
    """
    tier = str(tier or "").strip().lower()
    if tier not in catalog.TIERS:
        raise SubmitRefused("Choose Flash or Pro.", errors={"tier": "Choose Flash or Pro."})
    try:
        instructions = parse_instructions(instructions, tier=tier)
    except InvalidRequest as invalid:
        raise _invalid(invalid)
    label = catalog.TIER_LABELS[tier]
    if size is None or size == "":
        size = None
    else:
        size = str(size).strip().upper()
        if size not in catalog.SIZES[tier]:
            offered = ", ".join(catalog.SIZES[tier])
            raise SubmitRefused(
                f"{label} renders at {offered}.", errors={"size": f"Choose {offered}."}
            )
    found = _source_image(team, source)
    if found.aspect not in catalog.ASPECTS[tier]:
        raise SubmitRefused(
            f"{label} does not render {found.aspect} images; edit it on Flash.",
            errors={"tier": f"{label} does not offer {found.aspect}."},
        )
    if size is None:
        size = edit_size(tier, found.size)
    clean_mask = _edit_mask(team, tier, found, mask) if mask else None
    chain = edit_chain(found)
    turns = len(chain) + 1
    limit = settings.EDIT_CHAIN_MAX_TURNS
    if turns > limit:
        raise SubmitRefused(
            f"This image ends a chain of {len(chain)} edits, the most one conversation keeps "
            f"({limit}). Vary it or promote it to start a new chain from it.",
            errors={"instructions": f"The chain is at its limit of {limit} edits."},
        )
    earlier = tuple(g.instruction for g in chain)
    jobs = [
        _Job(
            prompt=found.prompt,
            seed=found.seed,
            aspect=found.aspect,
            parent=found,
            edge=Kind.EDIT,
            instruction=instruction,
            earlier_instructions=earlier,
            chain_turns=turns,
        )
        for instruction in instructions
    ]
    with transaction.atomic():
        _check_outstanding(team=team, member=member, tier=tier, adding=len(jobs))
        return _create_batch(
            team=team,
            member=member,
            project=found.batch.project,
            tier=tier,
            size=size,
            aspect=found.aspect,
            prompt=found.prompt,
            base_seed=found.seed,
            seed_locked=True,
            jobs=jobs,
            references=list(found.batch.references.all())[:13],
            fresh=fresh,
            kind=Kind.EDIT,
            source=found,
            instruction="\n".join(instructions),
            mask=clean_mask,
        )


def _edit_mask(team, tier: str, found: Generation, data: bytes) -> CleanMask:
    """The validated mask of a region edit, or the refusal in words."""
    backend = backend_for(team, tier)
    if not backend.mask:
        raise SubmitRefused(
            f"{catalog.TIER_LABELS[tier]} renders on {backend.label} here, which takes no "
            "mask and no image guidance. Clear the mask to edit the whole image, or choose "
            "the other tier.",
            errors={"mask": "This model takes no mask."},
        )
    try:
        return parse_mask(data, size=(found.asset.width, found.asset.height))
    except InvalidRequest as invalid:
        raise _invalid(invalid)


def generation_vary(*, team, member, source, strength: str, count=4) -> Batch:
    """New images from a finished one: "subtle" keeps its composition, "strong" only its idea.

    Each variation gets a new seed, so asking again gives new images rather
    than the cached ones; the source goes to the provider as the image to vary.
    """
    strength = str(strength or "").strip().lower()
    if strength not in STRENGTHS:
        raise SubmitRefused(
            "Vary subtle or strong.", errors={"strength": "Choose subtle or strong."}
        )
    found = _source_image(team, source)
    limit = max_count(found.tier)
    try:
        count = int(str(count).strip())
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= limit:
        raise SubmitRefused(
            f"Choose between 1 and {limit} variations.",
            errors={"count": f"Choose between 1 and {limit} images."},
        )
    base = secrets.randbelow(SEED_MAX - 1000)
    jobs = [
        _Job(
            prompt=found.prompt,
            seed=base + index,
            aspect=found.aspect,
            parent=found,
            edge=Kind.VARIATION,
            strength=strength,
        )
        for index in range(count)
    ]
    with transaction.atomic():
        _check_outstanding(team=team, member=member, tier=found.tier, adding=len(jobs))
        return _create_batch(
            team=team,
            member=member,
            project=found.batch.project,
            tier=found.tier,
            size=found.size,
            aspect=found.aspect,
            prompt=found.prompt,
            base_seed=base,
            seed_locked=False,
            jobs=jobs,
            references=list(found.batch.references.all())[:13],
            kind=Kind.VARIATION,
            source=found,
            strength=strength,
        )


# The membership roles (studio.models.Role) that may change what teammates made.
MANAGER_ROLES = ("owner", "admin")


def _is_manager(*, team, actor) -> bool:
    role = team.memberships.filter(user=actor).values_list("role", flat=True).first()
    return role in MANAGER_ROLES


def batch_cancel(*, batch: Batch, actor=None) -> int:
    """Cancel the queued images of a batch and release their credits.

    Each queued image is canceled by a conditional update, so a worker that
    claims it at the same moment wins cleanly and the image is either
    rendered or released, never both. Running images finish and are charged,
    except on providers that can stop a job (ComfyUI): they see the batch's
    cancel mark, stop, and are released.
    """
    if (
        actor is not None
        and batch.member_id != actor.pk
        and not _is_manager(team=batch.team, actor=actor)
    ):
        raise PermissionDenied(
            "You can cancel only your own grids. Ask the person who made it, or an owner "
            "or admin of the team."
        )
    canceled = 0
    now = timezone.now()
    for pk in Generation.objects.filter(batch=batch, status=Status.QUEUED).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            moved = Generation.objects.filter(pk=pk, status=Status.QUEUED).update(
                status=Status.CANCELED,
                finished_at=now,
                changed_at=now,
                error="Canceled before it started. Nothing was charged.",
            )
            if moved and batch.hold_id:
                hold_release(hold_id=batch.hold_id, images=1, key=f"gen:{pk}:release")
            canceled += moved
    Batch.objects.filter(pk=batch.pk, canceled_at=None).update(canceled_at=now)
    if batch.lane == Lane.BATCH:
        from .batch_lane import batch_lane_cancel

        canceled += batch_lane_cancel(batch)
    return canceled


def generation_star(*, generation: Generation, starred: bool) -> None:
    Generation.objects.filter(pk=generation.pk).update(starred=starred)
    generation.starred = starred


def generation_reject(*, generation: Generation, rejected: bool) -> None:
    """Reject (or take back) an image: it leaves the default grid view and nothing else."""
    Generation.objects.filter(pk=generation.pk).update(rejected=rejected)
    generation.rejected = rejected


RATINGS = range(0, 6)


def generation_rate(*, generation: Generation, rating: int) -> None:
    """Rate an image 1–5, or 0 to clear its rating."""
    if rating not in RATINGS:
        raise SubmitRefused("A rating is 1 to 5 (0 clears it).", errors={"rating": "1 to 5."})
    Generation.objects.filter(pk=generation.pk).update(rating=rating)
    generation.rating = rating


def generations_archive(*, team, generation_ids, actor=None, archived: bool = True) -> int:
    """Archive the chosen images (or with archived=False, restore them).

    A plain member may archive only their own images; a selection with any
    teammate's image in it is refused whole, so nothing changes.
    """
    images = Generation.objects.filter(team=team, pk__in=parse_ids(generation_ids))
    if actor is not None and not _is_manager(team=team, actor=actor):
        theirs = images.exclude(member=actor).count()
        if theirs:
            verb = "archive" if archived else "restore"
            raise PermissionDenied(
                f"You can {verb} only your own images; {theirs} of these "
                f"{'is' if theirs == 1 else 'are'} a teammate's. Nothing was changed."
            )
    return images.exclude(archived=archived).update(archived=archived)


def reference_upload(*, team, member, name: str, data: bytes) -> tuple[Reference, bool]:
    """Validate, re-encode and keep an uploaded reference image (once per team)."""
    name = (name or "").strip()[:120]
    try:
        upload = clean_upload(data)
    except ValueError as error:
        raise SubmitRefused(str(error), errors={"image": str(error)})
    return reference_store(team=team, name=name or "Reference", upload=upload, created_by=member)


def project_create(*, team, member, name: str) -> Project:
    name = (name or "").strip()
    if not name:
        raise InvalidRequest({"name": "Give the project a name."})
    return Project.objects.create(team=team, name=name[:120], created_by=member)


def _check_project_change(*, project: Project, actor, doing: str) -> None:
    """Projects are the team's: owners and admins change any, a member only one they made."""
    if (
        actor is not None
        and project.created_by_id != actor.pk
        and not _is_manager(team=project.team, actor=actor)
    ):
        raise PermissionDenied(
            f"Only the team's owner and admins, or the person who made it, can {doing} "
            "this project."
        )


def project_rename(*, project: Project, name: str, actor=None) -> Project:
    _check_project_change(project=project, actor=actor, doing="rename")
    name = (name or "").strip()[:120]
    if not name:
        raise InvalidRequest({"name": "A project needs a name."})
    Project.objects.filter(pk=project.pk).update(name=name)
    project.name = name
    return project


def project_archive(*, project: Project, archived: bool = True, actor=None) -> Project:
    """Archive a project (or bring it back): it leaves the list, its images stay."""
    _check_project_change(project=project, actor=actor, doing="archive" if archived else "restore")
    Project.objects.filter(pk=project.pk).update(archived=archived)
    project.archived = archived
    return project
