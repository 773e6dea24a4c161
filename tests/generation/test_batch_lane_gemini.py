"""The batch lane against the fake Gemini batch endpoint.

The fake's shapes are checked with Google's own python-genai SDK: it creates,
follows, downloads and cancels jobs on the fake and reads every answer into
its types (BatchJob, InlinedResponse), so a field the SDK would not find
fails here. Then the lane runs on it: partial failure, expiry, failure,
cancel, the JSONL file route and a result nobody asked for.
"""

from __future__ import annotations

import io

import pytest

from billing.selectors import wallet_balance
from generation import batch_lane
from generation.models import Generation, ProviderBatchJob, Status
from generation.providers import gemini_batch
from generation.services import batch_cancel
from tests.fakes.gemini_server import FakeGemini
from tests.reliability.conftest import (
    LIST_PRICES,
    assert_books_balance,
    assert_every_job_settled,
    fund,
    submit,
)

HALF = -(-LIST_PRICES[("flash", "1K")] // 2)
MODEL = "gemini-3.1-flash-image"


@pytest.fixture
def gemini(settings):
    with FakeGemini() as fake:
        settings.FLASH_PROVIDER = "gemini"
        settings.GEMINI_API_BASE = fake.url
        settings.GEMINI_API_KEY = fake.api_key
        settings.FLASH_MODEL = MODEL
        yield fake


@pytest.fixture
def funded(owner, team):
    fund(team, owner, amount=100_000)
    return team


# --- the fake's shapes, read by Google's SDK --------------------------------------------


@pytest.fixture
def sdk(gemini):
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    client = genai.Client(
        api_key=gemini.api_key,
        http_options=types.HttpOptions(base_url=gemini.url, api_version="v1beta"),
    )
    return client, types


def _inline(types, prompt: str, key: str):
    return types.InlinedRequest(
        contents=prompt,
        metadata={"key": key},
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="1:1", image_size="1K"),
            seed=7,
        ),
    )


def test_the_sdk_reads_an_inline_job_with_a_partial_failure(sdk, gemini):
    client, types = sdk
    job = client.batches.create(
        model=MODEL,
        src=[_inline(types, "a teapot", "1"), _inline(types, "a teapot [fault:400]", "2")],
        config={"display_name": "shapes"},
    )
    assert isinstance(job, types.BatchJob) and job.name.startswith("batches/")
    done = client.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    ok, failed = done.dest.inlined_responses
    assert isinstance(ok, types.InlinedResponse) and ok.metadata == {"key": "1"}
    assert ok.response.candidates[0].content.parts[-1].inline_data.data.startswith(b"\x89PNG")
    assert failed.metadata == {"key": "2"} and failed.error.code == 400


def test_our_inline_request_is_what_the_sdk_sends(sdk, gemini):
    from generation.providers import RenderRequest
    from generation.providers.batch_base import BatchItem

    client, types = sdk
    client.batches.create(model=MODEL, src=[_inline(types, "a teapot", "1")])
    theirs = gemini.requests[-1].body["batch"]["inputConfig"]["requests"]["requests"][0]
    ours_client = gemini_batch.GeminiBatchClient(api_key=gemini.api_key, api_base=gemini.url)
    request = RenderRequest(
        prompt="a teapot", seed=7, tier="flash", size="1K", aspect="1:1", model=MODEL
    )
    ours_client.submit(model=MODEL, display_name="x", items=[BatchItem("1", request)])
    ours = gemini.requests[-1].body["batch"]["inputConfig"]["requests"]["requests"][0]
    assert ours["metadata"] == theirs["metadata"]
    assert ours["request"]["contents"] == theirs["request"]["contents"]
    assert ours["request"]["generationConfig"] == theirs["request"]["generationConfig"]


def test_the_sdk_reads_the_jsonl_file_route(sdk, gemini):
    client, types = sdk
    lines = b'{"key": "9", "request": {"contents": [{"parts": [{"text": "a kettle"}]}]}}\n'
    uploaded = client.files.upload(
        file=io.BytesIO(lines), config=types.UploadFileConfig(mime_type="application/jsonl")
    )
    job = client.batches.create(model=MODEL, src=uploaded.name)
    done = client.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED and done.dest.file_name
    assert b'"key": "9"' in client.files.download(file=done.dest.file_name)


