"""The stored original keeps the provider's pixels and carries the parameters;
the renditions are sized for the grid and the lightbox."""

import io

from PIL import Image

from generation.imaging import PREVIEW_EDGE, THUMBNAIL_EDGE, make_renditions, read_metadata

META = {"prompt": "a red fox", "seed": 7, "tier": "flash", "size": "1K", "aspect": "16:9",
        "model": "m", "provider": "offline"}  # fmt: skip


def png(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def test_a_provider_png_is_stored_with_its_pixels_and_the_parameters():
    source = png(1344, 768)
    renditions = make_renditions(source, META)
    stored = Image.open(io.BytesIO(renditions.original))
    assert stored.size == (1344, 768)
    assert stored.tobytes() == Image.open(io.BytesIO(source)).tobytes()
    assert stored.text["parameters"].startswith("a red fox\nSeed: 7, Size: 1344x768")
    assert read_metadata(renditions.original)["seed"] == 7


def test_a_small_image_is_its_own_preview():
    renditions = make_renditions(png(1024, 1024), META)
    assert renditions.preview is None
    assert max(Image.open(io.BytesIO(renditions.thumbnail)).size) == THUMBNAIL_EDGE


def test_a_large_image_gets_a_webp_preview_and_thumbnail():
    renditions = make_renditions(png(2688, 1536), {**META, "size": "2K"})
    preview = Image.open(io.BytesIO(renditions.preview))
    thumbnail = Image.open(io.BytesIO(renditions.thumbnail))
    assert preview.format == thumbnail.format == "WEBP"
    assert max(preview.size) == PREVIEW_EDGE and max(thumbnail.size) == THUMBNAIL_EDGE


def test_a_jpeg_answer_is_stored_as_png():
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(out, "JPEG")
    renditions = make_renditions(out.getvalue(), META)
    assert Image.open(io.BytesIO(renditions.original)).format == "PNG"
    assert read_metadata(renditions.original)["prompt"] == "a red fox"
