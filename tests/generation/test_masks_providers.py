"""What each provider is sent for a region edit (a painted mask), against the local fakes.

OpenAI gets the mask as the multipart `mask` file (transparent = change), the
same size as the image; ComfyUI gets the image and the mask uploaded and the
inpainting template filled with both; Gemini, which takes no mask, gets it as a
second image with words, checked against google-genai's own types.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import redis
from PIL import Image

from generation import catalog
from generation.imaging import clean_mask
from generation.providers import PermanentError, RenderRequest
from generation.providers.comfyui import ComfyUIProvider
from generation.providers.gemini import MASK_WORDING, GeminiProvider
from generation.providers.openai import OpenAIProvider
from tests.fakes.comfyui_server import FakeComfyUI
from tests.fakes.gemini_server import FakeGemini, png
from tests.fakes.openai_server import FakeOpenAI

from .test_masks import mask_png

WORKFLOWS = Path(__file__).resolve().parents[2] / "generation/providers/comfyui_workflows"
SOURCE = png(64, 36, "the image to edit")
MASK = clean_mask(mask_png((64, 36), (0.5, 0, 1, 1)), size=(64, 36)).data


def region_edit(model, instruction="a red sail", **fields) -> RenderRequest:
    return RenderRequest(
        "a harbour at dusk", 9, "flash", "1K", "16:9", model,
        source=SOURCE, instruction=instruction, mask=MASK, **fields,
    )  # fmt: skip


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# --- OpenAI: images/edits with the `mask` file -------------------------------------------


def test_openai_gets_the_mask_as_a_multipart_file_the_size_of_the_image():
    with FakeOpenAI() as openai:
        provider = OpenAIProvider(api_key=openai.api_key, api_base=openai.url, timeout=5.0)
        result = provider.render(region_edit("gpt-image-2.5-sunburst"))
        (sent,) = openai.requests
    assert result.image.startswith(b"\x89PNG") and sent.path == "/v1/images/edits"
    assert sent.fields["prompt"] == "a red sail"
    assert [part.name for part in sent.parts] == ["image[]", "mask"]
    image, mask = sent.parts
    assert image.data == SOURCE and mask.content_type == "image/png"
    with opened(mask.data) as alpha:
        assert alpha.mode == "RGBA" and alpha.size == opened(image.data).size
        assert alpha.getpixel((60, 10))[3] == 0  # painted white: OpenAI may change it
        assert alpha.getpixel((4, 10))[3] == 255  # black: kept


def test_the_openai_fake_refuses_a_mask_of_another_size():
    """What the real API says of a mask that is not the image's size (400)."""
    with FakeOpenAI() as openai:
        provider = OpenAIProvider(api_key=openai.api_key, api_base=openai.url, timeout=5.0)
        wrong = clean_mask(mask_png((32, 32)), size=(32, 32)).data
        with pytest.raises(PermanentError, match="not the same size"):
            provider.render(
                RenderRequest(
                    "x", 1, "flash", "1K", "16:9", "gpt-image-2.5-sunburst",
                    source=SOURCE, instruction="a sail", mask=wrong,
                )
            )  # fmt: skip


def test_an_openai_edit_without_a_mask_sends_no_mask_part():
    with FakeOpenAI() as openai:
        provider = OpenAIProvider(api_key=openai.api_key, api_base=openai.url, timeout=5.0)
        provider.render(
            RenderRequest("p", 1, "flash", "1K", "16:9", "gpt-image-2.5-sunburst",
                          source=SOURCE, instruction="a sail")
        )  # fmt: skip
        (sent,) = openai.requests
    assert [part.name for part in sent.parts] == ["image[]"]


# --- Gemini: the mask as a second image, with words ----------------------------------------


@pytest.fixture(scope="module")
def gemini_server():
    with FakeGemini() as server:
        yield server


@pytest.fixture
def gemini(gemini_server):
    gemini_server.reset()
    return gemini_server


