"""What the API reads and writes, as pydantic schemas (they are also the OpenAPI schema).

Request fields stay plain strings and numbers where the pages accept the
same values: `parse_batch_request` checks them and words its refusals the
same way for a form and for a script.
"""

from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from generation import catalog
from generation.requests import ID_MAX, INSTRUCTION_MAX, MAX_REFERENCES, PROMPT_MAX, day_in_range


def _row_id(value: int) -> int:
    # JSON numbers have no size limit; a row id must fit the database's integers.
    if not 1 <= value <= ID_MAX:
        raise PydanticCustomError(
            "row_id", "Not an id: ids are whole numbers from 1 to {max}.", {"max": ID_MAX}
        )
    return value


def _day(value: date) -> date:
    try:
        return day_in_range(value)
    except ValueError as error:
        raise PydanticCustomError("day_range", str(error))


# The same bounds the pages' parsing applies (generation.requests).
RowId = Annotated[int, AfterValidator(_row_id)]
Day = Annotated[date, AfterValidator(_day)]


class Error(Schema):
    detail: str = Field(description="What went wrong, in words to show a person.")
    errors: dict[str, str] = Field(
        default_factory=dict, description="Field name → what is wrong with it."
    )


class BatchIn(Schema):
    prompt: str = Field(
        max_length=PROMPT_MAX * 2,
        description="What to draw. With per_line, each line is its own prompt in one grid.",
        examples=["a ceramic teapot on linen, soft window light"],
    )
    tier: str = Field(
        description="flash (drafts) or pro (final renders).", examples=[catalog.FLASH]
    )
    size: str = Field(description="Flash: 512, 1K, 2K, 4K. Pro: 1K, 2K, 4K.", examples=["1K"])
    aspect: str = Field(
        description=f"One of {', '.join(catalog.ASPECTS[catalog.FLASH])} "
        "(the last four on Flash only).",
        examples=["16:9"],
    )
    count: int = Field(default=1, description="Images per prompt.", examples=[4])
    seed: int | None = Field(
        default=None, description="Lock the first seed; the others follow it. Random if absent."
    )
    per_line: bool = Field(default=False, description="Each line of the prompt is a prompt.")
    fresh: bool = Field(
        default=False, description="Render again even when an identical image is stored."
    )
    references: list[RowId] = Field(
        default_factory=list,
        max_length=MAX_REFERENCES * 4,
        description="Ids of reference images from the team's library.",
    )
    project: RowId | None = Field(default=None, description="Id of the project to file it under.")
    lane: Literal["interactive", "batch"] = Field(
        default="interactive",
        description="interactive: rendered now by the Flash and Pro lanes. batch: sent to the "
        "provider's batch endpoint at the batch rate (half price by default); results may "
        "take hours, and progress says it is waiting for the provider's batch.",
    )


class Progress(Schema):
    total: int
    done: int
    cached: int
    failed: int
    blocked: int
    canceled: int
    queued: int
    running: int
    finished: int = Field(description="done + failed + blocked + canceled")
    eta_seconds: int | None = Field(
        None, description="from the lane's measured render time and pace, and the quota"
    )
    waiting_for: str = Field(
        "", description='what holds the batch back, e.g. "Gemini\'s rate limit"; empty if nothing'
    )


class ImageOut(Schema):
    id: int
    batch: int
    index: int
    status: str = Field(description="queued, running, succeeded, failed, blocked or canceled")
    tier: str
    size: str
    aspect: str
    prompt: str
    seed: int
    member: str
    cached: bool
    starred: bool
    error: str
    credits_charged: int
    created: datetime
    finished_at: datetime | None
    parent: int | None = Field(description="The image this one was made from, if any.")
    made_as: Literal["draft", "promotion", "edit", "variation"] = Field(
        description="How it was made from its parent: a Pro render, an edit or a variation."
    )
    instruction: str = Field(description="The edit's instruction; empty for other images.")
    download_url: str | None = Field(description="The original PNG; null until it is done.")
    page_url: str = Field(description="The image's page in the studio.")


class BatchOut(Schema):
    id: int
    status: Literal["queued", "running", "finished"]
    tier: str
    size: str
    aspect: str
    prompt: str
    count: int
    base_seed: int
    seed_locked: bool
    is_promotion: bool
    kind: Literal["draft", "promotion", "edit", "variation"]
    source: int | None = Field(description="The image an edit or variation batch starts from.")
    mask: str | None = Field(
        default=None, description="A region edit's mask: the sha256 of the stored PNG."
    )
    lane: str = Field(description="interactive or batch")
    project: int | None
    member: str
    provider: str
    model: str
    credits_quoted: int
    created: datetime
    canceled_at: datetime | None
    progress: Progress
    images: list[ImageOut]


class CancelOut(Schema):
    canceled: int = Field(description="Queued images canceled; their credits are released.")
    batch: BatchOut


