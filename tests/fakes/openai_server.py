"""A fake OpenAI Images API on 127.0.0.1: generations (JSON) and edits (multipart).

A real HTTP server in a thread, so the provider's whole HTTP path runs and a
Celery worker in another process can use it through OPENAI_API_BASE.

What each request gets is chosen without shared memory, as in the Gemini
fake: a prompt containing `[fault:NAME]` always gets scenario NAME, and
`[fault:NAME*N]` gets it for the first N requests of that prompt, then
succeeds; a model id not in `models` gets 404 model_not_found; everything
else gets "ok".

Scenarios: ok, 429 (with Retry-After), insufficient_quota (429), 500, 503,
slow (answers after `slow_seconds`), 400, 401, 403, moderation_blocked,
content_policy_violation, malformed (broken JSON), no_data, not_image.

Edits requests are recorded part by part (`RecordedRequest.parts`), so tests
can assert what was uploaded. An edits request must name only fields the
openai SDK's `ImageEditParams` defines, and a `mask` must be what the SDK's
docstring of that field asks for: a PNG under 4 MB with fully transparent
areas, the same size as the first image (the real API answers 400 otherwise).
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import urlsplit

from PIL import Image

from tests.fakes.gemini_server import png
from tests.fakes.local_server import LocalServer, QuietHandler

# The openai SDK's ImageModel (3.51): gpt-image-1 was shut down on 2026-10-23,
# so the fake no longer serves it (404 model_not_found, as for any unknown id).
DEFAULT_MODELS = (
    "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "gpt-image-2.5-sunburst",
    "gpt-image-2.5-flare",
)  # fmt: skip
# The standard sizes every GPT image model takes (images.generate `size`).
SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
# The 2.x models take any WIDTHxHEIGHT: both sides divisible by 16, aspect
# between 1:3 and 3:1, at most 3840x2160 (the SDK's `size` docstring).
ANY_SIZE_MODELS = ("gpt-image-2", "gpt-image-2.5-sunburst", "gpt-image-2.5-flare")
QUALITIES = ("low", "medium", "high", "auto")
QUALITIES_25 = QUALITIES + ("xhigh", "max")  # 2.5 models only (the SDK's `quality`)
FAULT = re.compile(r"\[fault:([a-z_0-9]+)(?:\*(\d+))?\]")

ERRORS = {
    "429": (429, "rate_limit_exceeded", "requests", "Rate limit reached for gpt-image-1."),
    "insufficient_quota": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "500": (500, None, "server_error", "The server had an error processing your request."),
    "503": (503, None, "server_error", "The engine is currently overloaded."),
    "400": (400, "invalid_value", "invalid_request_error", "Invalid value for 'size'."),
    "401": (401, "invalid_api_key", "invalid_request_error", "Incorrect API key provided."),
    "403": (
        403,
        None,
        "invalid_request_error",
        "Your organization must be verified to use the model `gpt-image-1`.",
    ),
    "content_policy_violation": (
        400,
        "content_policy_violation",
        "invalid_request_error",
        "Your request was rejected as a result of our safety system.",
    ),
}
SCENARIOS = frozenset(ERRORS) | {
    "ok",
    "slow",
    "moderation_blocked",
    "malformed",
    "no_data",
    "not_image",
}


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    fields: dict  # the JSON body, or the multipart text fields
    parts: list[Part] = field(default_factory=list)  # multipart file parts
    scenario: str = ""


@dataclass
class FakeOpenAI(LocalServer):
    api_key: str | None = "sk-test"  # None accepts any key
    models: tuple[str, ...] = DEFAULT_MODELS
    retry_after: str | None = "2"
    slow_seconds: float = 3.0
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple, int] = {}

    def handler_class(self):
        return _Handler

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._counts.clear()

    def scenario_for(self, fields: dict) -> str:
        prompt = str(fields.get("prompt", ""))
        match = FAULT.search(prompt)
        if match:
            name, times = match.group(1), match.group(2)
            if times is None:
                return name
            with self._lock:
                self._counts[(name, prompt)] = self._counts.get((name, prompt), 0) + 1
                return name if self._counts[(name, prompt)] <= int(times) else "ok"
        if fields.get("model") not in self.models:
            return "404"
        return "ok"

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def parse_multipart(content_type: str, body: bytes) -> tuple[dict, list[Part]]:
    """Text fields and file parts of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict = {}
    parts: list[Part] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        data = part.get_payload(decode=True) or b""
        if filename is None:
            fields[name] = data.decode()
        else:
            parts.append(Part(name, filename, part.get_content_type(), data))
    return fields, parts