def test_the_sdk_sees_cancel_and_expiry(sdk, gemini):
    client, types = sdk
    gemini.batch_delay = 3600
    job = client.batches.create(model=MODEL, src=[_inline(types, "a teapot", "1")])
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_PENDING
    client.batches.cancel(name=job.name)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_CANCELLED
    gemini.batch_delay = 0
    gemini.batch_outcome = "expired"
    job = client.batches.create(model=MODEL, src=[_inline(types, "a teapot", "1")])
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_EXPIRED


# --- the lane on the fake -----------------------------------------------------------------


def test_partial_failure_on_gemini_captures_the_images_and_releases_the_rest(funded, owner, gemini):
    good = submit(funded, owner, lane="batch", count=2, prompt="a harbour")
    bad = submit(funded, owner, lane="batch", count=1, prompt="a harbour [fault:400]")
    blocked = submit(funded, owner, lane="batch", count=1, prompt="a harbour [fault:blocked]")
    batch_lane.wait_for([good, bad, blocked])
    creates = [r for r in gemini.requests if r.path.endswith(":batchGenerateContent")]
    assert len(creates) == 3
    keys = creates[0].body["batch"]["inputConfig"]["requests"]["requests"]
    assert {k["metadata"]["key"] for k in keys} == {
        str(pk) for pk in Generation.objects.filter(batch=good).values_list("pk", flat=True)
    }
    assert set(Generation.objects.filter(batch=good).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    assert Generation.objects.get(batch=bad).status == Status.FAILED
    assert Generation.objects.get(batch=blocked).status == Status.BLOCKED
    available, held = wallet_balance(funded)
    assert (100_000 - available, held) == (2 * HALF, 0)
    assert_every_job_settled([good, bad, blocked])
    assert_books_balance()


@pytest.mark.parametrize("outcome", ["expired", "failed"])
def test_an_expired_or_failed_gemini_job_releases_everything(funded, owner, gemini, outcome):
    gemini.batch_outcome = outcome
    batch = submit(funded, owner, lane="batch", count=3)
    batch_lane.wait_for([batch])
    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.FAILED
    }
    assert ProviderBatchJob.objects.get().state == outcome
    assert wallet_balance(funded) == (100_000, 0)
    assert_every_job_settled([batch])
    assert_books_balance()


def test_cancel_from_the_grid_cancels_the_gemini_job(funded, owner, gemini):
    gemini.batch_delay = 3600
    batch = submit(funded, owner, lane="batch", count=2)
    batch_lane.tick()
    job = ProviderBatchJob.objects.get()
    batch_cancel(batch=batch, actor=owner)
    assert any(r.path == f"/v1beta/{job.name}:cancel" for r in gemini.requests)
    assert gemini.batches[job.name]["cancelled"]
    assert wallet_balance(funded) == (100_000, 0)
    batch_lane.tick()
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_big_job_goes_through_the_jsonl_file_route(funded, owner, gemini, monkeypatch):
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 100)
    batch = submit(funded, owner, lane="batch", count=3)
    batch_lane.wait_for([batch])
    assert any(r.path == "/upload/v1beta/files" for r in gemini.requests)
    create = next(r for r in gemini.requests if r.path.endswith(":batchGenerateContent"))
    assert create.body["batch"]["inputConfig"]["fileName"].startswith("files/")
    assert set(Generation.objects.filter(batch=batch).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    assert_every_job_settled([batch])
    assert_books_balance()


def test_a_request_with_no_result_is_released_and_an_unknown_result_dropped(funded, owner, gemini):
    gemini.batch_extra_keys = ("424242",)
    kept = submit(funded, owner, lane="batch", count=1, prompt="a pier")
    lost = submit(funded, owner, lane="batch", count=1, prompt="a pier [batch:lost]")
    batch_lane.wait_for([kept, lost])
    assert Generation.objects.get(batch=kept).status == Status.SUCCEEDED
    missing = Generation.objects.get(batch=lost)
    assert missing.status == Status.FAILED and "returned no image" in missing.error
    assert_every_job_settled([kept, lost])
    assert_books_balance()
