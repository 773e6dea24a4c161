"""The JSON API for studio pipelines: submit grids, follow them, list, promote, edit, vary,
download.

Every endpoint calls the services and selectors the pages use, with the
same validation, caps, per-member submit limit and credit refusals; only
the wrapping differs (JSON and status codes instead of HTML). The token
fixes the team: another team's ids answer 404 like ids that do not exist.
"""

import base64
import binascii
from typing import Literal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, ValidationError
from ninja.responses import Status as Reply

from billing.selectors import member_limits, wallet_balance
from generation import campaigns
from generation.models import Batch, Campaign, Generation, Project, Status
from generation.requests import InvalidRequest, parse_batch_request
from generation.selectors import (
    HistoryFilters,
    batch_grid,
    decode_cursor,
    history_page,
)
from generation.services import (
    SubmitRefused,
    batch_cancel,
    batch_submit,
    generation_edit,
    generation_promote,
    generation_vary,
)

from .. import throttle
from ..models import Membership
from ..views.media import download_name, serve_file
from .auth import Caller, TokenAuth
from .schemas import (
    BalanceOut,
    BatchIn,
    BatchOut,
    CampaignIn,
    CampaignOut,
    CampaignSubmitOut,
    CancelOut,
    EditIn,
    Error,
    ImageFilters,
    ImagePage,
    PermutationsIn,
    PromoteIn,
    VaryIn,
)

# The same mapping the pages use for a refused submit.
STATUS_FOR = {"invalid": 400, "credits": 402, "busy": 429, "not_found": 404}


class ContactSheetApi(NinjaAPI):
    def get_openapi_operation_id(self, operation) -> str:
        # "batches_create" rather than the module path ninja would use.
        return operation.view_func.__name__


api = ContactSheetApi(
    title="Contact Sheet API",
    version="1",
    description=(
        "Submit draft grids and promotions, follow them, list and download images, "
        "read the team's credits. Authenticate with `Authorization: Bearer cs_…`; "
        "a token belongs to one person in one team."
    ),
    auth=TokenAuth(),
    urls_namespace="api-v1",
    # No interactive docs page: it would need scripts from a CDN, which the
    # site's CSP forbids. The schema itself is served at openapi.json.
    docs_url=None,
)


