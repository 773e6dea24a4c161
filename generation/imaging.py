"""Image encoding: the stored original with its parameters, the WebP
renditions, and safe decoding of uploads and provider answers.

Everything here is slow CPU work and runs outside database transactions.
"""

import hashlib
import io
import json
import struct
import threading
import zlib
from contextlib import nullcontext
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps, PngImagePlugin

THUMBNAIL_EDGE = 384  # grid tiles are at most ~300 CSS px wide; 384 keeps them crisp
PREVIEW_EDGE = 1600
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_PIXELS = 40_000_000
# References are kept at most this long on their longer side: what the image
# models take in anyway (larger ones are scaled down on their side), and what
# keeps every render that uses a reference from decoding tens of megapixels.
REFERENCE_EDGE = 2048
# A 40 MP upload decodes to 120-160 MB of pixels (PNG cannot be decoded at a
# reduced scale). One such decode at a time per process keeps a threaded web
# server's memory bounded however many arrive at once; the others wait about
# a second each. Smaller images skip the queue.
LARGE_DECODES = threading.BoundedSemaphore(1)
LARGE_DECODE_PIXELS = REFERENCE_EDGE * REFERENCE_EDGE
SRGB = ImageCms.createProfile("sRGB")
EXIF_ORIENTATION = 0x0112
UPLOAD_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
METADATA_KEY = "contact-sheet"


class UnusableImage(ValueError):
    """Bytes that are not an image we accept; the message says why in plain words."""


@dataclass(frozen=True)
class Renditions:
    original: bytes
    thumbnail: bytes
    preview: bytes | None  # None: the original is small enough to serve as its own preview
    width: int
    height: int
    sha256: str


