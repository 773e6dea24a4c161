"""The offline renderer: deterministic abstract compositions, no key, no network.

It stands in for the real models in development, tests and benchmarks, so it
has to behave like one where the product can tell: exact output sizes, the
same pixels for the same request, different pictures for different prompts
and seeds, references that visibly steer the result, Pro richer than Flash,
and an optional per-tier delay.

Everything is drawn at a quarter (Flash) or a third (Pro) of the output size
and scaled up with BICUBIC, which keeps the shapes soft and a 1K image well
under 100 ms including PNG encoding. Layouts live in unit coordinates, so a
prompt and seed keep their composition across sizes and aspect ratios, and a
Pro render of a Flash draft looks like a finished version of it: promoting
sends the draft as the last reference, and the renderer then lays out the
draft's own composition (its prompt, seed and references, read from the
parameters embedded in the draft) and adds the Pro layers on top, instead of
taking the draft for one more colour source and drawing something else.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import math
import random
import time

from django.conf import settings
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from generation import catalog
from generation.cpu_slots import cpu_slot

from .base import PermanentError, RenderRequest, RenderResult

RGB = tuple[int, int, int]


class OfflineProvider:
    name = "offline"
    label = "Offline renderer"

    def render(self, request: RenderRequest) -> RenderResult:
        if not catalog.offers(request.tier, request.size, request.aspect):
            raise PermanentError(
                f"{catalog.TIER_LABELS.get(request.tier, request.tier)} does not offer "
                f"{request.size} at {request.aspect}.",
                detail=f"offline: tier={request.tier} size={request.size} aspect={request.aspect}",
            )
        started = time.monotonic()
        with cpu_slot():
            image = _draw(request)
            buffer = io.BytesIO()
            # Level 1: the pictures are smooth, so fast compression costs little size.
            image.save(buffer, format="PNG", compress_level=1)
            del image
        # The configured latency stands for a remote model's: time spent
        # waiting, holding no CPU slot, never past the render's deadline.
        latency = getattr(settings, f"OFFLINE_{request.tier.upper()}_LATENCY", 0) or 0
        remaining = latency - (time.monotonic() - started)
        if request.deadline is not None:
            remaining = min(remaining, request.deadline - time.monotonic())
        if remaining > 0:
            time.sleep(remaining)
        return RenderResult(
            image=buffer.getvalue(), mime_type="image/png", model=request.model, usage={}
        )


def _draw(request: RenderRequest) -> Image.Image:
    """Edits and variations start from their source image (offline_edits); the rest from words."""
    if request.source and (request.is_edit or request.variation):
        from .offline_edits import edit_image, vary_image

        return edit_image(request) if request.is_edit else vary_image(request, render_image)
    return render_image(request)


def render_image(request: RenderRequest) -> Image.Image:
    width, height = catalog.pixel_size(request.size, request.aspect)
    pro = request.tier == catalog.PRO
    divisor = 3 if pro else 4
    work = (max(48, round(width / divisor)), max(48, round(height / divisor)))

    references, draft = _composition_references(request)
    reference_hashes = [hashlib.sha256(data).digest() for data in references]
    reference_colors = [
        _average_color(data, digest)
        for data, digest in zip(references, reference_hashes, strict=True)
    ]
    reference_digest = hashlib.sha256(b"".join(reference_hashes)).digest()
    palette = _palette(request.prompt, reference_colors)
    # Python's hash() is salted per process; sha256 keeps renders stable everywhere.
    composition = random.Random(
        hashlib.sha256(
            b"composition\0"
            + request.prompt.encode()
            + b"\0"
            + str(request.seed).encode()
            + b"\0"
            + reference_digest
        ).digest()
    )
    canvas = _Canvas(work, palette, composition)
    canvas.background()
    canvas.horizon()
    shapes = canvas.shapes(count=composition.randint(4, 7))
    canvas.pattern(fine=False)
    if pro:
        # Extra layers drawn from their own stream so the Flash layout above stays put.
        extra = random.Random(composition.getrandbits(64))
        canvas.rng = extra
        canvas.shadow(shapes)
        canvas.shapes(count=extra.randint(3, 6), small=True)
        canvas.pattern(fine=True)
        canvas.light()
        canvas.vignette()
        if draft is not None:
            canvas.follow(draft)
    # ImageDraw does not anti-alias: soften the working picture by less than
    # a pixel so its stair-steps do not become blocks when scaled up.
    softened = canvas.image.filter(ImageFilter.GaussianBlur(0.6))
    return softened.resize((width, height), Image.Resampling.BICUBIC)


# The key under which the pipeline embeds a render's parameters in its PNG
# (generation.imaging.METADATA_KEY; not imported, providers stand alone).
PARAMETERS_KEY = "contact-sheet"


def _draft_parameters(data: bytes) -> dict | None:
    """The embedded parameters of one of our renders, or None for any other image."""
    if not data.startswith(b"\x89PNG"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return json.loads(image.text[PARAMETERS_KEY])  # text chunks precede the pixels
    except (OSError, KeyError, ValueError, Image.DecompressionBombError):
        return None


def _composition_references(request: RenderRequest) -> tuple[tuple[bytes, ...], bytes | None]:
    """(the references that choose palette and layout, the draft followed or None).

    A Pro render whose last reference is the Flash draft of the same prompt
    and seed takes the draft's references instead (those of the batch whose
    hashes the draft names), so it draws the draft's shapes where the draft
    has them. Any other request uses its references as they are.
    """
    if request.tier != catalog.PRO or not request.references:
        return request.references, None
    draft = _draft_parameters(request.references[-1])
    if not (
        draft
        and draft.get("tier") == catalog.FLASH
        and draft.get("prompt") == request.prompt
        and draft.get("seed") == request.seed
    ):
        return request.references, None
    named = set(draft.get("references") or ())
    kept = tuple(r for r in request.references[:-1] if hashlib.sha256(r).hexdigest() in named)
    return kept, request.references[-1]


def _palette(prompt: str, reference_colors: list[RGB]) -> list[RGB]:
    """Five colors: a hue scheme chosen by the prompt, pulled toward the references."""
    digest = hashlib.sha256(b"palette\0" + prompt.encode()).digest()
    base = digest[0] / 255
    offsets = [
        (0, 0.05, 0.1, -0.05, 0.5),  # analogous with one accent
        (0, 0.5, 0.08, 0.58, 0.25),  # complementary
        (0, 1 / 3, 2 / 3, 0.05, 0.38),  # triadic
        (0, 0.42, 0.58, 0.1, 0.9),  # split complementary
    ][digest[1] % 4]
    colors = []
    for index, offset in enumerate(offsets):
        saturation = 0.35 + digest[2 + index] / 255 * 0.55
        value = 0.3 + digest[8 + index] / 255 * 0.65
        if index == 0:
            value = 0.15 + digest[8] / 255 * 0.35  # a darker ground makes shapes read
        red, green, blue = colorsys.hsv_to_rgb((base + offset) % 1, saturation, value)
        colors.append((round(red * 255), round(green * 255), round(blue * 255)))
    if reference_colors:
        colors = [
            _mix(color, reference_colors[index % len(reference_colors)], 0.55)
            for index, color in enumerate(colors)
        ]
    return colors


# Every image of a grid carries the same references: decode each once per
# process, not once per image (a 2048 px PNG still takes tens of milliseconds).
_REFERENCE_COLORS: dict[bytes, RGB] = {}
_REFERENCE_COLORS_KEPT = 1024


def _average_color(data: bytes, digest: bytes) -> RGB:
    """The mean color of a reference (remembered by its hash)."""
    color = _REFERENCE_COLORS.get(digest)
    if color is None:
        if len(_REFERENCE_COLORS) >= _REFERENCE_COLORS_KEPT:
            _REFERENCE_COLORS.clear()
        color = _REFERENCE_COLORS[digest] = _measure_color(data)
    return color


def _measure_color(data: bytes) -> RGB:
    """The mean color of a reference, or a color from its hash if Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (64, 64))  # JPEG decodes at reduced scale: cheap on big files
            image.thumbnail((64, 64))
            mean = ImageStat.Stat(image.convert("RGB")).mean
        return (round(mean[0]), round(mean[1]), round(mean[2]))
    except (OSError, ValueError, Image.DecompressionBombError):
        digest = hashlib.sha256(data).digest()
        return (digest[0], digest[1], digest[2])


