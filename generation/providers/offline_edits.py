"""Edits and variations for the offline renderer: deterministic, and visible at a glance.

An edit keeps the source's layout (it starts from the source's pixels) and
changes what the instruction names, so the whole edit loop can be tried and
tested without a key:

- colour words ("red", "teal", "warmer", "cooler") shift the palette toward
  that colour; "black and white" drains it; "brighter" and "darker" change
  the light;
- "remove" (or "without", "erase", "delete") paints a region over with its
  blurred surroundings, so whatever was there disappears; "add" (or "put",
  "place", "insert") draws new shapes in the image's own colours;
- "left", "right", "top", "bottom" and "centre" say where that happens;
- any other instruction still changes something small (a soft light placed
  by the words), so no edit comes back identical to its source;
- a painted mask (a region edit) limits all of it to the painted area: what
  "remove" paints over and where "add" draws is the mask's region, and every
  pixel outside it is the source's own.

A subtle variation moves the source's pixels a little (a slight reframing,
a small hue and light change, a few small shapes); a strong one renders the
prompt again with a new seed, the source as a reference for its colours.
The same request always gives the same pixels.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import re
from dataclasses import replace

from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageOps, ImageStat

from generation import catalog

from .base import PermanentError, RenderRequest

# Hues in degrees for the colour words an instruction may use.
HUES = {
    "red": 0,
    "crimson": 350,
    "orange": 28,
    "amber": 40,
    "gold": 45,
    "golden": 45,
    "yellow": 55,
    "lime": 90,
    "green": 120,
    "emerald": 140,
    "teal": 175,
    "cyan": 185,
    "turquoise": 180,
    "blue": 220,
    "navy": 230,
    "indigo": 250,
    "violet": 270,
    "purple": 280,
    "magenta": 305,
    "pink": 330,
    "warm": 30,
    "warmer": 30,
    "cool": 210,
    "cooler": 210,
}
REMOVE_WORDS = ("remove", "without", "erase", "delete", "get rid of", "take away", "drop")
ADD_WORDS = ("add", "put", "place", "insert", "include")
MONOCHROME_WORDS = ("black and white", "monochrome", "grayscale", "greyscale")
# Where a region edit happens, in unit coordinates of the picture.
PLACES = {
    "top left": (0.25, 0.25),
    "top right": (0.75, 0.25),
    "bottom left": (0.25, 0.75),
    "bottom right": (0.75, 0.75),
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
    "centre": (0.5, 0.5),
    "center": (0.5, 0.5),
    "middle": (0.5, 0.5),
}


def _open(data: bytes, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise PermanentError("The image to edit could not be read.", detail=str(error))
    if image.size != size:
        # The chosen tier and size decide the output; the layout scales with it.
        image = ImageOps.fit(image, size, Image.Resampling.BICUBIC)
    return image


def _rng(*material) -> random.Random:
    digest = hashlib.sha256("\0".join(str(m) for m in material).encode()).digest()
    return random.Random(digest)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _place(text: str, rng: random.Random) -> tuple[float, float]:
    lowered = text.lower()
    for name, point in PLACES.items():  # two-word places come first
        if re.search(rf"\b{name}\b", lowered):
            return point
    return rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75)


def _mask(size: tuple[int, int], centre: tuple[float, float], radius: float) -> Image.Image:
    width, height = size
    x, y = centre[0] * width, centre[1] * height
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(radius * 0.25))


def _tint(image: Image.Image, hue_degrees: float, amount: float) -> Image.Image:
    red, green, blue = colorsys.hsv_to_rgb(hue_degrees / 360, 0.8, 1.0)
    dark = tuple(round(channel * 60) for channel in (red, green, blue))
    light = tuple(round(150 + channel * 105) for channel in (red, green, blue))
    toned = ImageOps.colorize(ImageOps.grayscale(image), dark, light)
    return Image.blend(image, toned, amount)


def _palette(image: Image.Image, rng: random.Random, count: int = 4) -> list[tuple[int, ...]]:
    small = image.resize((16, 16), Image.Resampling.BILINEAR)
    colors = [small.getpixel((rng.randrange(16), rng.randrange(16))) for _ in range(count)]
    return [tuple(min(255, round(c * 1.15)) for c in color) for color in colors]


def _add_shapes(image: Image.Image, rng: random.Random, centre, colors, count: int, scale: float):
    width, height = image.size
    unit = (width * height) ** 0.5
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(count):
        x = (centre[0] + rng.uniform(-0.12, 0.12)) * width
        y = (centre[1] + rng.uniform(-0.12, 0.12)) * height
        radius = rng.uniform(0.5, 1.0) * scale * unit
        fill = (*rng.choice(colors), 230)
        if rng.random() < 0.5:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
        else:
            sides = rng.choice((3, 4, 5, 6))
            draw.regular_polygon((x, y, radius), sides, rotation=rng.uniform(0, 90), fill=fill)
    layer = layer.filter(ImageFilter.GaussianBlur(unit * 0.002))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _open_mask(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The region edit's mask at the render's size (fitted like the source), 0 or 255."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            mask = opened.convert("L")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise PermanentError("The mask of this edit could not be read.", detail=str(error))
    if mask.size != size:
        mask = ImageOps.fit(mask, size, Image.Resampling.NEAREST)
    return mask.point(lambda value: 255 if value >= 128 else 0)


def _mask_centre(mask: Image.Image) -> tuple[float, float]:
    left, top, right, bottom = mask.getbbox() or (0, 0, *mask.size)
    return (left + right) / 2 / mask.width, (top + bottom) / 2 / mask.height


def edit_image(request: RenderRequest) -> Image.Image:
    """The source image with what the instruction names changed (inside the mask, if any)."""
    size = catalog.pixel_size(request.size, request.aspect)
    image = source = _open(request.source, size)
    text = request.instruction
    lowered = text.lower()
    words = _words(text)
    rng = _rng(
        "edit",
        hashlib.sha256(request.source).hexdigest(),
        text,
        request.seed,
        hashlib.sha256(request.mask).hexdigest() if request.mask else "",
    )
    unit = (size[0] * size[1]) ** 0.5
    changed = False
    region = _open_mask(request.mask, size) if request.mask else None

    def place() -> tuple[float, float]:
        return _mask_centre(region) if region is not None else _place(text, rng)

    hues = [HUES[word] for word in sorted(words) if word in HUES]
    if hues:
        image = _tint(image, hues[0], 0.55)
        changed = True
    if any(phrase in lowered for phrase in MONOCHROME_WORDS):
        image = ImageOps.grayscale(image).convert("RGB")
        changed = True
    if words & {"brighter", "lighter", "brighten", "sunny", "daylight"}:
        image = ImageEnhance.Brightness(image).enhance(1.3)
        changed = True
    if words & {"darker", "darken", "night", "moody", "dim"}:
        image = ImageEnhance.Brightness(image).enhance(0.65)
        changed = True

    if any(re.search(rf"\b{w}\b", lowered) for w in REMOVE_WORDS):
        # Paint the region over with its own surroundings: the detail there goes.
        mask = region if region is not None else _mask(size, _place(text, rng), unit * 0.2)
        filled = image.filter(ImageFilter.GaussianBlur(unit * 0.08))
        image = Image.composite(filled, image, mask)
        changed = True
    if any(re.search(rf"\b{w}\b", lowered) for w in ADD_WORDS):
        centre = place()
        colors = (
            [tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hues[0] / 360, 0.75, 0.95))]
            if hues
            else _palette(image, rng)
        )
        image = _add_shapes(image, rng, centre, colors, count=rng.randint(1, 3), scale=0.09)
        changed = True

    if not changed:
        # Words the renderer does not know still leave a visible, repeatable mark.
        centre = place()
        glow = _mask(size, centre, unit * rng.uniform(0.2, 0.35)).filter(
            ImageFilter.GaussianBlur(unit * 0.05)
        )
        glow = glow.point(lambda value: value * 60 // 100)
        tint = Image.new("RGB", size, _palette(image, rng, 1)[0])
        image = Image.composite(ImageChops.screen(image, tint), image, glow)
        image = _tint(image, rng.uniform(0, 360), 0.12)
    if region is not None:
        # A hard mask: outside the painted area the source's pixels, unchanged.
        image = Image.composite(image, source, region)
    return image


def vary_image(request: RenderRequest, render) -> Image.Image:
    """A subtle or strong variation; `render` draws a request from scratch (strong)."""
    size = catalog.pixel_size(request.size, request.aspect)
    if request.variation == "strong":
        # Same idea, new composition: the prompt again on this request's own
        # seed, the source only steering the colours like any reference.
        fresh = replace(
            request, source=b"", variation="", references=(*request.references, request.source)
        )
        return render(fresh)
    image = _open(request.source, size)
    rng = _rng("subtle", hashlib.sha256(request.source).hexdigest(), request.seed)
    width, height = size
    # A slight reframing: zoom in by up to 4 % and move the frame a little.
    zoom = rng.uniform(0.96, 0.99)
    crop_w, crop_h = width * zoom, height * zoom
    left = rng.uniform(0, width - crop_w)
    top = rng.uniform(0, height - crop_h)
    image = image.resize(
        size, Image.Resampling.BICUBIC, box=(left, top, left + crop_w, top + crop_h)
    )
    mean = ImageStat.Stat(image).mean
    hue = colorsys.rgb_to_hsv(*(channel / 255 for channel in mean))[0] * 360
    image = _tint(image, (hue + rng.uniform(-25, 25)) % 360, rng.uniform(0.06, 0.12))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.93, 1.07))
    centre = (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8))
    return _add_shapes(
        image, rng, centre, _palette(image, rng), count=rng.randint(1, 2), scale=0.03
    )