def open_safely(
    data: bytes, *, max_pixels: int = UPLOAD_MAX_PIXELS, load: bool = True
) -> Image.Image:
    """Decode bytes, refusing non-images, truncated files and decompression bombs.

    The pixel count is checked from the header before any pixel is decoded.
    With load=False only the header is read; `load_safely` decodes later.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.UnidentifiedImageError, OSError):
        raise UnusableImage("This file is not an image we can read (use PNG, JPEG or WebP).")
    except Image.DecompressionBombError:
        # Pillow refuses headers past twice its own pixel limit already in open().
        raise UnusableImage(
            f"The image claims far more pixels than we accept; "
            f"the limit is {max_pixels / 1e6:.0f} megapixels."
        )
    if image.format not in UPLOAD_FORMATS:
        raise UnusableImage(
            f"{image.format or 'This'} files are not accepted; use PNG, JPEG or WebP."
        )
    width, height = image.size
    if width * height > max_pixels:
        raise UnusableImage(
            f"The image is {width}×{height} ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels."
        )
    return load_safely(image) if load else image


def load_safely(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except (OSError, SyntaxError, Image.DecompressionBombError):
        raise UnusableImage("The image file is damaged or incomplete.")
    return image


def _flatten(image: Image.Image) -> Image.Image:
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return image


def _shrink_in_place(image: Image.Image, edge: int) -> Image.Image:
    # reducing_gap 1.0: box-reduce by the largest whole factor first, then a
    # short bilinear resample over less than a factor of two. From 4K that is
    # a third of the time of a full bicubic pass, with no visible difference
    # at preview sizes.
    image.thumbnail((edge, edge), Image.Resampling.BILINEAR, reducing_gap=1.0)
    return image


def _webp(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # method 0 encodes several times faster than the default 4; at these
    # sizes the files are a few percent larger, which a grid never notices.
    image.save(out, "WEBP", quality=quality, method=0)
    return out.getvalue()


def watermarked_webp(data: bytes, text: str) -> bytes:
    """The image with `text` repeated across it on a slant, as a WebP.

    Faint enough to judge the picture through, dense enough that no crop of a
    useful size escapes it; white with a dark edge, so it shows on any image.
    Pillow's own scalable font: no font file to find on the host.
    """
    image = _flatten(open_safely(data, max_pixels=64_000_000)).convert("RGBA")
    width, height = image.size
    size = max(12, min(width, height) // 14)
    font = ImageFont.load_default(size=size)
    # Drawn level on a square that covers the image at any rotation, then turned.
    side = int((width**2 + height**2) ** 0.5) + size
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    phrase = f"{text}    "
    step = int(draw.textlength(phrase, font=font)) or size
    for row, y in enumerate(range(0, side, size * 3)):
        offset = (row % 2) * step // 2
        for x in range(-step + offset, side, step):
            draw.text(
                (x, y), phrase, font=font, fill=(255, 255, 255, 90),
                stroke_width=max(1, size // 16), stroke_fill=(0, 0, 0, 60),
            )  # fmt: skip
    layer = layer.rotate(30, resample=Image.Resampling.BILINEAR)
    left, top = (side - width) // 2, (side - height) // 2
    image.alpha_composite(layer.crop((left, top, left + width, top + height)))
    return _webp(image.convert("RGB"), 85)


def a1111_parameters(meta: dict) -> str:
    """The `parameters` text other image tools read (A1111 style)."""
    return (
        f"{meta['prompt']}\n"
        f"Seed: {meta['seed']}, Size: {meta['width']}x{meta['height']}, "
        f"Model: {meta['model']}, Tier: {meta['tier']}, Image size: {meta['size']}, "
        f"Aspect ratio: {meta['aspect']}, Provider: {meta['provider']}"
    )


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt")


def _itxt_chunk(key: str, text: str) -> bytes:
    body = key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
    return (
        struct.pack(">I", len(body))
        + b"iTXt"
        + body
        + struct.pack(">I", zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF)
    )


def png_with_text(png: bytes, texts: dict[str, str]) -> bytes:
    """Put text chunks into a PNG without decoding it again.

    Any text chunks the provider wrote are dropped, so the parameters we
    store are the only ones a tool reads. Re-encoding a 4K PNG costs seconds;
    splicing chunks costs microseconds.
    """
    out = [PNG_SIGNATURE]
    position = len(PNG_SIGNATURE)
    inserted = False
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        end = position + 12 + length
        if kind == b"IDAT" and not inserted:
            out.extend(_itxt_chunk(key, text) for key, text in texts.items())
            inserted = True
        if kind not in TEXT_CHUNKS:
            out.append(png[position:end])
        position = end
    return b"".join(out)


def make_renditions(data: bytes, meta: dict) -> Renditions:
    """The stored original (PNG with the parameters embedded) plus two WebPs.

    `meta` holds prompt, seed, tier, size, aspect, model, provider, references
    (hashes) and parent; the pixel size is added here.
    """
    image = _flatten(open_safely(data, max_pixels=64_000_000))
    meta = {**meta, "width": image.width, "height": image.height}
    texts = {
        "parameters": a1111_parameters(meta),
        METADATA_KEY: json.dumps(meta, ensure_ascii=False, sort_keys=True),
    }
    if data.startswith(PNG_SIGNATURE):
        original = png_with_text(data, texts)
    else:
        info = PngImagePlugin.PngInfo()
        for key, text in texts.items():
            info.add_itxt(key, text)
        out = io.BytesIO()
        # Level 1: a 4K PNG in a fraction of the time of the default, ~10% larger.
        image.save(out, "PNG", pnginfo=info, compress_level=1)
        original = out.getvalue()
    width, height = image.size
    # From here the decoded pixels are only shrunk: in place, no copies.
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    preview = None  # 512 and 1K images are their own preview
    if max(width, height) > PREVIEW_EDGE:
        preview = _webp(_shrink_in_place(rgb, PREVIEW_EDGE), 85)
    return Renditions(
        original=original,
        thumbnail=_webp(_shrink_in_place(rgb, THUMBNAIL_EDGE), 78),
        preview=preview,
        width=width,
        height=height,
        sha256=hashlib.sha256(original).hexdigest(),
    )


def read_metadata(png: bytes) -> dict:
    image = Image.open(io.BytesIO(png))
    return json.loads(image.text[METADATA_KEY])


@dataclass(frozen=True)
class CleanUpload:
    data: bytes
    mime_type: str
    width: int
    height: int
    sha256: str


def clean_upload(data: bytes) -> CleanUpload:
    """Validate an uploaded reference and keep only its pixels, bounded for rendering."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise UnusableImage(
            f"The file is {len(data) / 1e6:.0f} MB; reference images can be up to "
            f"{UPLOAD_MAX_BYTES // (1024 * 1024)} MB."
        )
    return reference_copy(data)


def reference_copy(data: bytes) -> CleanUpload:
    """The reference as it is kept and sent to providers: at most REFERENCE_EDGE
    on its longer side, in sRGB, re-encoded with no metadata at all (EXIF, XMP,
    comments, text chunks, colour profiles: only the pixels survive)."""
    header = open_safely(data, load=False)  # refuses what is not an image, or too large
    large = header.width * header.height > LARGE_DECODE_PIXELS
    del header
    with LARGE_DECODES if large else nullcontext():
        # Opened afresh so the decoded pixels have no other owner and the
        # full-size ones are freed as soon as they are reduced.
        image = _bounded_pixels(open_safely(data, load=False))
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, "PNG", compress_level=3)
        mime = "image/png"
    else:
        image.save(out, "JPEG", quality=92)
        mime = "image/jpeg"
    clean = out.getvalue()
    return CleanUpload(clean, mime, image.width, image.height, hashlib.sha256(clean).hexdigest())