def _mix(first: RGB, second: RGB, amount: float) -> RGB:
    return tuple(round(a + (b - a) * amount) for a, b in zip(first, second, strict=True))


class _Canvas:
    """The working-size picture and the drawing steps that build it up."""

    def __init__(self, size: tuple[int, int], palette: list[RGB], rng: random.Random):
        self.size = size
        self.width, self.height = size
        self.unit = math.sqrt(self.width * self.height)
        self.palette = palette
        self.rng = rng
        self.image = Image.new("RGB", size, palette[0])

    def _point(self) -> tuple[float, float]:
        return self.rng.uniform(0, self.width), self.rng.uniform(0, self.height)

    def _color(self, alpha: int) -> tuple[int, int, int, int]:
        return (*self.rng.choice(self.palette[1:]), alpha)

    def _overlay(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        layer = Image.new("RGBA", self.size, (0, 0, 0, 0))
        return layer, ImageDraw.Draw(layer)

    def _radial(self, x: float, y: float, radius: float) -> Image.Image:
        """A working-size mask: 0 at (x, y), rising to 255 at `radius` and beyond."""
        mask = Image.new("L", self.size, 255)
        side = max(2, round(radius * 2))
        gradient = Image.radial_gradient("L").resize((side, side), Image.Resampling.BILINEAR)
        mask.paste(gradient, (round(x - side / 2), round(y - side / 2)))
        return mask

    def _merge(self, layer: Image.Image) -> None:
        self.image = Image.alpha_composite(self.image.convert("RGBA"), layer).convert("RGB")

    def background(self) -> None:
        """A linear or radial gradient between the ground color and a second one."""
        if self.rng.random() < 0.6:
            mask = Image.linear_gradient("L").resize((362, 362))
            mask = mask.rotate(self.rng.uniform(0, 360), resample=Image.Resampling.BICUBIC)
            mask = mask.crop((53, 53, 309, 309))
        else:
            x, y = self._point()
            mask = ImageChops.invert(self._radial(x, y, self.rng.uniform(0.6, 1.2) * self.unit))
        mask = mask.resize(self.size, Image.Resampling.BILINEAR)
        far = _mix(self.palette[0], self.rng.choice(self.palette[1:]), 0.7)
        self.image = Image.composite(Image.new("RGB", self.size, far), self.image, mask)

    def horizon(self) -> None:
        """Sometimes a band of rolling hills, a landscape-like anchor."""
        if self.rng.random() < 0.45:
            return
        layer, draw = self._overlay()
        level = self.rng.uniform(0.5, 0.8) * self.height
        waves = [
            (self.rng.uniform(0.5, 4), self.rng.uniform(0, 6.3), self.rng.uniform(0.02, 0.08))
            for _ in range(3)
        ]
        points = [(0.0, float(self.height))]
        steps = 48
        for step in range(steps + 1):
            x = self.width * step / steps
            y = level + sum(
                amplitude * self.height * math.sin(frequency * 6.283 * step / steps + phase)
                for frequency, phase, amplitude in waves
            )
            points.append((x, y))
        points.append((float(self.width), float(self.height)))
        draw.polygon(points, fill=self._color(self.rng.randint(170, 240)))
        self._merge(layer)

    def shapes(self, count: int, small: bool = False) -> Image.Image:
        """Ellipses, rectangles, triangles and rings; returns their layer for shadows."""
        layer, draw = self._overlay()
        low, high = (0.03, 0.12) if small else (0.08, 0.38)
        for _ in range(count):
            x, y = self._point()
            radius = self.rng.uniform(low, high) * self.unit
            fill = self._color(self.rng.randint(150, 235))
            kind = self.rng.choice(("ellipse", "rectangle", "triangle", "ring", "rounded"))
            box = (x - radius, y - radius * self.rng.uniform(0.5, 1.2), x + radius, y + radius)
            if kind == "ellipse":
                draw.ellipse(box, fill=fill)
            elif kind == "rectangle":
                draw.regular_polygon((x, y, radius), 4, rotation=self.rng.uniform(0, 90), fill=fill)
            elif kind == "triangle":
                draw.regular_polygon(
                    (x, y, radius), 3, rotation=self.rng.uniform(0, 120), fill=fill
                )
            elif kind == "ring":
                width = max(1, round(radius * self.rng.uniform(0.12, 0.3)))
                draw.ellipse(
                    (x - radius, y - radius, x + radius, y + radius), outline=fill, width=width
                )
            else:
                draw.rounded_rectangle(box, radius=radius * 0.3, fill=fill)
        self._merge(layer)
        return layer

    def pattern(self, fine: bool) -> None:
        """Stripes, dots, rings or a checkerboard over part of the picture."""
        layer, draw = self._overlay()
        spacing = self.unit * (
            self.rng.uniform(0.015, 0.03) if fine else self.rng.uniform(0.04, 0.09)
        )
        spacing = max(2.0, spacing)
        color = self._color(self.rng.randint(40, 90) if fine else self.rng.randint(60, 120))
        kind = self.rng.choice(("stripes", "dots", "rings", "checker"))
        line = max(1, round(spacing / 4))
        if kind == "stripes":
            slope = self.rng.uniform(-1.5, 1.5)
            offset = -abs(slope) * self.height
            while offset < self.width + abs(slope) * self.height:
                draw.line(
                    (offset, 0, offset + slope * self.height, self.height), fill=color, width=line
                )
                offset += spacing
        elif kind == "dots":
            radius = spacing * 0.22
            row = 0
            y = spacing / 2
            while y < self.height:
                x = spacing / 2 + (spacing / 2 if row % 2 else 0)
                while x < self.width:
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
                    x += spacing
                y += spacing
                row += 1
        elif kind == "rings":
            x, y = self._point()
            radius = spacing
            while radius < self.unit * 1.5:
                draw.ellipse(
                    (x - radius, y - radius, x + radius, y + radius), outline=color, width=line
                )
                radius += spacing
        else:
            cell = spacing * 1.5
            for row in range(math.ceil(self.height / cell)):
                for column in range(row % 2, math.ceil(self.width / cell), 2):
                    draw.rectangle(
                        (column * cell, row * cell, (column + 1) * cell, (row + 1) * cell),
                        fill=color,
                    )
        # Confine the pattern to a soft half of the picture so it reads as texture, not noise.
        mask = Image.linear_gradient("L").rotate(self.rng.choice((0, 90, 180, 270)))
        mask = mask.resize(self.size, Image.Resampling.BILINEAR)
        layer.putalpha(ImageChops.multiply(layer.getchannel("A"), mask))
        self._merge(layer)

    def shadow(self, shapes: Image.Image) -> None:
        """Soft drop shadows under the main shapes (Pro only)."""
        alpha = shapes.getchannel("A").filter(ImageFilter.GaussianBlur(self.unit * 0.02))
        shifted = Image.new("L", self.size, 0)
        shifted.paste(alpha, (round(self.unit * 0.015), round(self.unit * 0.02)))
        alpha = shifted.point(lambda value: value * 45 // 100)
        # Shadows go under the shapes: darken, then put the shapes back on top.
        dark = Image.new("RGB", self.size, _mix(self.palette[0], (0, 0, 0), 0.6))
        self.image = Image.composite(dark, self.image, alpha)
        self._merge(shapes)

    def light(self) -> None:
        """A soft colored light source (Pro only)."""
        x, y = self._point()
        glow = ImageChops.invert(self._radial(x, y, self.rng.uniform(0.35, 0.8) * self.unit))
        glow = glow.point(lambda value: value * value // 255 * 55 // 100)
        tint = Image.new(
            "RGB", self.size, _mix(self.rng.choice(self.palette), (255, 250, 235), 0.7)
        )
        self.image = Image.composite(ImageChops.screen(self.image, tint), self.image, glow)

    def follow(self, draft_png: bytes, amount: float = 0.8) -> None:
        """Keep the draft's broad tones under the Pro detail (a render of a draft).

        The Pro layers (light, shadows, vignette, extra shapes) drawn over the
        draft's layout shift its colours; here the picture's low frequencies
        are pulled most of the way back to the draft's, and its fine detail,
        the high frequencies, stays Pro's.
        """
        try:
            with Image.open(io.BytesIO(draft_png)) as opened:
                draft = opened.convert("RGB").resize(self.size, Image.Resampling.BILINEAR)
        except (OSError, ValueError, Image.DecompressionBombError):
            return
        blur = ImageFilter.GaussianBlur(max(2.0, self.unit * 0.012))
        broad = self.image.filter(blur)
        fine = ImageChops.subtract(self.image, broad, scale=1, offset=128)
        target = Image.blend(broad, draft.filter(blur), amount)
        self.image = ImageChops.add(target, fine, scale=1, offset=-128)

    def vignette(self) -> None:
        """Darkened corners (Pro only)."""
        edge = Image.radial_gradient("L").resize(self.size, Image.Resampling.BILINEAR)
        shade = edge.point(lambda value: 255 - max(0, value - 110) * 70 // 100)
        self.image = ImageChops.multiply(self.image, Image.merge("RGB", (shade, shade, shade)))
