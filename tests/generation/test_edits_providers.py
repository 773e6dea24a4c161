"""What each provider is sent for an edit or a variation, against the local fakes.

The Gemini conversation of a chained edit is checked against the documented
multi-turn shape and against the field definitions of Google's own SDK types
(google-genai, whose pydantic models forbid unknown fields).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
from PIL import Image, ImageStat

from generation.providers import EditTurn, PermanentError, RenderRequest
from generation.providers.gemini import GeminiProvider
from generation.providers.offline import OfflineProvider
from generation.providers.openai import OpenAIProvider
from tests.fakes.gemini_server import FakeGemini, png, signature_for
from tests.fakes.openai_server import FakeOpenAI

FLASH = "gemini-3.1-flash-image"


@pytest.fixture(scope="module")
def gemini_server():
    with FakeGemini() as server:
        yield server


@pytest.fixture
def gemini(gemini_server):
    gemini_server.reset()
    return gemini_server


@pytest.fixture
def provider(gemini):
    return GeminiProvider(api_key=gemini.api_key, api_base=gemini.url, timeout=5.0)


def edit(instruction, *, source, turns=(), chain_start=b"", model=FLASH, refs=()):
    return RenderRequest(
        "a lighthouse on a cliff", 77, "flash", "1K", "16:9", model, refs,
        source=source, instruction=instruction, turns=tuple(turns), chain_start=chain_start,
    )  # fmt: skip


def inline(data: bytes) -> dict:
    return {"mime_type": "image/png", "data": base64.b64encode(data).decode()}


DRAFT = png(64, 36, "the draft")


# --- Gemini: the conversation -----------------------------------------------------------


def test_a_first_edit_sends_the_instruction_with_the_source_image(provider, gemini):
    result = provider.render(edit("make the sky stormy", source=DRAFT))
    (sent,) = gemini.generate_requests()
    assert sent.body["contents"] == [
        {"role": "user", "parts": [{"text": "make the sky stormy"}, {"inline_data": inline(DRAFT)}]}
    ]
    assert sent.body["generationConfig"]["imageConfig"] == {
        "aspectRatio": "16:9",
        "imageSize": "1K",
    }
    # What the model answered is kept for the next turn: its signature with it.
    assert result.signature and result.signature == gemini_signature_of(sent)


def gemini_signature_of(sent) -> str:
    config = sent.body["generationConfig"]
    image = config["imageConfig"]
    text = sent.body["contents"][-1]["parts"][0]["text"]
    return signature_for(f"{text}|{config['seed']}|{image['imageSize']}|{image['aspectRatio']}")


def test_a_third_turn_carries_the_earlier_turns_with_their_signatures(provider, gemini):
    first = provider.render(edit("make the sky stormy", source=DRAFT))
    turn_one = EditTurn("make the sky stormy", first.image, first.signature)
    second = provider.render(
        edit("add a ship", source=first.image, turns=[turn_one], chain_start=DRAFT)
    )
    turn_two = EditTurn("add a ship", second.image, second.signature)
    third = provider.render(
        edit("now at night", source=second.image, turns=[turn_one, turn_two], chain_start=DRAFT)
    )
    assert first.signature != second.signature and third.signature

    sent = gemini.generate_requests()[-1]
    contents = sent.body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[0]["parts"] == [{"text": "make the sky stormy"}, {"inline_data": inline(DRAFT)}]
    assert contents[1]["parts"] == [
        {"inline_data": inline(first.image), "thoughtSignature": first.signature}
    ]
    assert contents[2]["parts"] == [{"text": "add a ship"}]
    assert contents[3]["parts"] == [
        {"inline_data": inline(second.image), "thoughtSignature": second.signature}
    ]
    assert contents[4]["parts"] == [{"text": "now at night"}]


def test_the_conversation_matches_the_sdk_types(provider, gemini):
    types = pytest.importorskip("google.genai.types")
    first = provider.render(edit("make the sky stormy", source=DRAFT))
    turn = EditTurn("make the sky stormy", first.image, first.signature)
    provider.render(edit("add a ship", source=first.image, turns=[turn], chain_start=DRAFT))
    body = gemini.generate_requests()[-1].body

    assert set(body) == {"contents", "generationConfig"}
    contents = [types.Content.model_validate_json(json.dumps(c)) for c in body["contents"]]
    answer = contents[1].parts[0]
    assert contents[1].role == "model"
    assert answer.inline_data.data == first.image and answer.inline_data.mime_type == "image/png"
    assert answer.thought_signature == base64.b64decode(first.signature)
    assert contents[0].parts[1].inline_data.data == DRAFT
    assert contents[2].parts[0].text == "add a ship"
    config = types.GenerateContentConfig.model_validate_json(json.dumps(body["generationConfig"]))
    assert config.image_config.aspect_ratio == "16:9" and config.seed == 77


def test_the_sdk_types_would_catch_a_misnamed_field():
    types = pytest.importorskip("google.genai.types")
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        types.Content.model_validate({"role": "model", "parts": [{"thoughtSignatures": "eA=="}]})


def test_turns_without_signatures_start_again_from_the_latest_image(provider, gemini):
    # A chain made on another provider has no signatures Gemini would accept.
    earlier = png(64, 36, "made elsewhere")
    provider.render(
        edit("now at night", source=earlier, turns=[EditTurn("add a ship", earlier)],
             chain_start=DRAFT)
    )  # fmt: skip
    (sent,) = gemini.generate_requests()
    assert sent.body["contents"] == [
        {"role": "user", "parts": [{"text": "now at night"}, {"inline_data": inline(earlier)}]}
    ]


def test_the_fake_refuses_a_model_turn_without_its_signature(gemini):
    provider = GeminiProvider(api_key=gemini.api_key, api_base=gemini.url, timeout=5.0)
    from generation.providers import gemini as module

    body = module.request_body(edit("a", source=DRAFT))
    body["contents"] += [
        {"role": "model", "parts": [{"inline_data": inline(DRAFT)}]},
        {"role": "user", "parts": [{"text": "b"}]},
    ]
    import httpx

    answer = httpx.post(
        f"{gemini.url}/v1beta/models/{FLASH}:generateContent",
        json=body,
        headers={"x-goog-api-key": gemini.api_key},
    )
    assert answer.status_code == 400 and "thought_signature" in answer.text
    assert provider  # the provider itself never sends such a turn (above)


def test_a_variation_sends_the_source_with_words_for_its_strength(provider, gemini):
    for strength, words in (
        ("subtle", "keep its composition"),
        ("strong", "different composition"),
    ):
        provider.render(
            RenderRequest("a lighthouse", 5, "flash", "1K", "16:9", FLASH, (),
                          source=DRAFT, variation=strength, source_seed=4)
        )  # fmt: skip
        parts = gemini.generate_requests()[-1].body["contents"][0]["parts"]
        assert words in parts[0]["text"] and parts[0]["text"].endswith("a lighthouse")
        assert parts[-1] == {"inline_data": inline(DRAFT)}


def test_too_many_images_with_the_source_are_refused_before_sending(provider, gemini):
    with pytest.raises(PermanentError, match="at most 14"):
        provider.render(
            RenderRequest("x", 1, "flash", "1K", "1:1", FLASH, (DRAFT,) * 14,
                          source=DRAFT, variation="subtle")
        )  # fmt: skip
    assert gemini.generate_requests() == []


# --- OpenAI: the latest image and the instruction, as multipart ---------------------------


def test_an_openai_edit_is_multipart_with_the_latest_image_first():
    with FakeOpenAI() as openai:
        provider = OpenAIProvider(api_key=openai.api_key, api_base=openai.url, timeout=5.0)
        reference = png(32, 32, "a reference")
        latest = png(64, 36, "the latest edit")
        result = provider.render(
            edit("now at night", source=latest, turns=[EditTurn("add a ship", latest, "sig")],
                 chain_start=DRAFT, model="gpt-image-2.5-sunburst", refs=(reference,))
        )  # fmt: skip
        assert result.image.startswith(b"\x89PNG")
        (sent,) = openai.requests
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.fields["prompt"] == "now at night"  # no conversation: only the latest words
    assert [(part.name, part.data) for part in sent.parts] == [
        ("image[]", latest),
        ("image[]", reference),
    ]


def test_an_openai_variation_words_the_strength_and_sends_the_source():
    with FakeOpenAI() as openai:
        provider = OpenAIProvider(api_key=openai.api_key, api_base=openai.url, timeout=5.0)
        provider.render(
            RenderRequest("a lighthouse", 5, "flash", "1K", "1:1", "gpt-image-2.5-sunburst", (),
                          source=DRAFT, variation="strong")
        )  # fmt: skip
        (sent,) = openai.requests
    assert sent.path == "/v1/images/edits"
    assert "same idea" in sent.fields["prompt"] and sent.fields["prompt"].endswith("a lighthouse")
    assert [part.data for part in sent.parts] == [DRAFT]


# --- the offline renderer: deterministic, visible edits --------------------------------


def offline(request) -> Image.Image:
    return Image.open(io.BytesIO(OfflineProvider().render(request).image)).convert("RGB")


@pytest.fixture
def draft_png():
    request = RenderRequest("a lighthouse on a cliff", 77, "flash", "512", "16:9", "m")
    return OfflineProvider().render(request).image


def offline_edit(source, instruction, size="512"):
    return RenderRequest(
        "a lighthouse on a cliff", 77, "flash", size, "16:9", "m", source=source,
        instruction=instruction,
    )  # fmt: skip


def mean(image, box=None) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(image.crop(box) if box else image).mean)


def difference(first: Image.Image, second: Image.Image, box=None) -> float:
    from PIL import ImageChops

    diff = ImageChops.difference(first, second)
    return sum(ImageStat.Stat(diff.crop(box) if box else diff).mean) / 3


def test_an_offline_edit_is_deterministic_and_keeps_the_layout(draft_png):
    source = Image.open(io.BytesIO(draft_png)).convert("RGB")
    once = offline(offline_edit(draft_png, "add a moon at the top left"))
    again = offline(offline_edit(draft_png, "add a moon at the top left"))
    assert once.tobytes() == again.tobytes()
    # Only the named region changes: the bottom right stays as it was.
    width, height = source.size
    corner = (width * 3 // 4, height * 3 // 4, width, height)
    region = (0, 0, width // 2, height // 2)
    assert difference(source, once, corner) < 1
    assert difference(source, once, region) > difference(source, once, corner) + 1


def test_colour_words_shift_the_palette(draft_png):
    source = offline(RenderRequest("a lighthouse on a cliff", 77, "flash", "512", "16:9", "m"))
    red = mean(offline(offline_edit(draft_png, "make it red")))
    blue = mean(offline(offline_edit(draft_png, "make it blue")))
    assert red[0] - red[2] > mean(source)[0] - mean(source)[2]
    assert blue[2] - blue[0] > mean(source)[2] - mean(source)[0]


def test_remove_takes_detail_away_and_unknown_words_still_change_something(
    draft_png,
):
    from PIL import ImageFilter

    source = Image.open(io.BytesIO(draft_png)).convert("RGB")
    removed = offline(offline_edit(draft_png, "remove the shape in the centre"))
    width, height = source.size
    centre = (width * 2 // 5, height * 2 // 5, width * 3 // 5, height * 3 // 5)

    def detail(image):
        edges = image.crop(centre).filter(ImageFilter.FIND_EDGES)
        return sum(ImageStat.Stat(edges).mean)

    assert detail(removed) < detail(source)
    other = offline(offline_edit(draft_png, "make it feel like a poem"))
    assert difference(source, other) > 0.5


def test_an_edit_renders_at_the_requested_size(draft_png):
    assert offline(offline_edit(draft_png, "red", size="1K")).size == (1344, 768)


def test_offline_variations_subtle_stay_close_and_strong_move_away(draft_png):
    source = Image.open(io.BytesIO(draft_png)).convert("RGB")

    def vary(strength, seed):
        return offline(
            RenderRequest("a lighthouse on a cliff", seed, "flash", "512", "16:9", "m",
                          source=draft_png, variation=strength, source_seed=77)
        )  # fmt: skip

    subtle = [vary("subtle", seed) for seed in (1, 2)]
    strong = [vary("strong", seed) for seed in (1, 2)]
    assert subtle[0].tobytes() != subtle[1].tobytes()
    assert vary("subtle", 1).tobytes() == subtle[0].tobytes()
    assert max(difference(source, s) for s in subtle) < min(difference(source, s) for s in strong)
    assert (
        hashlib.sha256(strong[0].tobytes()).digest() != hashlib.sha256(strong[1].tobytes()).digest()
    )