class ApiError(Exception):
    def __init__(self, status: int, detail: str, *, errors=None, headers=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or {}
        self.headers = headers or {}


def _json(status: int, detail: str, errors=None, headers=None) -> JsonResponse:
    response = JsonResponse({"detail": detail, "errors": errors or {}}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request, error: ApiError):
    return _json(error.status, error.detail, error.errors, error.headers)


@api.exception_handler(Http404)
def _not_found(request, error):
    return _json(404, "Not found in this token's team.")


@api.exception_handler(PermissionDenied)
def _forbidden(request, error):
    # A role refusal from a service (a member canceling a teammate's grid).
    return _json(403, str(error) or "Your role in this team does not allow this.")


@api.exception_handler(AuthenticationError)
def _unauthorized(request, error):
    return _json(
        401,
        "Send a valid API token: Authorization: Bearer cs_…",
        headers={"WWW-Authenticate": 'Bearer realm="api"'},
    )


@api.exception_handler(ValidationError)
def _invalid(request, error: ValidationError):
    # Pydantic's report, reshaped like the pages' field errors: {field: message}.
    errors = {}
    for item in error.errors:
        location = [str(part) for part in item.get("loc", ())]
        if location[:1] and location[0] in ("body", "query", "path"):
            location = location[1:]
        if location[:1] and location[0] in ("payload", "filters"):
            location = location[1:]
        errors.setdefault(location[0] if location else "request", item.get("msg", "Invalid."))
    return _json(400, "The request is not valid.", errors)


# Documented on every endpoint: a missing or dead token, and a malformed request.
COMMON = {400: Error, 401: Error}


def _caller(request) -> Caller:
    return request.auth


def _throttle_submit(caller: Caller) -> None:
    # Grids and promotions share the pages' per-member limit.
    try:
        throttle.hit("submit", str(caller.member.pk), limit=settings.SUBMITS_PER_MINUTE)
    except throttle.Throttled as throttled:
        raise ApiError(429, throttled.message, headers={"Retry-After": str(throttled.retry_after)})


# A member with too many images waiting gets 429 too; by then some have
# usually finished, so a script may try again after this long.
BUSY_RETRY_SECONDS = 30


def _refused(refused: SubmitRefused) -> ApiError:
    headers = {"Retry-After": str(BUSY_RETRY_SECONDS)} if refused.code == "busy" else {}
    return ApiError(
        STATUS_FOR.get(refused.code, 400), refused.message, errors=refused.errors, headers=headers
    )


# --- serializing ---------------------------------------------------------------------


def _image(request, generation: Generation, *, team, member_name: str) -> dict:
    done = generation.status == Status.SUCCEEDED and generation.asset_id
    return {
        "id": generation.pk,
        "batch": generation.batch_id,
        "index": generation.index,
        "status": generation.status,
        "tier": generation.tier,
        "size": generation.size,
        "aspect": generation.aspect,
        "prompt": generation.prompt,
        "seed": generation.seed,
        "member": member_name,
        "cached": generation.cached,
        "starred": generation.starred,
        "error": generation.error,
        "credits_charged": generation.credits_charged,
        "created": generation.created,
        "finished_at": generation.finished_at,
        "parent": generation.parent_id,
        "made_as": generation.edge,
        "instruction": generation.instruction,
        "download_url": (
            request.build_absolute_uri(f"/api/v1/images/{generation.pk}/download") if done else None
        ),
        "page_url": request.build_absolute_uri(f"/t/{team.slug}/images/{generation.pk}/"),
    }


def _batch(request, team, pk: int) -> dict:
    grid = batch_grid(team=team, pk=pk)
    if grid is None:
        raise Http404
    batch, progress = grid.batch, grid.progress
    if progress.is_finished:
        status = "finished"
    elif progress.queued == progress.total:
        status = "queued"
    else:
        status = "running"
    member_name = batch.member.get_username()
    return {
        "id": batch.pk,
        "status": status,
        "tier": batch.tier,
        "size": batch.size,
        "aspect": batch.aspect,
        "prompt": batch.prompt,
        "count": batch.count,
        "base_seed": batch.base_seed,
        "seed_locked": batch.seed_locked,
        "is_promotion": batch.is_promotion,
        "kind": batch.kind,
        "source": batch.source_id,
        "mask": batch.mask_sha256 or None,
        "lane": batch.lane,
        "project": batch.project_id,
        "member": member_name,
        "provider": batch.provider,
        "model": batch.model,
        "credits_quoted": batch.credits_quoted,
        "created": batch.created,
        "canceled_at": batch.canceled_at,
        "progress": {
            "total": progress.total,
            "done": progress.done,
            "cached": progress.cached,
            "failed": progress.failed,
            "blocked": progress.blocked,
            "canceled": progress.canceled,
            "queued": progress.queued,
            "running": progress.running,
            "finished": progress.finished,
            "eta_seconds": progress.eta_seconds,
            "waiting_for": progress.waiting_for,
        },
        "images": [_image(request, g, team=team, member_name=member_name) for g in grid.tiles],
    }


# --- batches -------------------------------------------------------------------------


@api.post(
    "/batches",
    response={201: BatchOut, 402: Error, 404: Error, 429: Error, **COMMON},
    summary="Submit a grid",
    description="Holds the credits and queues the images. 402 when the team's credits, "
    "a member cap or the monthly budget would be passed; 429 (with Retry-After) past the "
    "per-member submit limit or the cap on images waiting.",
)
def batches_create(request, payload: BatchIn):
    caller = _caller(request)
    project = None
    if payload.project is not None:
        project = Project.objects.filter(team=caller.team, pk=payload.project).first()
        if project is None:
            raise Http404
    _throttle_submit(caller)
    data = payload.dict()
    data["seed"] = "" if payload.seed is None else str(payload.seed)
    try:
        batch_request = parse_batch_request(data, payload.references)
        batch = batch_submit(
            team=caller.team, member=caller.member, request=batch_request, project=project
        )
    except InvalidRequest as invalid:
        raise ApiError(400, "The grid cannot be made as asked.", errors=invalid.errors)
    except SubmitRefused as refused:
        raise _refused(refused)
    return Reply(201, _batch(request, caller.team, batch.pk))


@api.get("/batches/{batch_id}", response={200: BatchOut, 404: Error, **COMMON},
         summary="A grid's status, progress and images")  # fmt: skip
def batches_read(request, batch_id: int):
    return _batch(request, _caller(request).team, batch_id)


@api.post("/batches/{batch_id}/cancel", response={200: CancelOut, 403: Error, 404: Error, **COMMON},
          summary="Cancel the grid's queued images (running ones finish)")  # fmt: skip
def batches_cancel(request, batch_id: int):
    caller = _caller(request)
    team = caller.team
    batch = Batch.objects.filter(team=team, pk=batch_id).first()
    if batch is None:
        raise Http404
    canceled = batch_cancel(batch=batch, actor=caller.member)
    return {"canceled": canceled, "batch": _batch(request, team, batch.pk)}


# --- images --------------------------------------------------------------------------


@api.get("/images", response={200: ImagePage, **COMMON},
         summary="The team's images, newest first, filtered, a page at a time")  # fmt: skip
def images_list(request, filters: Query[ImageFilters]):
    team = _caller(request).team
    member_id = None
    if filters.member:
        member_id = (
            Membership.objects.filter(team=team, user__username=filters.member)
            .values_list("user_id", flat=True)
            .first()
        )
        if member_id is None:
            raise ApiError(400, "No such member.", errors={"member": "No member by that name."})
    cursor = decode_cursor(filters.cursor) if filters.cursor else None
    if filters.cursor and cursor is None:
        raise ApiError(400, "The cursor is not valid.", errors={"cursor": "Unknown cursor."})
    images, next_cursor = history_page(
        team=team,
        filters=HistoryFilters(
            text=filters.q.strip(),
            starred=filters.starred,
            tier=filters.tier,
            size=filters.size,
            member_id=member_id,
            status=filters.status,
            since=filters.since,
            until=filters.until,
            archived=filters.archived,
        ),
        cursor=cursor,
    )
    return {
        "images": [
            _image(request, g, team=team, member_name=g.member.get_username()) for g in images
        ],
        "next_cursor": next_cursor,
    }


@api.post(
    "/images/promote",
    response={201: BatchOut, 402: Error, 404: Error, 429: Error, **COMMON},
    summary="Promote finished Flash drafts to Pro at 2K or 4K",
)
def images_promote(request, payload: PromoteIn):
    caller = _caller(request)
    _throttle_submit(caller)
    try:
        batch = generation_promote(
            team=caller.team,
            member=caller.member,
            generation_ids=payload.ids,
            size=payload.size,
            fresh=payload.fresh,
        )
    except SubmitRefused as refused:
        raise _refused(refused)
    return Reply(201, _batch(request, caller.team, batch.pk))


@api.post(
    "/images/{image_id}/edit",
    response={201: BatchOut, 402: Error, 404: Error, 429: Error, **COMMON},
    summary="Edit a finished image with words: one image per instruction",
    description="Renders at the image's aspect ratio on the chosen tier, with the image (and "
    "its references) as input; an edit of an edit continues the chain, up to the site's limit "
    "(400 past it). Priced per image like a grid of that tier and size; an identical edit is "
    "served from the cache at no charge. 404 for an image of another team.",
)
def images_edit(request, image_id: int, payload: EditIn):
    caller = _caller(request)
    _throttle_submit(caller)
    mask = _mask_bytes(payload.mask)
    try:
        batch = generation_edit(
            team=caller.team,
            member=caller.member,
            source=image_id,
            instructions=payload.instructions,
            tier=payload.tier,
            size=payload.size,
            fresh=payload.fresh,
            mask=mask,
        )
    except SubmitRefused as refused:
        raise _refused(refused)
    return Reply(201, _batch(request, caller.team, batch.pk))


def _mask_bytes(value: str | None) -> bytes | None:
    """The mask's PNG bytes from its base64 (a data: URL prefix is allowed), or a 400."""
    if not value:
        return None
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            400,
            "The mask is not valid base64.",
            errors={"mask": "Send the mask PNG as base64."},
        )


