"""Reference images: what a person uploads, what is kept, and what a render costs with them.

A reference is kept bounded (at most 2048 px on its longer side), in sRGB and
with nothing but its pixels, so a render that uses three 40-megapixel uploads
costs about what a render without references does, and nothing the uploader's
camera or editor wrote into the file travels on to a provider.
"""

import io
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw, PngImagePlugin

from billing.services import wallet_top_up
from generation.imaging import REFERENCE_EDGE, clean_upload
from generation.models import Generation, Reference
from generation.rendering import lane_run
from generation.requests import parse_batch_request
from generation.services import batch_submit, reference_upload

# --- images to upload ------------------------------------------------------------------


def forty_megapixels(shade: int) -> bytes:
    """8000 × 5000 with transparency (so it is kept as PNG, which no decoder can
    read at a reduced scale): ~200 kB as a file, 160 MB decoded."""
    image = Image.new("RGBA", (8000, 5000), (40 + shade, 90, 160, 255))
    draw = ImageDraw.Draw(image)
    draw.ellipse((1000, 800, 5000, 4200), fill=(220, 180 - shade, 60, 255))
    draw.rectangle((5200, 300, 7600, 4600), fill=(30, 160, 90 + shade, 128))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def swapped_primaries_profile() -> bytes:
    """An ICC v2 RGB profile whose red is sRGB's green and whose green is sRGB's red:
    a pure red pixel tagged with it is, in sRGB, pure green."""
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    name = b"swapped\0"
    tags = [
        (b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(name)) + name + b"\0" * 78),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(*green)),
        (b"gXYZ", _xyz(*red)),
        (b"bXYZ", _xyz(*blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        body += b"\0" * (-(start + len(body)) % 4)
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", start + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 28
        + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48
    )  # fmt: skip
    return header + struct.pack(">I", len(tags)) + table + body


def jpeg_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker Inc"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # a GPS latitude
    out = io.BytesIO()
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>Someone Private</dc:creator></x:xmpmeta>'
    )
    Image.new("RGB", (64, 48), (200, 80, 40)).save(
        out, "JPEG", exif=exif.tobytes(), comment=b"private: client brief v3", xmp=xmp
    )
    return out.getvalue()


def png_with_profile_and_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "private: client brief v3")
    info.add_text("Author", "Someone Private")
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (255, 0, 0)).save(
        out, "PNG", pnginfo=info, icc_profile=swapped_primaries_profile()
    )
    return out.getvalue()


# --- what is kept ----------------------------------------------------------------------


def test_a_jpeg_loses_its_comment_exif_and_xmp():
    source = jpeg_with_metadata()
    assert b"private: client brief" in source and b"Camera Maker" in source
    assert b"Someone Private" in source
    clean = clean_upload(source)
    kept = Image.open(io.BytesIO(clean.data))
    assert b"private" not in clean.data and b"Camera Maker" not in clean.data
    assert b"Exif" not in clean.data and b"Someone" not in clean.data
    assert not {"comment", "exif", "icc_profile", "xmp"} & set(kept.info)


def test_a_png_loses_its_text_and_profile_and_its_colours_become_srgb():
    source = png_with_profile_and_text()
    assert b"iCCP" in source and b"tEXt" in source
    clean = clean_upload(source)
    assert b"iCCP" not in clean.data and b"tEXt" not in clean.data
    assert b"private" not in clean.data and b"Someone" not in clean.data
    kept = Image.open(io.BytesIO(clean.data))
    assert "icc_profile" not in kept.info and not getattr(kept, "text", {})
    # Red in the swapped profile is green in sRGB (JPEG rounding aside).
    red, green, blue = kept.convert("RGB").getpixel((10, 10))
    assert green > 240 and red < 15 and blue < 15


def test_an_upright_photo_stays_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    out = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 10, 10)).save(out, "JPEG", exif=exif.tobytes())
    clean = clean_upload(out.getvalue())
    assert (clean.width, clean.height) == (1536, 2048)
    assert Image.open(io.BytesIO(clean.data)).size == (1536, 2048)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_kept_at_2048():
    out = io.BytesIO()
    Image.new("RGB", (8000, 5000), (10, 120, 200)).save(out, "JPEG", quality=80)
    clean = clean_upload(out.getvalue())
    assert (clean.width, clean.height) == (2048, 1280)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_four_40_megapixel_uploads_at_once_hold_about_one_decode_in_memory(tmp_path):
    """Each decodes to 160 MB: four at once took 616 MB more than the process
    had at rest; now they take their turn at the full-size decode."""
    for n in range(4):
        (tmp_path / f"{n}.png").write_bytes(forty_megapixels(n * 20))
    # VmHWM, the peak resident size of this process image (ru_maxrss would
    # carry over the pytest process's peak through fork and exec).
    script = textwrap.dedent(f"""
        import re, threading
        from pathlib import Path
        from generation.imaging import clean_upload

        def peak():
            status = Path("/proc/self/status").read_text()
            return int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) // 1024

        uploads = [(Path({str(tmp_path)!r}) / f"{{n}}.png").read_bytes() for n in range(4)]
        before = peak()
        kept = []
        threads = [
            threading.Thread(target=lambda d=d: kept.append(clean_upload(d).width))
            for d in uploads
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(peak() - before, len(kept))
    """)
    base = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=base, capture_output=True, text=True, check=True
    )
    grown, uploaded = map(int, run.stdout.split())
    print(f"four 40 MP uploads at once: +{grown} MB")
    assert uploaded == 4
    assert grown < 2 * 160, grown


