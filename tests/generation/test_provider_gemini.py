"""The Gemini provider against a fake Gemini API on a real localhost socket.

Each scenario of the shared reference's error table and response shapes must
end in the right exception (retry, give up, blocked) with words a designer
understands, and a good answer must yield the final image and its usage.
"""

from __future__ import annotations

import base64
import io
import socket

import pytest
from PIL import Image

from generation.providers import (
    BlockedError,
    PermanentError,
    RenderRequest,
    TransientError,
    configured_model_problems,
)
from generation.providers.gemini import GeminiProvider, check_models
from tests.fakes.gemini_server import FakeGemini, png

FLASH = "gemini-3.1-flash-image"
PRO = "gemini-3-pro-image"


@pytest.fixture(scope="module")
def fake_server():
    with FakeGemini() as server:
        yield server


@pytest.fixture
def gemini(fake_server):
    fake_server.reset()
    fake_server.retry_after = "1"
    return fake_server


@pytest.fixture
def provider(gemini):
    return GeminiProvider(api_key=gemini.api_key, api_base=gemini.url, timeout=1.0)


def request(prompt="a red fox in snow", *, model=FLASH, size="1K", aspect="16:9", refs=()):
    tier = "pro" if model == PRO else "flash"
    return RenderRequest(prompt, 1234, tier, size, aspect, model, refs)


def encoded(image_format: str, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format=image_format)
    return buffer.getvalue()


# --- what is sent -------------------------------------------------------------


def test_request_carries_prompt_config_seed_key_and_references(provider, gemini):
    refs = (encoded("PNG"), encoded("JPEG"), encoded("WEBP"))
    provider.render(request("a red fox in snow", size="2K", aspect="21:9", refs=refs))

    (sent,) = gemini.generate_requests()
    assert sent.path == f"/v1beta/models/{FLASH}:generateContent"
    assert sent.headers["x-goog-api-key"] == "test-key"
    assert sent.body["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "21:9", "imageSize": "2K"},
        "seed": 1234,
    }
    parts = sent.body["contents"][0]["parts"]
    assert parts[0] == {"text": "a red fox in snow"}
    assert [part["inline_data"]["mime_type"] for part in parts[1:]] == [
        "image/png",
        "image/jpeg",
        "image/webp",
    ]
    assert [base64.b64decode(part["inline_data"]["data"]) for part in parts[1:]] == list(refs)


def test_the_512_size_is_sent_as_512(provider, gemini):
    provider.render(request(size="512", aspect="1:1"))
    assert gemini.requests[-1].body["generationConfig"]["imageConfig"]["imageSize"] == "512"


