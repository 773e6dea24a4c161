"""The OpenAI provider against a fake Images API on a real localhost socket.

What is sent (size by aspect, quality by tier, references as multipart
parts), what a good answer yields, and how each kind of failure ends:
retry, give up in words, or blocked.
"""

from __future__ import annotations

import io
import math
import socket

import pytest
from PIL import Image

from generation import catalog
from generation.providers import (
    BlockedError,
    PermanentError,
    RenderRequest,
    TransientError,
    provider_for,
)
from generation.providers.openai import SIZE_FOR_ASPECT, OpenAIProvider
from tests.fakes.openai_server import FakeOpenAI

MODEL = "gpt-image-1.5"  # the three standard shapes only


@pytest.fixture(scope="module")
def fake_server():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai(fake_server):
    fake_server.reset()
    fake_server.retry_after = "2"
    return fake_server


@pytest.fixture
def provider(openai):
    return OpenAIProvider(api_key=openai.api_key, api_base=openai.url, timeout=1.0)


def request(prompt="a red fox in snow", *, tier="flash", size="1K", aspect="3:2", refs=()):
    return RenderRequest(prompt, 1234, tier, size, aspect, MODEL, refs)


def encoded(image_format: str, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format=image_format)
    return buffer.getvalue()


# --- the size table --------------------------------------------------------------


def test_every_aspect_maps_to_the_nearest_accepted_shape():
    shapes = {"1024x1024": 1.0, "1536x1024": 1.5, "1024x1536": 1024 / 1536}
    for aspect in catalog.ASPECTS[catalog.FLASH]:
        width, height = catalog.ONE_K[aspect]
        nearest = min(shapes, key=lambda shape: abs(math.log(width / height / shapes[shape])))
        assert SIZE_FOR_ASPECT[aspect] == nearest, aspect


# --- what is sent ----------------------------------------------------------------


def test_generation_sends_model_prompt_size_quality_and_the_key(provider, openai):
    provider.render(request(size="1K", aspect="3:2"))
    (sent,) = openai.requests
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.fields == {
        "model": MODEL,
        "prompt": "a red fox in snow",
        "size": "1536x1024",
        "quality": "low",
        "n": 1,
        "output_format": "png",
    }


def test_quality_follows_the_tier(openai):
    provider = OpenAIProvider(
        api_key=openai.api_key,
        api_base=openai.url,
        qualities={"flash": "medium", "pro": "high"},
        timeout=1.0,
    )
    provider.render(request(tier="flash", aspect="2:3"))
    provider.render(request(tier="pro", size="1K", aspect="1:1"))
    assert [(r.fields["quality"], r.fields["size"]) for r in openai.requests] == [
        ("medium", "1024x1536"),
        ("high", "1024x1024"),
    ]


def test_references_go_to_edits_as_multipart_image_parts(provider, openai):
    refs = (encoded("PNG"), encoded("JPEG"), encoded("WEBP"))
    result = provider.render(request("keep the fox, make it night", tier="pro", refs=refs))
    assert result.image.startswith(b"\x89PNG")

    (sent,) = openai.requests
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.fields == {
        "model": MODEL,
        "prompt": "keep the fox, make it night",
        "size": "1536x1024",
        "quality": "high",
        "n": "1",
        "output_format": "png",
    }
    assert [(part.name, part.filename, part.content_type) for part in sent.parts] == [
        ("image[]", "reference-1.png", "image/png"),
        ("image[]", "reference-2.jpg", "image/jpeg"),
        ("image[]", "reference-3.webp", "image/webp"),
    ]
    assert [part.data for part in sent.parts] == list(refs)


def test_a_reference_that_is_not_an_image_is_refused_before_sending(provider, openai):
    with pytest.raises(PermanentError, match="not a PNG, JPEG or WebP"):
        provider.render(request(refs=(b"%PDF-1.7 ...",)))
    assert openai.requests == []


def test_more_than_16_references_are_refused(provider, openai):
    with pytest.raises(PermanentError, match="at most 16"):
        provider.render(request(refs=(encoded("PNG"),) * 17))
    assert openai.requests == []


# --- good answers ------------------------------------------------------------------