def inline(data: bytes) -> dict:
    return {"mime_type": "image/png", "data": base64.b64encode(data).decode()}


def test_gemini_gets_the_mask_as_a_second_image_with_words(gemini):
    provider = GeminiProvider(api_key=gemini.api_key, api_base=gemini.url, timeout=5.0)
    provider.render(region_edit("gemini-3.1-flash-image"))
    (sent,) = gemini.generate_requests()
    (turn,) = sent.body["contents"]
    assert turn["role"] == "user"
    text, image, mask = turn["parts"]
    assert text["text"] == f"a red sail\n\n{MASK_WORDING}"
    assert "only inside its white area" in text["text"]
    assert (image, mask) == ({"inline_data": inline(SOURCE)}, {"inline_data": inline(MASK)})

    types = pytest.importorskip("google.genai.types")
    content = types.Content.model_validate_json(json.dumps(turn))
    assert content.parts[1].inline_data.data == SOURCE
    assert content.parts[2].inline_data.data == MASK
    assert content.parts[2].inline_data.mime_type == "image/png"


def test_a_chained_gemini_region_edit_puts_the_mask_in_the_last_turn(gemini):
    from generation.providers import EditTurn

    provider = GeminiProvider(api_key=gemini.api_key, api_base=gemini.url, timeout=5.0)
    first = provider.render(
        RenderRequest("a harbour", 9, "flash", "1K", "16:9", "gemini-3.1-flash-image",
                      source=SOURCE, instruction="make it dusk")
    )  # fmt: skip
    provider.render(
        region_edit(
            "gemini-3.1-flash-image",
            turns=(EditTurn("make it dusk", first.image, first.signature),),
            chain_start=SOURCE,
        )
    )
    contents = gemini.generate_requests()[-1].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert MASK_WORDING not in contents[0]["parts"][0]["text"]
    assert contents[2]["parts"] == [
        {"text": f"a red sail\n\n{MASK_WORDING}"},
        {"inline_data": inline(MASK)},
    ]
    types = pytest.importorskip("google.genai.types")
    for content in contents:
        types.Content.model_validate_json(json.dumps(content))


# --- ComfyUI: the inpainting template, the image and the mask uploaded --------------------


@pytest.fixture
def comfy(settings):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter("comfyui:*"))
    if keys:
        client.delete(*keys)
    with FakeComfyUI() as server:
        yield server


def comfyui(url, **fields) -> ComfyUIProvider:
    fields.setdefault("inpaint_workflow", WORKFLOWS / "inpaint.json")
    return ComfyUIProvider(
        url=url,
        workflows={"flash": WORKFLOWS / "draft.json", "pro": WORKFLOWS / "quality.json"},
        poll_seconds=0.02,
        timeout=2.0,
        **fields,
    )


def test_comfyui_uploads_the_image_and_mask_and_fills_the_inpainting_template(comfy):
    result = comfyui(comfy.url).render(region_edit("sd_xl_turbo_1.0_fp16.safetensors"))
    assert result.usage["workflow"] == "inpaint.json"

    (upload,) = comfy.mask_uploads
    original = json.loads(upload["fields"]["original_ref"])
    assert upload["fields"]["type"] == "temp" and original["type"] == "temp"
    # The image went up first, so the mask had an image to be applied to.
    assert comfy.uploads[f"{original['filename']} [temp]"].data == SOURCE
    assert comfy.paths.index("POST /upload/image") < comfy.paths.index("POST /upload/mask")
    with opened(upload["image"].data) as alpha:
        assert alpha.size == (64, 36) and alpha.getchannel("A").getpixel((60, 10)) == 0
    masked_name = f"{upload['image'].filename} [temp]"
    with opened(comfy.uploads[masked_name].data) as written:
        # What /upload/mask wrote: the image's pixels, the mask as alpha.
        assert written.mode == "RGBA" and written.getpixel((4, 4))[:3] == opened(SOURCE).convert(
            "RGB"
        ).getpixel((4, 4))

    (queued,) = comfy.submitted
    nodes = queued["prompt"]
    by_class = {}
    for node in nodes.values():
        by_class.setdefault(node["class_type"], []).append(node["inputs"])
    assert sorted(i["image"] for i in by_class["LoadImage"]) == sorted(
        [f"{original['filename']} [temp]", masked_name]
    )
    assert by_class["CLIPTextEncode"][0]["text"] == "a red sail"
    assert by_class["KSampler"][0]["seed"] == 9
    scale = by_class["ImageScale"][0]
    assert (scale["width"], scale["height"]) == catalog.pixel_size("1K", "16:9")
    assert "VAEEncodeForInpaint" in by_class and "ImageCompositeMasked" in by_class
    assert "{{" not in json.dumps(nodes)


