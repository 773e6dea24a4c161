"""What leaves the gallery as files: the ZIP's manifest and the PDF contact sheet.

The manifest says, per file in a download, how the image was made and what
it cost, in CSV (for a spreadsheet) and JSON (for a script). The contact
sheet is the photographer's sheet a client marks up with a pen: thumbnails
in rows, each with its seed, tier, a star if starred, boxes to tick and
rate, and the prompt and date beside it. It is drawn with reportlab from
the stored WebP thumbnails, one image decoded at a time.
"""

from __future__ import annotations

import csv
import io
import json
from math import cos, pi, sin

from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen import canvas

from billing.selectors import csv_safe
from generation.imaging import METADATA_KEY, png_with_text, read_metadata
from generation.models import Generation

MANIFEST_FIELDS = (
    "file", "id", "prompt", "seed", "tier", "size", "aspect", "model",
    "cost", "who", "when", "parent", "cached_from",
)  # fmt: skip


def _when(generation: Generation) -> str:
    return timezone.localtime(generation.finished_at or generation.created).isoformat(
        timespec="seconds"
    )


def manifest_row(generation: Generation, file: str) -> dict:
    """One file of a download: what made it, what it cost (credits), who and when."""
    return {
        "file": file,
        "id": generation.pk,
        "prompt": generation.prompt,
        "seed": generation.seed,
        "tier": generation.tier,
        "size": generation.size,
        "aspect": generation.aspect,
        "model": generation.model,
        "cost": generation.credits_charged,
        "who": generation.member.username,
        "when": _when(generation),
        "parent": generation.parent_id,
        "cached_from": getattr(generation, "cached_from", None),
    }


def manifest_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {key: "" if value is None else csv_safe(value) for key, value in row.items()}
        )
    return out.getvalue().encode("utf-8")


def manifest_json(rows: list[dict]) -> bytes:
    return json.dumps({"images": rows}, ensure_ascii=False, indent=2).encode("utf-8")


def source_of(png: bytes) -> int | None:
    """The id of the image whose render this file is, from its embedded metadata."""
    try:
        return read_metadata(png).get("generation")
    except (KeyError, ValueError, OSError):
        return None


def original_as_its_own(generation: Generation, png: bytes) -> bytes:
    """The original with embedded metadata naming this image, not the one it was cached from.

    A cache hit shares the stored file of the image first rendered, whose
    metadata names that image. Downloaded under this image's name, the
    file says so too, and where it came from. Splicing the text chunk
    costs microseconds; the pixels are not decoded.
    """
    try:
        meta = read_metadata(png)
    except (KeyError, ValueError, OSError):
        return png  # not one of ours: nothing to correct
    source = meta.get("generation")
    if source == generation.pk:
        return png
    meta = {**meta, "generation": generation.pk, "cached_from": source}
    texts = {key: value for key, value in Image.open(io.BytesIO(png)).text.items()}
    texts[METADATA_KEY] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
    return png_with_text(png, texts)


# --- the contact sheet ------------------------------------------------------------------

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 14 * mm
COLUMNS = 3
GUTTER = 5 * mm
THUMB = 40 * mm  # the longer side of a thumbnail
LINE = 9.5
ROW_HEIGHT = THUMB + 2 * LINE + 4  # thumbnail, the details line, the marks line
TEXT_WIDTH = (PAGE_WIDTH - 2 * MARGIN - (COLUMNS - 1) * GUTTER) / COLUMNS
FONT, BOLD = "Helvetica", "Helvetica-Bold"
INK, GREY, PRO, FLASH = (0.12, 0.13, 0.14), (0.45, 0.47, 0.5), (0.45, 0.28, 0.84), (0.04, 0.5, 0.72)


def _star(pdf: canvas.Canvas, x: float, y: float, radius: float, filled: bool) -> None:
    """A five-pointed star centred on (x, y): the Helvetica fonts have no ★ glyph."""
    path = pdf.beginPath()
    for point in range(10):
        r = radius if point % 2 == 0 else radius * 0.45
        angle = pi / 2 + point * pi / 5
        px, py = x + r * cos(angle), y + r * sin(angle)
        path.moveTo(px, py) if point == 0 else path.lineTo(px, py)
    path.close()
    pdf.drawPath(path, stroke=1, fill=1 if filled else 0)


def _thumbnail(generation: Generation) -> ImageReader | None:
    """The stored thumbnail as a JPEG, which the PDF embeds as it is (a tenth of raw pixels)."""
    try:
        with default_storage.open(generation.asset.thumbnail.name, "rb") as handle:
            image = Image.open(handle)
            image.load()
    except (FileNotFoundError, OSError, ValueError):
        return None
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, "JPEG", quality=88)
    jpeg.seek(0)
    return ImageReader(jpeg)