class _Handler(QuietHandler):
    fake: FakeOpenAI

    def _error(self, status: int, code, kind: str, message: str, headers=None, **extra) -> None:
        error = {"message": message, "type": kind, "param": None, "code": code, **extra}
        self._send(status, json.dumps({"error": error}).encode(), headers)

    def do_POST(self):
        path = urlsplit(self.path).path
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type", "")
        parts: list[Part] = []
        try:
            if content_type.startswith("multipart/form-data"):
                fields, parts = parse_multipart(content_type, raw)
            else:
                fields = json.loads(raw)
        except ValueError:
            self._error(400, None, "invalid_request_error", "We could not parse the body.")
            return
        scenario = self.fake.scenario_for(fields)
        self.fake.record(
            RecordedRequest(
                path=path,
                headers={name.lower(): value for name, value in self.headers.items()},
                fields=fields,
                parts=parts,
                scenario=scenario,
            )
        )
        if path not in ("/v1/images/generations", "/v1/images/edits"):
            self._error(404, None, "invalid_request_error", f"Invalid URL (POST {path})")
            return
        expected = self.fake.api_key
        if expected is not None and self.headers.get("Authorization") != f"Bearer {expected}":
            self._error(401, "invalid_api_key", "invalid_request_error", "Incorrect API key.")
            return
        problem = _invalid(path, fields, parts)
        if problem:
            self._error(400, "invalid_value", "invalid_request_error", problem)
            return
        self._answer(scenario, fields)

    def _answer(self, scenario: str, fields: dict) -> None:
        if scenario not in SCENARIOS and scenario != "404":
            self._error(400, None, "invalid_request_error", f"No scenario {scenario!r}.")
        elif scenario in ERRORS:
            status, code, kind, message = ERRORS[scenario]
            headers = {}
            if status == 429 and self.fake.retry_after is not None:
                headers["Retry-After"] = self.fake.retry_after
            self._error(status, code, kind, message, headers=headers)
        elif scenario == "404":
            self._error(
                404,
                "model_not_found",
                "invalid_request_error",
                f"The model `{fields.get('model')}` does not exist or you do not have access.",
            )
        elif scenario == "moderation_blocked":
            self._error(
                400,
                "moderation_blocked",
                "image_generation_user_error",
                "Your request was rejected by the safety system. safety_violations=[violence].",
                moderation_details={"moderation_stage": "input", "categories": ["violence"]},
            )
        elif scenario == "malformed":
            self._send(200, b'{"created": 1, "data": [{"b64_json": ')
        elif scenario == "no_data":
            self._send(200, json.dumps({"created": 1, "data": []}).encode())
        elif scenario == "not_image":
            junk = base64.b64encode(b"this is not an image at all").decode()
            self._send(200, json.dumps({"created": 1, "data": [{"b64_json": junk}]}).encode())
        else:
            if scenario == "slow":
                time.sleep(self.fake.slow_seconds)
            size = fields.get("size", "1024x1024")
            width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
            image = png(width, height, f"{fields.get('prompt')}|{size}|{fields.get('quality')}")
            answer = {
                "created": int(time.time()),
                "data": [{"b64_json": base64.b64encode(image).decode()}],
                "usage": {
                    "input_tokens": 50,
                    "output_tokens": 4160,
                    "total_tokens": 4210,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
                },
            }
            self._send(200, json.dumps(answer).encode())