def _nodes_by_class(queued: dict) -> dict[str, list[dict]]:
    by_class: dict[str, list[dict]] = {}
    for node in queued["prompt"].values():
        by_class.setdefault(node["class_type"], []).append(node["inputs"])
    return by_class


@pytest.mark.parametrize(
    "fields, prompt, denoise",
    [
        ({"instruction": "warmer light"}, "a harbour at dusk, warmer light", 0.55),
        ({"variation": "subtle", "source_seed": 8}, "a harbour at dusk", 0.35),
        ({"variation": "strong", "source_seed": 8}, "a harbour at dusk", 0.75),
    ],
)
def test_comfyui_edits_and_varies_from_the_image_with_its_img2img_template(
    comfy, fields, prompt, denoise
):
    model = "sd_xl_turbo_1.0_fp16.safetensors"
    request = RenderRequest(
        "a harbour at dusk", 9, "flash", "1K", "16:9", model, source=SOURCE, **fields
    )
    provider = comfyui(comfy.url, img2img_workflow=WORKFLOWS / "img2img.json")
    assert provider.render(request).usage["workflow"] == "img2img.json"
    (queued,) = comfy.submitted
    by_class = _nodes_by_class(queued)
    (loaded,) = by_class["LoadImage"]
    assert comfy.uploads[loaded["image"]].data == SOURCE  # the image itself went up
    assert by_class["CLIPTextEncode"][0]["text"] == prompt
    assert by_class["KSampler"][0]["denoise"] == denoise
    assert "VAEEncode" in by_class and "EmptyLatentImage" not in by_class
    assert (by_class["ImageScale"][0]["width"], by_class["ImageScale"][0]["height"]) == (
        catalog.pixel_size("1K", "16:9")
    )
    assert "{{" not in json.dumps(queued["prompt"])


def test_comfyui_without_an_img2img_workflow_renders_an_edit_from_its_words(comfy):
    request = RenderRequest("a harbour at dusk", 9, "flash", "1K", "16:9",
                            "sd_xl_turbo_1.0_fp16.safetensors", source=SOURCE,
                            instruction="warmer light")  # fmt: skip
    assert comfyui(comfy.url).render(request).usage["workflow"] == "draft.json"
    assert comfy.uploads == {}


def test_comfyui_without_an_inpainting_workflow_refuses_a_mask_in_words(comfy):
    with pytest.raises(PermanentError, match="no inpainting workflow, so it takes no mask"):
        comfyui(comfy.url, inpaint_workflow="").render(
            region_edit("sd_xl_turbo_1.0_fp16.safetensors")
        )
    assert comfy.submitted == [] and comfy.mask_uploads == []


def test_the_comfyui_fake_fails_a_mask_of_another_size_as_putalpha_does(comfy):
    import httpx

    first = httpx.post(
        f"{comfy.url}/upload/image",
        files={"image": ("a.png", SOURCE, "image/png")},
        data={"type": "temp"},
    )
    assert first.status_code == 200
    answer = httpx.post(
        f"{comfy.url}/upload/mask",
        files={"image": ("m.png", png(10, 10, "small"), "image/png")},
        data={"type": "temp", "original_ref": json.dumps({"filename": "a.png", "type": "temp"})},
    )
    assert answer.status_code == 500
