"""Taking images out: the ZIP (modes, manifest, metadata) and the PDF contact sheet."""

import csv
import io
import json
import shutil
import subprocess
import zipfile

import pytest
from django.urls import reverse
from PIL import Image

from generation.imaging import read_metadata
from generation.models import Generation

from .conftest import render_all, submit

pytestmark = pytest.mark.django_db


def _zip(client, team, ids) -> zipfile.ZipFile:
    response = client.post(reverse("images-download", args=[team.slug]), {"ids": ids})
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_unzipped_files_are_readable_like_any_file(owner, team, grid, client_for):
    ids = list(grid.generations.values_list("pk", flat=True))
    archive = _zip(client_for(owner), team, ids)
    assert len(archive.infolist()) == 3 + 2  # the images and the two manifests
    for info in archive.infolist():
        # Unix entries (unzip honours the mode) of plain files, 0644.
        assert info.create_system == 3, info.filename
        assert info.external_attr >> 16 == 0o100644, info.filename


def test_the_manifest_lists_every_file_with_how_it_was_made(
    owner, teammate, team, project, grid, client_for
):
    draft = grid.generations.get(index=0)
    client = client_for(teammate)
    promote = client.post(reverse("promote", args=[team.slug]), {"ids": [draft.pk], "size": "2K"})
    assert promote.status_code in (200, 302)
    render_all("pro")
    pro = Generation.objects.get(parent=draft)
    ids = [*grid.generations.values_list("pk", flat=True), pro.pk]
    archive = _zip(client, team, ids)
    names = archive.namelist()
    assert names[-2:] == ["manifest.csv", "manifest.json"]
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    listed = json.loads(archive.read("manifest.json"))["images"]
    assert [r["file"] for r in rows] == [r["file"] for r in listed] == names[:-2]
    assert set(rows[0]) >= {"file", "prompt", "seed", "tier", "size", "aspect", "model",
                            "cost", "who", "when", "parent"}  # fmt: skip
    by_id = {row["id"]: row for row in listed}
    assert by_id[pro.pk]["parent"] == draft.pk and by_id[pro.pk]["tier"] == "pro"
    assert by_id[pro.pk]["who"] == "theo" and by_id[draft.pk]["who"] == "olivia"
    assert by_id[draft.pk]["cost"] == 67 and by_id[pro.pk]["cost"] > 67
    assert by_id[draft.pk]["seed"] == 500 and by_id[draft.pk]["prompt"] == draft.prompt
    assert by_id[draft.pk]["when"].startswith(str(draft.finished_at.year))


def test_a_cached_copy_says_it_is_itself_and_where_it_came_from(owner, team, project, client_for):
    first = submit(team, owner, project, seed=321, count=1).generations.get()
    render_all()
    again = submit(team, owner, project, seed=321, count=1).generations.get()
    assert again.cached and again.asset_id == Generation.objects.get(pk=first.pk).asset_id
    archive = _zip(client_for(owner), team, [again.pk])
    name = archive.namelist()[0]
    assert name.endswith(f"_{again.pk}.png")
    meta = read_metadata(archive.read(name))
    assert meta["generation"] == again.pk and meta["cached_from"] == first.pk
    assert meta["seed"] == 321
    Image.open(io.BytesIO(archive.read(name))).verify()  # still a valid PNG
    row = json.loads(archive.read("manifest.json"))["images"][0]
    assert row["cached_from"] == first.pk and row["cost"] == 0


def test_a_stranger_gets_no_sheet_of_the_teams_images(owner, stranger, team, grid, client_for):
    ids = list(grid.generations.values_list("pk", flat=True))
    other = stranger.teams.get()
    url = reverse("contact-sheet", args=[other.slug])
    assert client_for(stranger).post(url, {"ids": ids}).status_code == 400
    assert client_for(stranger).get(url, {"batch": grid.pk}).status_code == 400
    url = reverse("contact-sheet", args=[team.slug])
    assert client_for(stranger).get(url, {"batch": grid.pk}).status_code == 404


pdftoppm = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils not installed")


def _pages(pdf: bytes, tmp_path) -> list[Image.Image]:
    (tmp_path / "sheet.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(tmp_path / "sheet.pdf"),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    return [Image.open(p) for p in sorted(tmp_path.glob("page*.png"))]


def _text(pdf: bytes, tmp_path) -> str:
    (tmp_path / "sheet.pdf").write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-layout", str(tmp_path / "sheet.pdf"), "-"],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return done.stdout


@pdftoppm
def test_a_selection_prints_as_a_contact_sheet(owner, teammate, team, grid, client_for, tmp_path):
    chosen = list(grid.generations.order_by("index"))[:2]
    Generation.objects.filter(pk=chosen[0].pk).update(starred=True)
    response = client_for(teammate).post(
        reverse("contact-sheet", args=[team.slug]), {"ids": [g.pk for g in chosen]}
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    pages = _pages(response.content, tmp_path)
    assert len(pages) == 1
    # The thumbnails are on the page: far from a blank sheet.
    grey = pages[0].convert("L")
    assert grey.getextrema()[0] < 100 and sum(grey.histogram()[:200]) > 2000
    text = _text(response.content, tmp_path)
    for g in chosen:
        assert f"seed {g.seed}" in text and f"#{g.pk}" in text
    left_out = list(grid.generations.order_by("index"))[2]
    assert f"seed {left_out.seed}" not in text
    assert "Flash 1K" in text and "ceramic teapot on linen" in text and "pick" in text


@pdftoppm
def test_a_whole_grid_prints_over_as_many_pages_as_it_needs(owner, team, project, client_for,
                                                            tmp_path):  # fmt: skip
    batch = submit(team, owner, project, prompt="paper lanterns at dusk", count=20, seed=10)
    render_all()
    response = client_for(owner).get(
        reverse("contact-sheet", args=[team.slug]), {"batch": batch.pk}
    )
    assert response.status_code == 200
    pages = _pages(response.content, tmp_path)
    assert len(pages) >= 2
    text = _text(response.content, tmp_path)
    assert all(f"seed {10 + i}" in text for i in range(20))
    assert "20 images" in text


def test_a_cached_copy_downloaded_alone_names_itself_too(owner, team, project, client_for):
    first = submit(team, owner, project, seed=654, count=1).generations.get()
    render_all()
    again = submit(team, owner, project, seed=654, count=1).generations.get()
    client = client_for(owner)
    url = reverse("generation-image", args=[team.slug, again.pk, "original"])
    response = client.get(url, {"download": "1"})
    assert f"_{again.pk}.png" in response["Content-Disposition"]
    meta = read_metadata(response.content)
    assert meta["generation"] == again.pk and meta["cached_from"] == first.pk
    # Its own ETag: the browser does not confuse it with the source's file.
    assert (
        response["ETag"]
        != client.get(reverse("generation-image", args=[team.slug, first.pk, "original"]))["ETag"]
    )
    assert client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    source = b"".join(
        client.get(reverse("generation-image", args=[team.slug, first.pk, "original"]))
    )
    assert read_metadata(source)["generation"] == first.pk
