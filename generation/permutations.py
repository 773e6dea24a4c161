"""Permutations: one prompt that stands for every combination of its choices.

`{red|blue|green} teapot on {linen|marble}` is six prompts. Each `{…|…}` is
an axis; lists of sizes, aspect ratios and seeds are axes too ("every visual
angle": the same prompt at 1:1, 4:5 and 9:16). Every expansion records the
value it took on each axis, so a grid can be drawn as a labelled table.

`\\{`, `\\}` and `\\|` write the characters themselves. Pure functions: no
database, no settings; the caller passes the cap.
"""

import math
import re
from dataclasses import dataclass, field
from itertools import product

from .requests import InvalidRequest

ESCAPES = {"{", "}", "|"}
SIZE_AXIS, ASPECT_AXIS, SEED_AXIS = "size", "aspect", "seed"
# Commas, semicolons or whitespace separate the values of a list field.
LIST_SEPARATORS = re.compile(r"[,;\s]+")


def choice_axis(number: int) -> str:
    """The name of a prompt's n-th choice group (1-based): "choice 1"."""
    return f"choice {number}"


def _refuse(message: str) -> None:
    raise InvalidRequest({"prompt": message})


def parse_template(text: str) -> list[str | tuple[str, ...]]:
    """The prompt as literal strings and choice groups (tuples of options).

    Positions in the messages count characters from 1, as an editor does.
    """
    parts: list[str | tuple[str, ...]] = []
    literal: list[str] = []
    options: list[str] | None = None  # inside a group: the options so far
    current: list[str] = []
    opened_at = 0
    index = 0
    while index < len(text):
        char = text[index]
        position = index + 1
        if char == "\\" and index + 1 < len(text) and text[index + 1] in ESCAPES:
            (current if options is not None else literal).append(text[index + 1])
            index += 2
            continue
        if char == "{":
            if options is not None:
                _refuse(
                    f"Choices cannot be nested: a second “{{” at position {position} is inside "
                    f"the group opened at position {opened_at}. Write \\{{ for a literal brace."
                )
            parts.append("".join(literal))
            literal, options, current, opened_at = [], [], [], position
        elif char == "|" and options is not None:
            _check_option(current, position, opened_at)
            options.append("".join(current).strip())
            current = []
        elif char == "}":
            if options is None:
                _refuse(
                    f"The “}}” at position {position} closes no group. "
                    "Write \\} for a literal brace."
                )
            _check_option(current, position, opened_at)
            options.append("".join(current).strip())
            parts.append(tuple(options))
            options, current = None, []
        else:
            (current if options is not None else literal).append(char)
        index += 1
    if options is not None:
        _refuse(
            f"The “{{” at position {opened_at} is never closed; end the group with “}}” "
            "or write \\{ for a literal brace."
        )
    parts.append("".join(literal))
    return [part for part in parts if part != ""]


def _check_option(current: list[str], position: int, opened_at: int) -> None:
    if not "".join(current).strip():
        _refuse(
            f"The group opened at position {opened_at} has an empty choice "
            f"(before position {position}); remove the extra “|” or write something."
        )


def has_choices(text: str) -> bool:
    """Whether the prompt has a choice group (an unescaped “{”)."""
    return any(isinstance(part, tuple) for part in parse_template(text))


@dataclass(frozen=True)
class Variant:
    """One combination: its prompt, size, ratio, seed (None: the next in a row) and axis values."""

    prompt: str
    size: str
    aspect: str
    seed: int | None
    axes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Axes:
    """The list axes besides the prompt's choices; an empty list means "just the base value"."""

    size: str
    aspect: str
    sizes: tuple[str, ...] = ()
    aspects: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()


def variant_count(parts, axes: Axes) -> int:
    groups = [len(part) for part in parts if isinstance(part, tuple)]
    lists = [len(values) for values in (axes.sizes, axes.aspects, axes.seeds) if values]
    return math.prod(groups + lists)


def expand(text: str, axes: Axes, *, count: int = 1, limit: int) -> list[Variant]:
    """Every combination, in reading order (the last axis varies fastest).

    `count` images are made of each; more than `limit` images in all is
    refused before a single combination is built.
    """
    parts = parse_template(text)
    total = variant_count(parts, axes) * count
    if total > limit:
        _refuse(
            f"These choices make {total:,} images; the limit is {limit:,}. "
            "Remove some choices or lower the number per prompt."
        )
    groups = [part for part in parts if isinstance(part, tuple)]
    sizes = axes.sizes or (axes.size,)
    aspects = axes.aspects or (axes.aspect,)
    seeds: tuple[int | None, ...] = axes.seeds or (None,)
    variants = []
    for chosen in product(*groups, sizes, aspects, seeds):
        picks, (size, aspect, seed) = chosen[: len(groups)], chosen[len(groups) :]
        words, recorded, pick = [], {}, iter(picks)
        for part in parts:
            if isinstance(part, tuple):
                value = next(pick)
                words.append(value)
                recorded[choice_axis(len(recorded) + 1)] = value
            else:
                words.append(part)
        if axes.sizes:
            recorded[SIZE_AXIS] = size
        if axes.aspects:
            recorded[ASPECT_AXIS] = aspect
        if axes.seeds:
            recorded[SEED_AXIS] = str(seed)
        variants.append(
            Variant(
                prompt="".join(words).strip(), size=size, aspect=aspect, seed=seed, axes=recorded
            )  # fmt: skip
        )
    return variants


def parse_list(value) -> tuple[str, ...]:
    """A list field from a form ("1:1, 4:5 9:16"), a JSON list, or nothing; no repeats."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    words = [w for item in items for w in LIST_SEPARATORS.split(str(item).strip()) if w]
    return tuple(dict.fromkeys(words))
