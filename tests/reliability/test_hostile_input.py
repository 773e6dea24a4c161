"""Hostile input, one table: every bad request gets a clear 4xx and leaves nothing behind.

"Nothing behind" is counted, not assumed: ledger entries, batches and jobs,
files under MEDIA_ROOT, and the lane queues in Redis, before and after.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from billing.models import LedgerEntry
from billing.selectors import csv_safe
from generation.models import Batch, Generation, Project
from generation.services import reference_upload
from generation.tasks import run_lane
from tests.conftest import purge_lanes

from .conftest import fund, submit

WEBHOOK_SECRET = "whsec_reliability"


def png(size=(32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def bomb() -> bytes:
    """A tiny PNG that claims 40000 x 40000 pixels (1.6 gigapixels)."""
    out = io.BytesIO()
    Image.new("1", (40_000, 40_000), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


SVG = b"""<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">
<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>"""


def signed(payload: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def checkout_event(team) -> bytes:
    return json.dumps({
        "id": "evt_forged_1", "object": "event", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_forged", "object": "checkout.session",
                            "client_reference_id": str(team.pk), "payment_status": "paid",
                            "amount_total": 100, "metadata": {"team": str(team.pk),
                                                               "credits": "1000000"}}},
    }).encode()  # fmt: skip


def media_files(root) -> int:
    return sum(1 for p in Path(root).rglob("*") if p.is_file())


def queue_lengths(url) -> tuple[int, int]:
    r = redis.Redis.from_url(url)
    return r.llen("flash"), r.llen("pro")


@pytest.fixture
def scene(owner, team, stranger, transactional_db, settings):
    """A funded team with a project and a finished draft; a stranger's finished draft."""
    settings.STRIPE_SECRET_KEY = "sk_test_reliability"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    purge_lanes()
    fund(team, owner)
    other = stranger.teams.get()
    fund(other, stranger)
    project = Project.objects.create(team=team, name="Hostile", created_by=owner)
    reference, _ = reference_upload(team=team, member=owner, name="ok", data=png())
    mine = submit(team, owner, count=1, prompt="a draft of ours")
    theirs = submit(other, stranger, count=1, prompt="a draft of theirs")
    while run_lane("flash"):
        pass
    purge_lanes()  # the tokens of the two setup drafts
    owner.is_staff = True  # staff may top up by hand; the amounts must still be sane
    owner.save(update_fields=["is_staff"])
    yield {
        "team": team,
        "project": project,
        "reference": reference,
        "mine": mine.generations.get(),
        "theirs": theirs.generations.get(),
        "other_reference": reference_upload(
            team=other, member=stranger, name="theirs", data=png((40, 40))
        )[0],
    }
    purge_lanes()