class ImageFilters(Schema):
    q: str = Field(default="", max_length=200, description="Words in the prompt.")
    starred: bool = False
    tier: Literal["", "flash", "pro"] = ""
    size: Literal["", "512", "1K", "2K", "4K"] = ""
    member: str = Field(default="", max_length=150, description="Username of a member.")
    status: Literal["", "queued", "running", "succeeded", "failed", "blocked", "canceled"] = ""
    since: Day | None = Field(default=None, description="Made on or after this day.")
    until: Day | None = Field(default=None, description="Made on or before this day.")
    archived: bool = False
    cursor: str = Field(default="", max_length=100, description="next_cursor of the last page.")


class ImagePage(Schema):
    images: list[ImageOut]
    next_cursor: str = Field(description="Pass as cursor for the next page; empty at the end.")


class PromoteIn(Schema):
    ids: list[RowId] = Field(
        min_length=1, max_length=200, description="Finished Flash drafts to render on Pro."
    )
    size: Literal["2K", "4K"] = "2K"
    fresh: bool = False


class EditIn(Schema):
    # Each instruction is bounded loosely here so the service can word the real limit.
    instructions: list[Annotated[str, Field(max_length=INSTRUCTION_MAX * 2)]] = Field(
        min_length=1,
        max_length=200,
        description=f"What to change, 1–{INSTRUCTION_MAX:,} characters each; one image per "
        "instruction, all edits of the same image. Editing an edit continues its chain.",
        examples=[["make the light warmer", "replace the mug with a teapot"]],
    )
    tier: Literal["flash", "pro"] = Field(
        default="flash", description="Flash by default; Pro for a hero render."
    )
    size: Literal["512", "1K", "2K", "4K"] | None = Field(
        default=None,
        description="The image's own size when the tier offers it, else the tier's smallest.",
    )
    fresh: bool = Field(
        default=False, description="Render again even when an identical edit is stored."
    )
    mask: str | None = Field(
        default=None,
        description="A region edit: the painted mask as a base64 PNG of exactly the image's "
        "pixel size, white where the change goes and black (or transparent) where the image is "
        "kept. Each instruction then says what goes in the white area. Gemini takes it as "
        "guidance, not a hard mask; a model that takes no mask refuses it (400).",
    )


class VaryIn(Schema):
    strength: Literal["subtle", "strong"] = Field(
        description="subtle keeps the composition; strong keeps only the idea."
    )
    count: int = Field(default=4, description="How many variations (up to the tier's grid limit).")


class Limit(Schema):
    label: str
    left: int
    limit: int


class BalanceOut(Schema):
    team: str
    available: int = Field(description="Credits that can be spent now.")
    held: int = Field(description="Credits set aside for images still rendering.")
    limits: list[Limit] = Field(description="The caller's caps and the team's budget, if set.")


# --- campaigns -----------------------------------------------------------------------


class CampaignIn(Schema):
    name: str = Field(max_length=200, examples=["Teapots — every colour"])
    budget: int = Field(description="Credits its grids may hold and spend.", examples=[50_000])


class PermutationsIn(Schema):
    prompt: str = Field(
        max_length=PROMPT_MAX * 2,
        description="Choices in braces make every combination: `{red|blue} teapot on "
        "{linen|marble}` is four prompts. `\\{`, `\\}`, `\\|` write the characters.",
        examples=["{red|blue|green} teapot on {linen|marble}"],
    )
    tier: str = Field(examples=[catalog.FLASH])
    size: str = Field(default="1K", examples=["1K"])
    aspect: str = Field(default="1:1", examples=["1:1"])
    count: int = Field(default=1, description="Images of each combination.")
    sizes: list[str] = Field(default_factory=list, max_length=8, description="Every size, an axis.")
    aspects: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Every ratio, an axis.",
        examples=[["1:1", "4:5", "9:16"]],
    )
    seeds: list[int] = Field(
        default_factory=list, max_length=200, description="Every seed, an axis."
    )
    seed: int | None = Field(default=None, description="The first seed of a row; random if absent.")
    fresh: bool = False
    references: list[RowId] = Field(default_factory=list, max_length=MAX_REFERENCES * 4)


class CampaignProgress(Schema):
    total: int
    done: int
    failed: int
    canceled: int
    queued: int
    running: int
    batches: int
    credits_spent: int
    credits_held: int
    credits_left: int


class CampaignOut(Schema):
    id: int
    name: str
    budget: int
    state: str = Field(description="active, paused, finished or canceled.")
    created: datetime
    paused_at: datetime | None
    canceled_at: datetime | None
    progress: CampaignProgress
    batches: list[int] = Field(description="Ids of its grids, oldest first (see /batches/{id}).")


class CampaignSubmitOut(Schema):
    images: int
    batches: list[int]
    campaign: CampaignOut