@api.post(
    "/images/{image_id}/vary",
    response={201: BatchOut, 402: Error, 404: Error, 429: Error, **COMMON},
    summary="Variations of a finished image: subtle keeps its composition, strong its idea",
    description="A grid of new images on the image's tier, size and aspect ratio, each with a "
    "new seed, priced per image like a grid. docs/BACKENDS.md says what subtle and strong do "
    "on each provider.",
)
def images_vary(request, image_id: int, payload: VaryIn):
    caller = _caller(request)
    _throttle_submit(caller)
    try:
        batch = generation_vary(
            team=caller.team,
            member=caller.member,
            source=image_id,
            strength=payload.strength,
            count=payload.count,
        )
    except SubmitRefused as refused:
        raise _refused(refused)
    return Reply(201, _batch(request, caller.team, batch.pk))


@api.get(
    "/images/{image_id}/download",
    response={404: Error, 409: Error, **COMMON},
    summary="The original PNG, with its parameters embedded, under a descriptive name",
    openapi_extra={
        "responses": {
            200: {
                "description": "The PNG (text chunks `parameters` and the JSON metadata).",
                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def images_download(request, image_id: int):
    team = _caller(request).team
    generation = Generation.objects.filter(team=team, pk=image_id).select_related("asset").first()
    if generation is None:
        raise Http404
    if generation.asset is None:
        raise ApiError(409, f"The image is {generation.get_status_display().lower()}; "
                       "only finished images can be downloaded.")  # fmt: skip
    asset = generation.asset
    return serve_file(
        request,
        asset.original.name,
        "image/png",
        f'"{asset.sha256}-original"',
        attachment_name=download_name(generation),
        generation=generation,
    )


# --- credits -------------------------------------------------------------------------


@api.get("/balance", response={200: BalanceOut, **COMMON},
         summary="The team's credits and the caller's limits")  # fmt: skip
def balance(request):
    caller = _caller(request)
    available, held = wallet_balance(caller.team)
    return {
        "team": caller.team.slug,
        "available": available,
        "held": held,
        "limits": [
            {"label": limit.label, "left": limit.left, "limit": limit.limit}
            for limit in member_limits(caller.team, caller.member)
        ],
    }


# --- campaigns -----------------------------------------------------------------------


def _campaign(campaign: Campaign) -> dict:
    progress = campaigns.campaign_progress(campaign)
    spending = progress.spending
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "budget": campaign.budget,
        "state": progress.state,
        "created": campaign.created,
        "paused_at": campaign.paused_at,
        "canceled_at": campaign.canceled_at,
        "progress": {
            "total": progress.total,
            "done": progress.done,
            "failed": progress.failed,
            "canceled": progress.canceled,
            "queued": progress.queued,
            "running": progress.running,
            "batches": progress.batches,
            "credits_spent": spending.spent,
            "credits_held": spending.held,
            "credits_left": spending.left,
        },  # fmt: skip
        "batches": progress.batch_ids,
    }


def _team_campaign(caller: Caller, campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(team=caller.team, pk=campaign_id).first()
    if campaign is None:
        raise Http404
    return campaign


def _may_change(caller: Caller, campaign: Campaign) -> None:
    manages = Membership.objects.filter(
        team=caller.team, user=caller.member, role__in=("owner", "admin")
    ).exists()
    if not manages and campaign.created_by_id != caller.member.pk:
        raise PermissionDenied(
            "Only the person who started this campaign, or an owner or admin, can change it."
        )


@api.post("/campaigns", response={201: CampaignOut, **COMMON},
          summary="Start a campaign: many grids under one budget")  # fmt: skip
def campaigns_create(request, payload: CampaignIn):
    caller = _caller(request)
    try:
        campaign = campaigns.campaign_create(
            team=caller.team, member=caller.member, name=payload.name, budget=payload.budget
        )
    except InvalidRequest as invalid:
        raise ApiError(400, "The campaign cannot be made as asked.", errors=invalid.errors)
    return Reply(201, _campaign(campaign))


@api.get("/campaigns", response={200: list[CampaignOut], **COMMON},
         summary="The team's campaigns, newest first, with their progress")  # fmt: skip
def campaigns_list(request):
    return [_campaign(c) for c in Campaign.objects.filter(team=_caller(request).team)[:100]]


@api.get("/campaigns/{campaign_id}", response={200: CampaignOut, 404: Error, **COMMON},
         summary="A campaign's progress: images done, credits spent, held, left")  # fmt: skip
def campaigns_read(request, campaign_id: int):
    return _campaign(_team_campaign(_caller(request), campaign_id))


@api.post(
    "/campaigns/{campaign_id}/batches",
    response={201: CampaignSubmitOut, 402: Error, 404: Error, 429: Error, **COMMON},
    summary="Submit a permutation prompt into the campaign",
    description="Expands the prompt's choices and the lists of sizes, ratios and seeds into "
    "every combination, in as many grids as they fill. 402 when the campaign's budget (or "
    "the team's credits) would be passed: nothing is held then.",
)
def campaigns_submit(request, campaign_id: int, payload: PermutationsIn):
    caller = _caller(request)
    campaign = _team_campaign(caller, campaign_id)
    _throttle_submit(caller)
    data = payload.dict()
    data["seed"] = "" if payload.seed is None else str(payload.seed)
    data["seed_mode"] = "locked" if payload.seed is not None else "random"
    data["seeds"] = [str(seed) for seed in payload.seeds]
    try:
        permutation = campaigns.parse_permutation_request(data, payload.references)
        batches = campaigns.permutations_submit(
            team=caller.team, member=caller.member, requests=[permutation], campaign=campaign
        )
    except InvalidRequest as invalid:
        raise ApiError(400, "The permutations cannot be made as asked.", errors=invalid.errors)
    except SubmitRefused as refused:
        raise _refused(refused)
    campaign.refresh_from_db()
    return Reply(201, {
        "images": sum(b.count for b in batches),
        "batches": [b.pk for b in batches],
        "campaign": _campaign(campaign),
    })  # fmt: skip


@api.post("/campaigns/{campaign_id}/{action}",
          response={200: CampaignOut, 403: Error, 404: Error, **COMMON},
          summary="pause, resume or cancel the campaign")  # fmt: skip
def campaigns_change(request, campaign_id: int, action: Literal["pause", "resume", "cancel"]):
    caller = _caller(request)
    campaign = _team_campaign(caller, campaign_id)
    _may_change(caller, campaign)
    if action == "pause":
        campaigns.campaign_pause(campaign=campaign)
    elif action == "resume":
        campaigns.campaign_resume(campaign=campaign)
    else:
        campaigns.campaign_cancel(campaign=campaign)
    return _campaign(campaign)
