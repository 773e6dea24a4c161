"""Turning what a person typed into a valid batch request, or saying why not.

Pages and the API both go through `parse_batch_request`, so the rules and
the wording of every refusal are the same wherever a batch comes from.
"""

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings

from . import catalog
from .imaging import CleanMask, UnusableImage, clean_mask

PROMPT_MAX = 10_000
INSTRUCTION_MAX = 10_000
STRENGTHS = ("subtle", "strong")
MAX_REFERENCES = 14
SEED_MAX = 2**31 - 1
# The largest row id a 64-bit integer column holds (SQLite, PostgreSQL bigint):
# a larger number cannot name a row, and handing it to the database is an
# overflow error rather than "no such row".
ID_MAX = 2**63 - 1
# Days a filter may name. The calendar ends at 9999-12-31, but "until" means
# "before the next midnight" and a time zone shifts midnight by hours, so the
# edges of the calendar overflow; no image is older than 1900 or newer than 2999.
DAY_MIN = date(1900, 1, 1)
DAY_MAX = date(2999, 12, 31)
# C0 and C1 control characters except tab and newline.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class InvalidRequest(Exception):
    """A request that cannot be made; `errors` maps each field to what is wrong."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class BatchRequest:
    prompts: tuple[str, ...]
    tier: str
    size: str
    aspect: str
    count: int  # images per prompt
    seed: int
    seed_locked: bool
    reference_ids: tuple[int, ...] = field(default=())
    per_line: bool = False
    fresh: bool = False
    lane: str = "interactive"  # or "batch": the provider's batch endpoint

    @property
    def total(self) -> int:
        return self.count * len(self.prompts)

    @property
    def prompt_text(self) -> str:
        return "\n".join(self.prompts)


LANES = ("interactive", "batch")


def parse_id(value) -> int | None:
    """A row id from a form, a query string or a JSON number, or None.

    ASCII digits only (str.isdigit also accepts "²", which int() refuses)
    and no larger than ID_MAX.
    """
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(ID_MAX)):
        return None
    number = int(text)
    return number if number <= ID_MAX else None


def parse_ids(values, *, limit: int | None = None) -> list[int]:
    ids = [i for i in map(parse_id, values) if i is not None]
    return ids[:limit] if limit else ids


def day_in_range(day: date) -> date:
    """The day itself, or ValueError saying which days a filter takes."""
    if not DAY_MIN <= day <= DAY_MAX:
        raise ValueError(
            f"Choose a day between {DAY_MIN.isoformat()} and {DAY_MAX.isoformat()} "
            f"({day.isoformat()} is outside them)."
        )
    return day


def parse_day(value) -> date | None:
    """A YYYY-MM-DD day from a query string, None when empty, or ValueError in words."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"“{text[:20]}” is not a day; write it as YYYY-MM-DD.")
    return day_in_range(day)


def clean_prompt(raw: str) -> str:
    return CONTROL_CHARACTERS.sub("", raw or "").strip()


def max_count(tier: str) -> int:
    return settings.PRO_MAX_COUNT if tier == catalog.PRO else settings.FLASH_MAX_COUNT


def _int(value, name: str, errors: dict, message: str) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        errors[name] = message
        return None


def _flag(data: Mapping, name: str) -> bool:
    return str(data.get(name, "")).lower() in ("1", "true", "on", "yes")