def cases(scene) -> list[tuple[str, str, str, dict, dict, str]]:
    """(name, kind, path, data, headers, words expected in the answer)."""
    slug = scene["team"].slug
    submit_url = f"/t/{slug}/projects/{scene['project'].pk}/submit/"
    upload_url = f"/t/{slug}/references/new/"
    ok = {"prompt": "a fox", "tier": "flash", "size": "1K", "aspect": "1:1", "count": "2"}

    def form(**changes):
        return {**ok, **changes}

    def upload(name, content, content_type="image/png"):
        return {"image": SimpleUploadedFile(name, content, content_type=content_type)}

    truncated = png((300, 300))[:200]
    team = scene["team"]
    event = checkout_event(team)
    htmx = {"HTTP_HX_REQUEST": "true"}
    return [
        ("empty prompt", "post", submit_url, form(prompt=""), {}, "prompt"),
        ("whitespace prompt", "post", submit_url, form(prompt="   \n\t "), {}, "prompt"),
        ("1 MB prompt", "post", submit_url, form(prompt="x" * 1_000_000), {}, "limit"),
        ("control characters only", "post", submit_url, form(prompt="\x00\x01\x1b\x7f"), {}, ""),
        ("count 0", "post", submit_url, form(count="0"), {}, ""),
        ("count 51", "post", submit_url, form(count="51"), {}, "50"),
        ("count -1", "post", submit_url, form(count="-1"), {}, ""),
        ("count abc", "post", submit_url, form(count="abc"), {}, ""),
        ("unknown tier", "post", submit_url, form(tier="ultra"), {}, "Flash or Pro"),
        ("unknown size", "post", submit_url, form(size="8K"), {}, ""),
        ("unknown aspect", "post", submit_url, form(aspect="7:3"), {}, ""),
        ("a size the tier lacks", "post", submit_url, form(tier="pro", size="512"), {}, "Pro"),
        ("an aspect the tier lacks", "post", submit_url, form(tier="pro", aspect="1:8"), {}, ""),
        ("15 references", "post", submit_url,
         {**ok, "references": [str(scene["reference"].pk)] + [str(i) for i in range(9000, 9014)]},
         {}, ""),
        ("another team's reference", "post", submit_url,
         {**ok, "references": [str(scene["other_reference"].pk)]}, {}, "reference"),
        ("non-image upload", "post", upload_url, upload("notes.png", b"hello, not a picture"),
         htmx, ""),
        ("truncated PNG", "post", upload_url, upload("cut.png", truncated), htmx, ""),
        ("decompression bomb", "post", upload_url, upload("bomb.png", bomb()), htmx, ""),
        ("60 MB upload", "post", upload_url, upload("huge.png", b"\x89PNG" + b"\0" * 60_000_000),
         htmx, "up to 20 MB"),
        ("3 MB form", "urlencoded", submit_url, form(prompt="x" * 3_000_000), {}, "up to 2.5 MB"),
        ("SVG with a script", "post", upload_url, upload("x.svg", SVG, "image/svg+xml"), htmx, ""),
        # Page forms answer post/redirect/get: back to the page, the error shown there.
        ("top-up -5", "form", f"/t/{slug}/billing/top-up/", {"amount": "-5", "note": "x"}, {},
         "more than 0"),
        ("top-up 0", "form", f"/t/{slug}/billing/top-up/", {"amount": "0", "note": "x"}, {},
         "more than 0"),
        ("top-up 10^12", "form", f"/t/{slug}/billing/top-up/",
         {"amount": str(10**12), "note": "x"}, {}, "at most"),
        ("top-up ten", "form", f"/t/{slug}/billing/top-up/", {"amount": "ten", "note": "x"}, {},
         "whole number"),
        ("forged webhook", "webhook", "/stripe/webhook/", {"payload": event},
         {"HTTP_STRIPE_SIGNATURE": signed(event, secret="whsec_guess")}, "Signature"),
        ("replayed webhook", "webhook", "/stripe/webhook/", {"payload": event},
         {"HTTP_STRIPE_SIGNATURE": signed(event, at=int(time.time()) - 3600)}, ""),
        ("unsigned webhook", "webhook", "/stripe/webhook/", {"payload": event}, {}, "Signature"),
        ("unknown pack", "post", f"/t/{slug}/billing/buy/", {"pack": "99999"}, {}, ""),
        ("promote another team's image", "post", f"/t/{slug}/selection/promote/go/",
         {"ids": [str(scene["theirs"].pk)], "size": "2K"}, {}, ""),
        ("promote to an unknown size", "post", f"/t/{slug}/selection/promote/go/",
         {"ids": [str(scene["mine"].pk)], "size": "8K"}, {}, "2K or 4K"),
        ("submit to another team's project", "post",
         f"/t/{slug}/projects/{scene['other_reference'].pk + 10_000}/submit/", ok, {}, ""),
        # Numbers past the database's 64-bit integers, days at the calendar's edge.
        ("a reference id of 2**63", "post", submit_url, {**ok, "references": [str(2**63)]}, {},
         "Unknown reference"),
        ("a batch id of 10**30 in the path", "get", f"/t/{slug}/batches/{10**30}/poll/", {}, {},
         ""),
        ("history to 9999-12-31", "get", f"/t/{slug}/history/", {"to": "9999-12-31"}, {},
         "2999-12-31"),
        ("history from 0001-01-01", "get", f"/t/{slug}/history/", {"from": "0001-01-01"}, {},
         "1900-01-01"),
        ("history to a non-day", "get", f"/t/{slug}/history/", {"to": "2024-02-30"}, {},
         "YYYY-MM-DD"),
        ("API: a reference id of 2**63", "api-post", "/api/v1/batches",
         {**ok, "count": 1, "references": [2**63]}, {}, "Not an id"),
        ("API: a project id of 10**30", "api-post", "/api/v1/batches",
         {**ok, "count": 1, "project": 10**30}, {}, "Not an id"),
        ("API: promote ids of 10**30", "api-post", "/api/v1/images/promote",
         {"ids": [10**30], "size": "2K"}, {}, "Not an id"),
        ("API: until 9999-12-31", "api-get", "/api/v1/images", {"until": "9999-12-31"}, {},
         "2999-12-31"),
        ("API: since 0001-01-01", "api-get", "/api/v1/images", {"since": "0001-01-01"}, {},
         "1900-01-01"),
    ]  # fmt: skip


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG=1", "DEBUG=0"])
def test_bad_inputs_get_a_clear_4xx_and_leave_nothing(scene, owner, settings, debug):
    from studio.api.tokens import api_token_create

    settings.DEBUG = debug
    client = Client()
    client.force_login(owner)
    token = api_token_create(user=owner, team=scene["team"], name="hostile")[1]
    api = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    table = cases(scene)
    assert len(table) >= 25
    failures = []
    for name, kind, path, data, headers, words in table:
        before = (
            LedgerEntry.objects.count(),
            Batch.objects.count(),
            Generation.objects.count(),
            media_files(settings.MEDIA_ROOT),
            queue_lengths(settings.REDIS_URL),
        )
        if kind == "webhook":
            response = client.post(
                path, data["payload"], content_type="application/json", **headers
            )
        elif kind == "get":
            response = client.get(path, data, **headers)
        elif kind == "urlencoded":  # what a browser sends for a form without a file
            body = urlencode(data, doseq=True)
            content_type = "application/x-www-form-urlencoded"
            response = client.post(path, body, content_type=content_type, **headers)
        elif kind == "api-post":
            response = Client().post(path, data, content_type="application/json", **api)
        elif kind == "api-get":
            response = Client().get(path, data, **api)
        elif kind == "form":
            refused = client.post(path, data, **headers)
            if refused.status_code != 302:
                failures.append(f"{name}: HTTP {refused.status_code}, not a redirect to the form")
                continue
            response = client.get(refused["Location"])
            if 'class="error"' not in response.content.decode():
                failures.append(f"{name}: the page it went back to shows no error")
                continue
        else:
            response = client.post(path, data, **headers)
        after = (
            LedgerEntry.objects.count(),
            Batch.objects.count(),
            Generation.objects.count(),
            media_files(settings.MEDIA_ROOT),
            queue_lengths(settings.REDIS_URL),
        )
        text = response.content.decode("utf-8", "replace")
        if kind != "form" and not 400 <= response.status_code < 500:
            failures.append(f"{name}: HTTP {response.status_code}")
        elif after != before:
            failures.append(f"{name}: left something behind {before} -> {after}")
        elif words and words.lower() not in text.lower():
            failures.append(f"{name}: the answer does not say {words!r}")
        elif "Traceback" in text:
            failures.append(f"{name}: a traceback in the answer")
    assert not failures, "\n".join(failures)