def test_oversized_reference_is_shrunk_to_fit_inline(provider, gemini):
    # Noise keeps PNG big: a 4K draft promoted as a reference is like this.
    big = Image.frombytes("RGB", (2600, 1400), bytes(range(256)) * (2600 * 1400 * 3 // 256 + 1))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG", compress_level=0)
    assert len(buffer.getvalue()) > 7 * 1024 * 1024
    provider.render(request(refs=(buffer.getvalue(),)))
    inline = gemini.requests[-1].body["contents"][0]["parts"][1]["inline_data"]
    assert inline["mime_type"] == "image/jpeg"
    assert len(base64.b64decode(inline["data"])) <= 7 * 1024 * 1024


def test_reference_that_is_not_an_image_is_refused_before_sending(provider, gemini):
    with pytest.raises(PermanentError, match="not a PNG, JPEG or WebP"):
        provider.render(request(refs=(b"%PDF-1.7 ...",)))
    assert gemini.generate_requests() == []


def test_more_than_14_references_are_refused(provider, gemini):
    with pytest.raises(PermanentError, match="at most 14"):
        provider.render(request(refs=(encoded("PNG"),) * 15))
    assert gemini.generate_requests() == []


# --- good answers -------------------------------------------------------------


def test_success_returns_the_image_text_and_usage(provider):
    result = provider.render(request(size="1K", aspect="16:9"))
    assert result.mime_type == "image/png"
    assert result.model == FLASH
    assert result.text == "Here is your image."
    assert result.usage["totalTokenCount"] == 1132
    assert Image.open(io.BytesIO(result.image)).size == (1344, 768)


def test_interim_thought_image_is_skipped_for_the_final_one(provider):
    result = provider.render(request("[fault:thought] a hero shot", model=PRO, size="2K"))
    image = Image.open(io.BytesIO(result.image))
    assert image.size == (2688, 1536)  # the 64x64 interim image was not taken
    expected = Image.open(io.BytesIO(png(2688, 1536, "[fault:thought] a hero shot|1234|2K|16:9")))
    assert image.getpixel((0, 0)) == expected.getpixel((0, 0))
    assert result.text == "Here is your image."  # the thought text is not the answer
    assert result.usage["thoughtsTokenCount"] == 310


# --- retry ----------------------------------------------------------------------


def test_429_is_transient_and_honours_retry_after(provider, gemini):
    gemini.retry_after = "7"
    with pytest.raises(TransientError) as caught:
        provider.render(request("[fault:429] fox"))
    assert caught.value.retry_after == 7.0
    assert "rate limit or quota" in caught.value.message
    assert "RESOURCE_EXHAUSTED" in caught.value.detail


def test_429_without_retry_after_leaves_the_delay_to_the_lane(provider, gemini):
    gemini.retry_after = None
    with pytest.raises(TransientError) as caught:
        provider.render(request("[fault:429] fox"))
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("scenario", "words"),
    [("500", "internal error"), ("503", "overloaded"), ("504", "too long")],
)
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
    provider = GeminiProvider(api_key="k", api_base=f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(TransientError, match="could not be reached"):
        provider.render(request())


def test_fault_for_the_first_n_tries_then_success(provider):
    prompt = "[fault:503*2] fox"
    for _ in range(2):
        with pytest.raises(TransientError):
            provider.render(request(prompt))
    assert provider.render(request(prompt)).image.startswith(b"\x89PNG")


# --- give up ----------------------------------------------------------------------


def test_400_invalid_argument_is_permanent(provider):
    with pytest.raises(PermanentError, match="Gemini rejected the request") as caught:
        provider.render(request("[fault:400] fox"))
    assert not isinstance(caught.value, TransientError)
    assert "INVALID_ARGUMENT" in caught.value.detail


def test_400_failed_precondition_speaks_of_billing_and_region(provider):
    with pytest.raises(PermanentError, match="billing .* region"):
        provider.render(request("[fault:failed_precondition] fox"))


def test_403_speaks_of_the_key(provider):
    with pytest.raises(PermanentError, match="GEMINI_API_KEY"):
        provider.render(request("[fault:403] fox"))


def test_a_wrong_key_speaks_of_the_key(gemini):
    provider = GeminiProvider(api_key="wrong", api_base=gemini.url, timeout=1.0)
    with pytest.raises(PermanentError, match="refused the API key"):
        provider.render(request())


def test_no_key_fails_without_calling_gemini(gemini):
    provider = GeminiProvider(api_key="", api_base=gemini.url, timeout=1.0)
    with pytest.raises(PermanentError, match="no API key"):
        provider.render(request())
    assert gemini.requests == []


def test_404_names_the_unknown_model(provider):
    with pytest.raises(PermanentError) as caught:
        provider.render(request(model="gemini-3-pro-image-preview"))
    assert caught.value.message == (
        "The model id 'gemini-3-pro-image-preview' is not known to Gemini. "
        "Check FLASH_MODEL / PRO_MODEL."
    )


def test_malformed_json_is_permanent(provider):
    with pytest.raises(PermanentError, match="could not be read") as caught:
        provider.render(request("[fault:malformed] fox"))
    assert "malformed JSON" in caught.value.detail


def test_bytes_that_are_not_an_image_are_permanent(provider):
    with pytest.raises(PermanentError, match="image that could not be read"):
        provider.render(request("[fault:not_image] fox"))


def test_an_answer_without_an_image_is_permanent_and_quotes_the_text(provider):
    with pytest.raises(PermanentError, match="without an image. Gemini said: I can only"):
        provider.render(request("[fault:no_image] fox"))


# --- blocked ------------------------------------------------------------------------


def test_prompt_block_reason_is_blocked(provider):
    with pytest.raises(BlockedError) as caught:
        provider.render(request("[fault:blocked] fox"))
    assert caught.value.reason == "PROHIBITED_CONTENT"
    assert caught.value.message == (
        "Gemini declined this prompt for safety reasons (PROHIBITED_CONTENT). Try rewording it."
    )


def test_image_safety_finish_reason_is_blocked_with_the_explanation(provider):
    with pytest.raises(BlockedError) as caught:
        provider.render(request("[fault:image_safety] fox"))
    assert caught.value.reason == "IMAGE_SAFETY"
    assert caught.value.message.startswith(
        "Gemini declined this prompt for safety reasons (IMAGE_SAFETY). Try rewording it."
    )
    assert "may depict a real person" in caught.value.message


def test_scenario_by_model_id(gemini):
    provider = GeminiProvider(api_key=gemini.api_key, api_base=gemini.url, timeout=1.0)
    with pytest.raises(BlockedError):
        provider.render(request(model="fake-image_safety"))
    gemini.model_scenarios["flaky-model"] = "503"
    with pytest.raises(TransientError):
        provider.render(request(model="flaky-model"))


# --- start-up check of model ids --------------------------------------------------------


def test_check_models_follows_pages_and_accepts_known_ids(gemini):
    assert check_models(gemini.url, gemini.api_key, [FLASH, "gemini-nano-banana-2.1"]) == []
    listing = [request for request in gemini.requests if request.method == "GET"]
    assert len(listing) == 2  # three models, two per page
    assert listing[1].query["pageToken"] == ["2"]


def test_check_models_reports_a_wrong_id_plainly(gemini):
    problems = check_models(gemini.url, gemini.api_key, [FLASH, "gemini-3-pro-image-preview"])
    assert problems == [
        "The model id 'gemini-3-pro-image-preview' is not known to Gemini. "
        "Check FLASH_MODEL / PRO_MODEL."
    ]


def test_check_models_reports_a_refused_key(gemini):
    (problem,) = check_models(gemini.url, "wrong", [FLASH])
    assert problem.startswith("Could not list Gemini models")
    assert "API key not valid" in problem


def test_configured_model_problems_checks_only_gemini_tiers(gemini, settings):
    settings.GEMINI_API_KEY = gemini.api_key
    settings.GEMINI_API_BASE = gemini.url
    settings.FLASH_PROVIDER, settings.FLASH_MODEL = "offline", "anything-goes"
    settings.PRO_PROVIDER, settings.PRO_MODEL = "gemini", "gemini-3-pro-image-preview"
    assert configured_model_problems() == [
        "The model id 'gemini-3-pro-image-preview' is not known to Gemini. "
        "Check FLASH_MODEL / PRO_MODEL."
    ]
    settings.PRO_MODEL = PRO
    assert configured_model_problems() == []
    settings.GEMINI_API_KEY = ""
    gemini.reset()
    assert configured_model_problems() == []
    assert gemini.requests == []