# --- what a render costs -----------------------------------------------------------------


@pytest.fixture
def funded(team, owner):
    wallet_top_up(team=team, amount=100_000, actor=owner, note="test", idempotency_key="refs")
    return team


def _grid(team, member, *, references=(), seed: int, count: int):
    data = {"prompt": "a glass teapot", "tier": "flash", "size": "512", "aspect": "1:1",
            "count": count, "seed": seed}  # fmt: skip
    request = parse_batch_request(data, [str(r.pk) for r in references])
    return batch_submit(team=team, member=member, request=request)


def _render_times(batches) -> dict[int, list[float]]:
    """Run the Flash lane in this process; seconds per image, by batch."""
    times: dict[int, list[float]] = {batch.pk: [] for batch in batches}
    while True:
        started = time.perf_counter()
        pk = lane_run("flash")
        if pk is None:
            return times
        times[Generation.objects.get(pk=pk).batch_id].append(time.perf_counter() - started)


def test_three_40_megapixel_references_do_not_slow_a_render(funded, owner):
    references = [
        reference_upload(team=funded, member=owner, name=f"big {n}", data=forty_megapixels(n * 30))[
            0
        ]
        for n in range(3)
    ]
    for reference in references:
        assert max(reference.width, reference.height) == REFERENCE_EDGE
        stored = Image.open(default_storage.open(reference.image.name))
        assert max(stored.size) == REFERENCE_EDGE

    # Alternate the two kinds so a busy moment of the machine hits both alike.
    batches = []
    for round_ in range(4):
        batches.append(_grid(funded, owner, seed=100 + round_ * 10, count=2))
        batches.append(_grid(funded, owner, references=references, seed=500 + round_ * 10, count=2))
    times = _render_times(batches)
    plain = min(t for batch in batches[0::2] for t in times[batch.pk])
    with_references = min(t for batch in batches[1::2] for t in times[batch.pk])
    assert Generation.objects.filter(status="succeeded").count() == 16
    first = times[batches[1].pk][0]  # the one that read the three references first
    print(
        f"plain {plain * 1000:.0f} ms, three 40 MP references {with_references * 1000:.0f} ms "
        f"({first * 1000:.0f} ms the first time)"
    )
    assert with_references <= 2 * plain, (plain, with_references)


def test_a_reference_kept_at_full_size_before_is_bounded_by_its_first_render(funded, owner):
    """References stored before uploads were bounded: the first render stores the
    bounded copy and points the row at it; the hash (its identity) stays."""
    out = io.BytesIO()
    Image.new("RGB", (4096, 3072), (200, 40, 90)).save(out, "JPEG", quality=92)
    name = default_storage.save("teams/legacy/reference.jpg", ContentFile(out.getvalue()))
    legacy = Reference.objects.create(
        team=funded, name="legacy", sha256="a" * 64, image=name, mime_type="image/jpeg",
        width=4096, height=3072, bytes=len(out.getvalue()), created_by=owner,
    )  # fmt: skip
    _grid(funded, owner, references=[legacy], seed=42, count=1)
    while lane_run("flash"):
        pass
    legacy.refresh_from_db()
    assert (legacy.width, legacy.height, legacy.sha256) == (2048, 1536, "a" * 64)
    assert legacy.image.name != name
    assert Image.open(default_storage.open(legacy.image.name)).size == (2048, 1536)
    assert Generation.objects.get(batch__references=legacy).status == "succeeded"


def test_what_the_library_serves_back_carries_none_of_the_uploaded_metadata(
    owner, teammate, team, client_for
):
    """Uploaded through the composer by one member, seen by a teammate."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("brief.jpg", jpeg_with_metadata(), content_type="image/jpeg")
    response = client_for(owner).post(
        f"/t/{team.slug}/references/new/", {"image": upload}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    reference = team.references.get()
    served = client_for(teammate).get(f"/t/{team.slug}/references/{reference.pk}/image/")
    body = b"".join(served.streaming_content)
    assert Image.open(io.BytesIO(body)).size == (64, 48)
    assert b"private" not in body and b"Camera Maker" not in body and b"Someone" not in body