def test_success_returns_the_provider_pixels_and_usage(provider):
    result = provider.render(request(size="1K", aspect="3:2"))
    assert result.mime_type == "image/png"
    assert result.model == MODEL
    assert result.usage["total_tokens"] == 4210
    assert Image.open(io.BytesIO(result.image)).size == (1536, 1024)


def test_provider_for_builds_it_from_settings(openai, settings):
    settings.PRO_PROVIDER, settings.PRO_MODEL = "openai", MODEL
    settings.OPENAI_API_KEY, settings.OPENAI_API_BASE = openai.api_key, openai.url
    settings.OPENAI_PRO_QUALITY = "medium"
    provider = provider_for("pro")
    assert (provider.name, provider.label) == ("openai", "OpenAI")
    provider.render(request(tier="pro", aspect="2:3"))
    assert openai.requests[-1].fields["quality"] == "medium"


# --- retry ---------------------------------------------------------------------------


def test_429_is_transient_and_honours_retry_after(provider, openai):
    openai.retry_after = "7"
    with pytest.raises(TransientError) as caught:
        provider.render(request("[fault:429] fox"))
    assert caught.value.retry_after == 7.0
    assert "rate limit" in caught.value.message
    assert "rate_limit_exceeded" in caught.value.detail


def test_429_without_retry_after_leaves_the_delay_to_the_lane(provider, openai):
    openai.retry_after = None
    with pytest.raises(TransientError) as caught:
        provider.render(request("[fault:429] fox"))
    assert caught.value.retry_after is None


@pytest.mark.parametrize(("scenario", "words"), [("500", "internal error"), ("503", "overloaded")])
def test_server_errors_are_transient(provider, scenario, words):
    with pytest.raises(TransientError, match=words) as caught:
        provider.render(request(f"[fault:{scenario}] fox"))
    assert f"HTTP {scenario}" in caught.value.detail


def test_a_slow_answer_times_out_as_transient(provider):
    with pytest.raises(TransientError, match="did not answer in time"):
        provider.render(request("[fault:slow] fox"))


def test_a_closed_port_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIProvider(api_key="k", api_base=f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(TransientError, match="could not be reached"):
        provider.render(request())


def test_fault_for_the_first_n_tries_then_success(provider):
    prompt = "[fault:503*2] fox"
    for _ in range(2):
        with pytest.raises(TransientError):
            provider.render(request(prompt))
    assert provider.render(request(prompt)).image.startswith(b"\x89PNG")


# --- give up ---------------------------------------------------------------------------


def test_an_empty_quota_is_permanent_not_retried(provider):
    with pytest.raises(PermanentError, match="out of credit") as caught:
        provider.render(request("[fault:insufficient_quota] fox"))
    assert not isinstance(caught.value, TransientError)


def test_400_is_permanent_and_quotes_openai(provider):
    with pytest.raises(PermanentError, match="OpenAI rejected the request: Invalid value"):
        provider.render(request("[fault:400] fox"))


def test_a_wrong_key_speaks_of_the_key(openai):
    provider = OpenAIProvider(api_key="sk-wrong", api_base=openai.url, timeout=1.0)
    with pytest.raises(PermanentError, match="refused the API key. Check that OPENAI_API_KEY"):
        provider.render(request())


def test_401_scenario_speaks_of_the_key(provider):
    with pytest.raises(PermanentError, match="OPENAI_API_KEY"):
        provider.render(request("[fault:401] fox"))


def test_403_speaks_of_access_to_the_model(provider):
    with pytest.raises(PermanentError) as caught:
        provider.render(request("[fault:403] fox"))
    assert f"does not let this API key use '{MODEL}'" in caught.value.message
    assert "must be verified" in caught.value.message


def test_an_unknown_model_is_named(openai):
    provider = OpenAIProvider(api_key=openai.api_key, api_base=openai.url, timeout=1.0)
    with pytest.raises(PermanentError) as caught:
        provider.render(RenderRequest("fox", 1, "flash", "1K", "1:1", "gpt-image-9"))
    assert caught.value.message == (
        "The model id 'gpt-image-9' is not known to OpenAI. Check FLASH_MODEL / PRO_MODEL."
    )


def test_no_key_fails_without_calling_openai(openai):
    provider = OpenAIProvider(api_key="", api_base=openai.url, timeout=1.0)
    with pytest.raises(PermanentError, match="no API key"):
        provider.render(request())
    assert openai.requests == []


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ("malformed", "answer that could not be read"),
        ("no_data", "without an image"),
        ("not_image", "image that could not be read"),
    ],
)
def test_broken_answers_are_permanent(provider, scenario, words):
    with pytest.raises(PermanentError, match=words):
        provider.render(request(f"[fault:{scenario}] fox"))