def parse_batch_request(data: Mapping, reference_ids=()) -> BatchRequest:
    errors: dict[str, str] = {}

    prompt = clean_prompt(str(data.get("prompt", "")))
    per_line = _flag(data, "per_line")
    if not prompt:
        errors["prompt"] = "Write a prompt first."
    elif len(prompt) > PROMPT_MAX:
        errors["prompt"] = f"The prompt is {len(prompt):,} characters; the limit is {PROMPT_MAX:,}."
    prompts = (
        tuple(line.strip() for line in prompt.splitlines() if line.strip())
        if per_line
        else (prompt,)
    )

    tier = str(data.get("tier", "")).strip().lower()
    if tier not in catalog.TIERS:
        errors["tier"] = "Choose Flash or Pro."
    size = str(data.get("size", "")).strip().upper()
    aspect = str(data.get("aspect", "")).strip()
    if tier in catalog.TIERS:
        label = catalog.TIER_LABELS[tier]
        if size not in catalog.SIZES[tier]:
            offered = ", ".join(catalog.SIZES[tier])
            errors["size"] = f"{label} renders at {offered}."
        if aspect not in catalog.ASPECTS[tier]:
            errors["aspect"] = f"{label} does not offer the aspect ratio “{aspect[:10]}”."

    count = _int(
        data.get("count", 1), "count", errors, "The number of images must be a whole number."
    )
    if count is not None and tier in catalog.TIERS:
        limit = max_count(tier)
        if not 1 <= count <= limit:
            errors["count"] = f"Choose between 1 and {limit} images."
        elif len(prompts) * count > limit:
            errors["count"] = (
                f"{len(prompts)} prompts × {count} images is {len(prompts) * count}; "
                f"the limit is {limit} per grid."
            )

    seed_value = str(data.get("seed", "")).strip()
    seed_locked = bool(seed_value)
    if not seed_locked and str(data.get("seed_mode", "")) == "locked":
        # "Locked" with nothing to lock would silently draw a random seed.
        errors["seed"] = "Enter the seed to lock, or choose Random seed."
    seed = secrets.randbelow(SEED_MAX - 1000) if not seed_locked else None
    if seed_locked:
        seed = _int(seed_value, "seed", errors, "The seed must be a whole number.")
        if seed is not None and not 0 <= seed <= SEED_MAX - 1000:
            errors["seed"] = f"The seed must be between 0 and {SEED_MAX - 1000:,}."

    refs: list[int] = []
    for value in reference_ids:
        ref = parse_id(value)
        if ref is None:
            errors["references"] = "Unknown reference image."
        elif ref not in refs:
            refs.append(ref)
    if len(refs) > MAX_REFERENCES:
        errors["references"] = (
            f"Use at most {MAX_REFERENCES} reference images ({len(refs)} chosen)."
        )

    lane = str(data.get("lane", "") or "interactive").strip().lower()
    if lane not in LANES:
        errors["lane"] = "Choose the interactive lane or the batch lane."

    if errors:
        raise InvalidRequest(errors)
    return BatchRequest(
        prompts=prompts,
        tier=tier,
        size=size,
        aspect=aspect,
        count=count,
        seed=seed,
        seed_locked=seed_locked,
        reference_ids=tuple(refs),
        per_line=per_line,
        fresh=_flag(data, "fresh"),
        lane=lane,
    )


def parse_instructions(values, *, tier: str) -> tuple[str, ...]:
    """Edit instructions: one image each, every one 1–10,000 characters.

    A single string is split into lines, as the page's textarea sends it.
    """
    if isinstance(values, str):
        values = values.splitlines()
    instructions = tuple(text for text in (clean_prompt(str(v)) for v in values or ()) if text)
    if not instructions:
        raise InvalidRequest({"instructions": "Write what to change, one instruction per line."})
    for text in instructions:
        if len(text) > INSTRUCTION_MAX:
            raise InvalidRequest(
                {
                    "instructions": f"An instruction is {len(text):,} characters; "
                    f"the limit is {INSTRUCTION_MAX:,}."
                }
            )
    limit = max_count(tier) if tier in catalog.TIERS else settings.FLASH_MAX_COUNT
    if len(instructions) > limit:
        raise InvalidRequest(
            {"instructions": f"{len(instructions)} instructions; the limit is {limit} per grid."}
        )
    return instructions


def parse_mask(data: bytes | None, *, size: tuple[int, int]) -> CleanMask | None:
    """A region edit's painted mask (white = change, black = keep) for a source image of
    `size` pixels; None when none was sent, which is a plain edit."""
    if not data:
        return None
    try:
        return clean_mask(data, size=size)
    except UnusableImage as error:
        raise InvalidRequest({"mask": str(error)})