def test_html_and_formulas_in_prompts_are_inert_everywhere(owner, team, db, client):
    """Accepted, but escaped in pages, kept as plain text in PNG metadata, safe in ZIP and CSV."""
    from django.core.files.storage import default_storage

    from generation.imaging import read_metadata

    fund(team, owner)
    prompt = '<script>alert("x")</script><img src=x onerror=alert(1)> =HYPERLINK("http://e")'
    batch = submit(team, owner, count=1, prompt=prompt)
    while run_lane("flash"):
        pass
    generation = batch.generations.select_related("asset").get()
    client.force_login(owner)
    for path in (f"/t/{team.slug}/images/{generation.pk}/", f"/t/{team.slug}/history/"):
        html = client.get(path).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;" in html, path
    meta = read_metadata(default_storage.open(generation.asset.original.name).read())
    assert meta["prompt"] == prompt  # stored verbatim as text, never interpreted
    response = client.get(f"/t/{team.slug}/selection/download/", {"ids": [generation.pk]})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    for name in archive.namelist():
        assert re.fullmatch(r"[\w.\-]+", name), name
    assert csv_safe('=HYPERLINK("http://e")').startswith("'")
    assert csv_safe("+1").startswith("'") and csv_safe("@x").startswith("'")


def test_a_gigapixel_header_is_refused_in_words_not_a_server_error():
    """Regression: Pillow raised DecompressionBombError from open(), which escaped as a 500."""
    from generation.imaging import UnusableImage, open_safely

    with pytest.raises(UnusableImage, match="megapixels"):
        open_safely(bomb())


class Unreadable:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize(
    "path, content_type, headers, words",
    [
        ("/t/{slug}/references/new/", "multipart/form-data; boundary=x",
         {"HTTP_HX_REQUEST": "true"}, "up to 20 MB"),
        ("/t/{slug}/references/new/", "multipart/form-data; boundary=x", {}, "up to 20 MB"),
        ("/api/v1/batches", "application/json", {}, "up to 2.5 MB"),
        ("/stripe/webhook/", "application/json", {}, "up to 2.5 MB"),
    ],
)  # fmt: skip
def test_a_300_mb_body_is_refused_by_its_length_before_it_is_read(
    owner, team, client, path, content_type, headers, words
):
    client.force_login(owner)
    response = client.generic(
        "POST",
        path.format(slug=team.slug),
        CONTENT_TYPE=content_type,
        CONTENT_LENGTH=str(300 * 1024 * 1024),
        **{"wsgi.input": Unreadable()},
        **headers,
    )
    assert response.status_code == 413
    assert words in response.content.decode()
    if headers:
        assert response["HX-Retarget"] == "#messages"


def test_a_multipart_form_with_megabytes_of_text_is_refused_in_words(owner, team, client):
    """Multipart text fields count against DATA_UPLOAD_MAX_MEMORY_SIZE while the
    form is parsed, which Django answers with its 400 page: that page says why."""
    from generation.models import Project

    project = Project.objects.create(team=team, name="Big text", created_by=owner)
    client.force_login(owner)
    response = client.post(
        f"/t/{team.slug}/projects/{project.pk}/submit/",
        {"prompt": "x" * 3_000_000, "tier": "flash", "size": "1K", "aspect": "1:1"},
    )
    assert response.status_code == 400
    assert "up to 2.5 MB" in response.content.decode()