def _any_size_ok(size: str) -> bool:
    try:
        width, height = (int(side) for side in size.split("x"))
    except ValueError:
        return False
    return (
        width % 16 == 0
        and height % 16 == 0
        and 1 / 3 <= width / height <= 3
        and width * height <= 3840 * 2160
        and max(width, height) <= 3840
    )


def _invalid(path: str, fields: dict, parts: list[Part]) -> str:
    """The 400 message the real API gives for a request it cannot take, or ""."""
    if not fields.get("prompt"):
        return "Missing required parameter: 'prompt'."
    model = str(fields.get("model", ""))
    size = str(fields.get("size", "auto"))
    if size not in SIZES and not (model in ANY_SIZE_MODELS and _any_size_ok(size)):
        return f"Invalid value: '{size}'. Supported values are: {', '.join(SIZES)}."
    qualities = QUALITIES_25 if model.startswith("gpt-image-2.5") else QUALITIES
    if fields.get("quality", "auto") not in qualities:
        return f"Invalid value: '{fields.get('quality')}'. Supported values are: low, medium, high."
    if str(fields.get("n", 1)) != "1":
        return "This fake renders one image per request."
    if path.endswith("/edits"):
        images = [part for part in parts if part.name in ("image", "image[]")]
        if not images:
            return "Missing required parameter: 'image'."
        if len(images) > 16:
            return "Too many images: at most 16 are supported."
        for part in images:
            if part.content_type not in ("image/png", "image/jpeg", "image/webp"):
                return f"Invalid file '{part.filename}': unsupported mimetype."
        unknown = _unknown_edit_fields(fields, parts)
        if unknown:
            return f"Unrecognized request argument supplied: {unknown}"
        masks = [part for part in parts if part.name == "mask"]
        if masks:
            return _invalid_mask(masks, images[0])
    return ""


def _unknown_edit_fields(fields: dict, parts: list[Part]) -> str:
    try:
        from openai.types.image_edit_params import ImageEditParamsBase
    except ImportError:  # the SDK is a test dependency; without it, only the rest is checked
        return ""
    known = set(ImageEditParamsBase.__annotations__)
    names = set(fields) | {part.name.removesuffix("[]") for part in parts}
    return ", ".join(sorted(names - known))


def _size_of(data: bytes) -> tuple[tuple[int, int], str] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size, image.mode
    except OSError:
        return None


def _invalid_mask(masks: list[Part], first: Part) -> str:
    """The openai SDK's docstring of `mask`: 'a valid PNG file, less than 4MB, and have
    the same dimensions as image', its fully transparent areas the ones to edit."""
    if len(masks) > 1:
        return "Only one mask may be provided."
    mask = masks[0]
    opened = _size_of(mask.data)
    if mask.content_type != "image/png" or opened is None or not mask.data.startswith(b"\x89PNG"):
        return "Invalid mask: it must be a valid PNG file."
    if len(mask.data) >= 4 * 1024 * 1024:
        return "Invalid mask: it must be less than 4 MB."
    (size, mode), image = opened, _size_of(first.data)
    if image is None or size != image[0]:
        return f"Invalid mask: it is {size[0]}x{size[1]}; the image is not the same size."
    if mode not in ("RGBA", "LA"):
        return f"Invalid mask: it must have an alpha channel (got {mode})."
    with Image.open(io.BytesIO(mask.data)) as opened_mask:
        lowest, _ = opened_mask.getchannel("A").getextrema()
    if lowest != 0:
        return "Invalid mask: it has no fully transparent area to edit."
    return ""


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8766)
    arguments = parser.parse_args()
    fake = FakeOpenAI(api_key=None).start(arguments.port)
    print(f"Fake OpenAI on {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