# --- blocked -------------------------------------------------------------------------------


def test_moderation_blocked_is_blocked_with_the_categories(provider):
    with pytest.raises(BlockedError) as caught:
        provider.render(request("[fault:moderation_blocked] fox"))
    assert caught.value.reason == "moderation_blocked"
    assert caught.value.message == (
        "OpenAI declined this prompt for safety reasons (moderation_blocked). "
        "Try rewording it. Flagged: violence."
    )
    assert "safety system" in caught.value.detail


def test_content_policy_violation_is_blocked(provider):
    with pytest.raises(BlockedError) as caught:
        provider.render(request("[fault:content_policy_violation] fox"))
    assert caught.value.reason == "content_policy_violation"


def test_blocked_on_an_edit_too(provider):
    with pytest.raises(BlockedError):
        provider.render(request("[fault:moderation_blocked] fox", refs=(encoded("PNG"),)))


def test_a_square_comes_back_square(provider):
    result = provider.render(request(size="1K", aspect="1:1"))
    assert Image.open(io.BytesIO(result.image)).size == (1024, 1024)


# --- through the lane ---------------------------------------------------------------------


def test_drafts_through_the_lane_keep_the_models_pixels_and_blocks_are_blocked(
    owner, team, db, openai, settings
):
    from generation.models import Status
    from tests.reliability.conftest import fund, submit
    from tests.reliability.test_provider_faults import drain

    settings.FLASH_PROVIDER, settings.FLASH_MODEL = "openai", "gpt-image-2.5-sunburst"
    settings.OPENAI_API_KEY, settings.OPENAI_API_BASE = openai.api_key, openai.url
    fund(team, owner)
    drafts = submit(team, owner, count=2, size="2K", aspect="16:9", prompt="a harbour at dawn")
    refused = submit(team, owner, count=1, prompt="a harbour [fault:moderation_blocked]")
    drain("flash")

    for generation in drafts.generations.select_related("asset"):
        assert generation.status == Status.SUCCEEDED
        # The real 2K 16:9 size, asked for by WIDTHxHEIGHT.
        assert (generation.asset.width, generation.asset.height) == (2688, 1536)
    generation = refused.generations.get()
    assert generation.status == Status.BLOCKED
    assert generation.error.startswith("OpenAI declined this prompt for safety reasons")


# --- today's models: the real size, and what a model cannot make ----------------------


def test_2x_models_are_asked_for_the_real_pixels_of_the_size(openai):
    sunburst = OpenAIProvider(
        api_key=openai.api_key, api_base=openai.url, qualities={"pro": "max"}, timeout=1.0
    )
    result = sunburst.render(
        RenderRequest("a fox", 1, "pro", "2K", "16:9", "gpt-image-2.5-sunburst")
    )
    sent = openai.requests[-1].fields
    assert (sent["size"], sent["quality"]) == ("2688x1536", "max")
    assert Image.open(io.BytesIO(result.image)).size == (2688, 1536)

    # `max` exists on 2.5 only: gpt-image-2 is sent its best, `high`.
    sunburst.render(RenderRequest("a fox", 1, "pro", "1K", "9:16", "gpt-image-2"))
    assert (openai.requests[-1].fields["size"], openai.requests[-1].fields["quality"]) == (
        "768x1344",
        "high",
    )


def test_a_size_the_model_cannot_make_is_refused_before_sending(provider, openai):
    with pytest.raises(PermanentError, match="renders at 1K, not 4K"):
        provider.render(request(size="4K", aspect="1:1"))
    with pytest.raises(PermanentError, match="cannot make 16:9"):
        provider.render(request(aspect="16:9"))
    assert openai.requests == []