def _bounded_pixels(image: Image.Image) -> Image.Image:
    """Decode as little as needed, shrink, then turn upright and into sRGB.

    A JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still leaves the
    bounded size (draft). Other formats decode at full size, so they are
    reduced a strip at a time: the only full-size pixels in memory are the
    decoded ones, never a converted copy of them. Rotation and colour
    conversion then work on at most 4 MP.
    """
    scale = REFERENCE_EDGE / max(image.size)
    if scale < 1 and image.format == "JPEG":
        image.draft(None, (round(image.width * scale), round(image.height * scale)))
    load_safely(image)
    profile = image.info.get("icc_profile")
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    mode = image.mode
    if mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
        # Palette and 1-bit images cannot be resampled smoothly as they are.
        mode = "RGBA" if _has_alpha(image) else "RGB"
    factor = max(image.size) // REFERENCE_EDGE  # of the decoded size: a draft is smaller
    if factor > 1:
        image = _reduce_in_strips(image, factor, mode)
    elif image.mode != mode:
        image = image.convert(mode)
    image.thumbnail((REFERENCE_EDGE, REFERENCE_EDGE), Image.Resampling.LANCZOS)
    if orientation in ORIENTATIONS:
        image = image.transpose(ORIENTATIONS[orientation])
    image = _to_srgb(image, profile)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    # Nothing the source carried may ride along into the saved file.
    image.info = {}
    return image


# EXIF orientation → the transpose that turns the stored pixels upright.
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
STRIP_ROWS = 32  # output rows per strip: about 3 MB of input at 8000 px wide


def _reduce_in_strips(image: Image.Image, factor: int, mode: str) -> Image.Image:
    """Box-reduce by a whole factor, in `mode`, one horizontal strip at a time.

    Image.reduce on RGBA (and a mode conversion) would first make a converted
    full-size copy: 160 MB more at 40 MP. A strip's copy is a few MB.
    """
    width, height = image.size
    reduced = Image.new(mode, (-(-width // factor), -(-height // factor)))
    rows = STRIP_ROWS * factor
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height)))
        if strip.mode != mode:
            strip = strip.convert(mode)
        reduced.paste(strip.reduce(factor), (0, top // factor))
    return reduced


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or "transparency" in image.info


def _to_srgb(image: Image.Image, profile: bytes | None) -> Image.Image:
    """Pixels as sRGB, the space a provider and a browser assume untagged pixels are in."""
    if not profile:
        return image
    mode = "RGBA" if _has_alpha(image) else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(image, source, SRGB, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A profile lcms cannot use: keep the pixels as they are rather than refuse.
        return image


# --- region masks -----------------------------------------------------------------
# A mask says where an edit may change the picture. Ours is a greyscale PNG the
# size of the source image: white = change, black = keep. Transparent paint
# counts as black (a browser canvas exports unpainted pixels as transparent),
# and grey is rounded to the nearer of the two, so the stored mask is exactly
# black and white and identical paint always gives the same bytes (the cache).
MASK_MAX_BYTES = 8 * 1024 * 1024
MASK_THRESHOLD = 128


@dataclass(frozen=True)
class CleanMask:
    data: bytes  # PNG, mode L, only 0 and 255
    width: int
    height: int
    sha256: str
    painted: float  # the share of the picture marked for change, 0–1


def clean_mask(data: bytes, *, size: tuple[int, int]) -> CleanMask:
    """Validate a painted mask for an image of `size` pixels and keep it as black and white."""
    if len(data) > MASK_MAX_BYTES:
        raise UnusableImage(
            f"The mask file is {len(data) / 1e6:.1f} MB; a mask can be up to "
            f"{MASK_MAX_BYTES // (1024 * 1024)} MB (a black-and-white PNG is far smaller)."
        )
    try:
        image = _flatten(open_safely(data))
    except UnusableImage as error:
        raise UnusableImage(f"The mask is not usable: {error}")
    if image.size != tuple(size):
        raise UnusableImage(
            f"The mask is {image.width} × {image.height} pixels; it must be the image's own "
            f"size, {size[0]} × {size[1]}."
        )
    if image.mode == "RGBA":
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, image)
    grey = image.convert("L").point(lambda value: 255 if value >= MASK_THRESHOLD else 0)
    painted = grey.histogram()[255] / (grey.width * grey.height)
    if not painted:
        raise UnusableImage(
            "Nothing is painted on the mask: paint the area to change, or clear the mask "
            "to edit the whole image."
        )
    out = io.BytesIO()
    grey.save(out, "PNG", optimize=True)
    clean = out.getvalue()
    return CleanMask(clean, grey.width, grey.height, hashlib.sha256(clean).hexdigest(), painted)


def mask_with_alpha(mask: bytes) -> bytes:
    """Our mask as OpenAI and ComfyUI's mask editor take one: an RGBA PNG whose
    transparent pixels are the area to change, opaque black the area to keep."""
    with Image.open(io.BytesIO(mask)) as opened:
        grey = opened.convert("L")
    rgba = Image.new("RGBA", grey.size, (0, 0, 0, 255))
    rgba.putalpha(grey.point(lambda value: 0 if value >= MASK_THRESHOLD else 255))
    out = io.BytesIO()
    rgba.save(out, "PNG", optimize=True)
    return out.getvalue()