def _cell(pdf: canvas.Canvas, generation: Generation, x: float, top: float) -> None:
    """One image: thumbnail on top of its column, details and marks under it."""
    width = TEXT_WIDTH
    picture = _thumbnail(generation) if generation.asset_id else None
    box_height = THUMB
    if picture is not None:
        pw, ph = picture.getSize()
        scale = min(width / pw, THUMB / ph)
        w, h = pw * scale, ph * scale
        pdf.drawImage(picture, x, top - h, w, h)
        pdf.setStrokeColorRGB(0.8, 0.8, 0.8)
        pdf.rect(x, top - h, w, h, stroke=1, fill=0)
        box_height = h
    else:
        pdf.setStrokeColorRGB(*GREY)
        pdf.rect(x, top - THUMB, width, THUMB, stroke=1, fill=0)
        pdf.setFont(FONT, 8)
        pdf.setFillColorRGB(*GREY)
        pdf.drawString(x + 4, top - THUMB / 2, generation.get_status_display())
    y = top - box_height - LINE
    tier_colour = PRO if generation.tier == "pro" else FLASH
    pdf.setFillColorRGB(*tier_colour)
    pdf.setFont(BOLD, 8)
    label = f"{generation.get_tier_display()} {generation.size}"
    pdf.drawString(x, y, label)
    pdf.setFillColorRGB(*INK)
    pdf.setFont(FONT, 8)
    offset = pdf.stringWidth(label, BOLD, 8) + 5
    pdf.drawString(x + offset, y, f"seed {generation.seed} · #{generation.pk}")
    # Marks for the pen: a star (filled when starred in the app), a pick box
    # and five rating circles.
    pdf.setStrokeColorRGB(*INK)
    pdf.setFillColorRGB(0.95, 0.7, 0.15)
    _star(pdf, x + width - 4, y + 3, 4, generation.starred)
    pdf.setFillColorRGB(*INK)
    mark_y = y - LINE
    pdf.rect(x, mark_y - 1, 7, 7, stroke=1, fill=0)
    pdf.setFont(FONT, 7)
    pdf.drawString(x + 10, mark_y, "pick")
    # A rating given in the app (if the gallery keeps one) fills its circles.
    rating = getattr(generation, "rating", 0) or 0
    for dot in range(5):
        pdf.circle(x + 36 + dot * 9, mark_y + 2.5, 3, stroke=1, fill=1 if dot < rating else 0)
    pdf.setFillColorRGB(*GREY)
    pdf.drawRightString(x + width, mark_y, _when(generation)[:16].replace("T", " "))


def _prompt_margin(pdf: canvas.Canvas, prompts: list[tuple[int, str]], x: float, top: float):
    """The prompts of a row, numbered, in the margin under it."""
    pdf.setFont(FONT, 7.5)
    pdf.setFillColorRGB(*INK)
    y = top
    for pk, prompt in prompts:
        lines = simpleSplit(f"#{pk}  {prompt}", FONT, 7.5, PAGE_WIDTH - 2 * MARGIN)[:2]
        for line in lines:
            pdf.drawString(x, y, line)
            y -= LINE
    return y


def contact_sheet_pdf(generations: list[Generation], *, title: str, team_name: str) -> bytes:
    """A4 pages of thumbnails, COLUMNS to a row, with marks to fill in and prompts beside."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"Contact sheet — {title}")
    pdf.setAuthor(team_name)
    printed = timezone.localtime().strftime("%d %b %Y %H:%M")
    page = 0

    def header() -> float:
        nonlocal page
        page += 1
        pdf.setFont(BOLD, 12)
        pdf.setFillColorRGB(*INK)
        pdf.drawString(MARGIN, PAGE_HEIGHT - MARGIN, simpleSplit(title, BOLD, 12, 130 * mm)[0])
        pdf.setFont(FONT, 8)
        pdf.setFillColorRGB(*GREY)
        pdf.drawRightString(
            PAGE_WIDTH - MARGIN,
            PAGE_HEIGHT - MARGIN,
            f"{team_name} · {len(generations)} image{'s' if len(generations) != 1 else ''}"
            f" · printed {printed} · page {page}",
        )
        return PAGE_HEIGHT - MARGIN - 8 * mm

    top = header()
    for start in range(0, len(generations), COLUMNS):
        row = generations[start : start + COLUMNS]
        distinct = list(dict.fromkeys(g.prompt for g in row))
        needed = ROW_HEIGHT + LINE * (1 + 2 * len(distinct)) + 4 * mm
        if top - needed < MARGIN:
            pdf.showPage()
            top = header()
        for column, generation in enumerate(row):
            _cell(pdf, generation, MARGIN + column * (TEXT_WIDTH + GUTTER), top)
        # One prompt line per distinct prompt: a grid repeats one prompt.
        first_ids = [next(g.pk for g in row if g.prompt == p) for p in distinct]
        bottom = _prompt_margin(
            pdf, list(zip(first_ids, distinct, strict=True)), MARGIN, top - ROW_HEIGHT - 6
        )
        top = bottom - 4 * mm
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def sheet_title(generations: list[Generation], *, batch=None) -> str:
    if batch is not None:
        return batch.prompt.splitlines()[0][:90]
    prompts = list(dict.fromkeys(g.prompt for g in generations))
    if len(prompts) == 1:
        return prompts[0][:90]
    return f"Selection of {len(generations)} images"
