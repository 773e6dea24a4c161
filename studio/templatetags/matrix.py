"""{% matrix_of tiles as matrix %}: a grid's tiles arranged by the axes its images vary along.

Two or more varying axes make a table (rows by the first, columns by the
second, as an X/Y plot); one makes labelled groups; none, no matrix (the
plain tile grid). The tiles themselves are drawn by {% tiles %} unchanged.
"""

from dataclasses import dataclass, field

from django import template

from generation.permutations import ASPECT_AXIS, SEED_AXIS, SIZE_AXIS

register = template.Library()

LIST_AXES = (SIZE_AXIS, ASPECT_AXIS, SEED_AXIS)


@dataclass
class Matrix:
    row_axis: str
    column_axis: str = ""
    rows: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    # [(row value, [(column value, [tiles])])] in the order the values first appear.
    cells: list = field(default_factory=list)


def axis_order(axis: str) -> tuple:
    """The prompt's choices in reading order, then size, aspect and seed.

    Not the stored key order: PostgreSQL's jsonb keeps an object's keys
    sorted by length, so "seed" would come back before "choice 1".
    """
    if axis.startswith("choice "):
        return (0, int(axis.removeprefix("choice ")))
    return (1, LIST_AXES.index(axis) if axis in LIST_AXES else len(LIST_AXES), axis)


def varying_axes(tiles) -> list[str]:
    values: dict[str, set] = {}
    for tile in tiles:
        for axis, value in (tile.axes or {}).items():
            values.setdefault(axis, set()).add(value)
    return sorted((axis for axis, seen in values.items() if len(seen) > 1), key=axis_order)


@register.simple_tag
def matrix_of(tiles) -> Matrix | None:
    axes = varying_axes(tiles)
    if not axes:
        return None
    row_axis = axes[0]
    column_axis = axes[1] if len(axes) > 1 else ""
    rows = list(dict.fromkeys(t.axes.get(row_axis, "") for t in tiles))
    columns = (
        list(dict.fromkeys(t.axes.get(column_axis, "") for t in tiles)) if column_axis else [""]
    )
    placed = {(r, c): [] for r in rows for c in columns}
    for tile in tiles:
        key = (tile.axes.get(row_axis, ""), tile.axes.get(column_axis, "") if column_axis else "")
        placed[key].append(tile)
    cells = [(r, [(c, placed[(r, c)]) for c in columns]) for r in rows]
    return Matrix(row_axis=row_axis, column_axis=column_axis, rows=rows, columns=columns,
                  cells=cells)  # fmt: skip
