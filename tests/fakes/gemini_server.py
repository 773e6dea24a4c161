"""A fake Gemini API on 127.0.0.1 that speaks the documented wire format.

It is a real HTTP server in a thread, so the provider's whole HTTP path runs,
and a Celery worker in another process can use it through GEMINI_API_BASE.

What each request gets is chosen without shared memory:

- a prompt containing `[fault:NAME]` always gets scenario NAME;
  `[fault:NAME*N]` gets it for the first N requests of that prompt and seed,
  then succeeds (retries can be watched to the end);
- a model id `fake-NAME` gets scenario NAME, and `model_scenarios` maps other
  ids to scenarios;
- any other model id that is not in `models` gets 404 NOT_FOUND;
- everything else gets `default_scenario` ("ok").

Latency and a quota, as a real project key has: `latency` seconds before
every answer, and with `max_in_flight` / `requests_per_minute` set, requests
above them answer 429 RESOURCE_EXHAUSTED with a RetryInfo detail (the shape
Google's error model gives quota errors: google.rpc.RetryInfo.retryDelay).
Google documents per-minute limits without saying how they are counted; the
fake takes the strict reading, a token bucket refilling at the rate per
second with `burst_seconds` worth of requests at most back to back.
`peak_in_flight`, `answered` and `throttled` say what happened.

Scenarios: ok, thought (an interim thought image, then the final one), 429
(with Retry-After), 500, 503, 504, slow (answers after `slow_seconds`), 400
(INVALID_ARGUMENT), 403, failed_precondition, 404, blocked
(promptFeedback.blockReason), image_safety (finishReason, no parts),
no_image (text only), malformed (broken JSON), not_image (bytes that are not
an image).

Usage::

    with FakeGemini() as gemini:
        provider = GeminiProvider(api_key=gemini.api_key, api_base=gemini.url)
        ...
        gemini.requests[-1].body["generationConfig"]

Run alone for manual work: `python -m tests.fakes.gemini_server --port 8765`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from generation import catalog
from tests.fakes.local_server import LocalServer, QuietHandler

DEFAULT_MODELS = ("gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-nano-banana-2.1")
SCENARIOS = frozenset(
    {
        "ok",
        "thought",
        "429",
        "500",
        "503",
        "504",
        "slow",
        "400",
        "403",
        "failed_precondition",
        "404",
        "blocked",
        "image_safety",
        "no_image",
        "malformed",
        "not_image",
    }
)
FAULT = re.compile(r"\[fault:([a-z_0-9]+)(?:\*(\d+))?\]")
GENERATE = re.compile(r"^/v1beta/models/([^/:]+):generateContent$")

ERRORS = {
    "429": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "500": (500, "INTERNAL", "An internal error has occurred."),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "504": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "403": (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
    "failed_precondition": (
        400,
        "FAILED_PRECONDITION",
        "User location is not supported for the API use.",
    ),
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: dict | None
    scenario: str = ""


@dataclass
class FakeGemini(LocalServer):
    api_key: str | None = "test-key"  # None accepts any key
    models: tuple[str, ...] = DEFAULT_MODELS
    model_scenarios: dict[str, str] = field(default_factory=dict)
    default_scenario: str = "ok"
    retry_after: str | None = "1"
    slow_seconds: float = 3.0
    page_size: int = 2  # small, so clients must follow nextPageToken
    requests: list[RecordedRequest] = field(default_factory=list)
    latency: float = 0.0
    max_in_flight: int | None = None
    requests_per_minute: int | None = None
    burst_seconds: float = 2.0
    quota_retry_seconds: float = 1.0
    record_bodies: bool = True  # off for load runs: bodies carry references

    def __post_init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple, int] = {}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.answered = 0
        self.throttled = 0
        self._tokens: float | None = None  # a full bucket at the first request
        self._refilled = time.monotonic()

    # --- the quota ---------------------------------------------------------------

    def admit(self) -> bool:
        """Count a request in, or refuse it (429) when it is over the quota."""
        with self._lock:
            if self.requests_per_minute:
                rate = self.requests_per_minute / 60
                capacity = max(1.0, rate * self.burst_seconds)
                now = time.monotonic()
                if self._tokens is None:
                    self._tokens = capacity
                self._tokens = min(capacity, self._tokens + (now - self._refilled) * rate)
                self._refilled = now
            over_in_flight = self.max_in_flight is not None and self.in_flight >= self.max_in_flight
            over_rate = bool(self.requests_per_minute) and self._tokens < 1
            if over_in_flight or over_rate:
                self.throttled += 1
                return False
            if self.requests_per_minute:
                self._tokens -= 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.answered += 1

    # --- lifecycle -------------------------------------------------------------

    def handler_class(self):
        return _Handler

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._counts.clear()
            self.peak_in_flight = self.answered = self.throttled = 0
            self._tokens = None

    def generate_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == "POST"]

    # --- choosing a scenario -----------------------------------------------------

    def scenario_for(self, model: str, body: dict) -> str:
        prompt = _prompt(body)
        match = FAULT.search(prompt)
        if match:
            name, times = match.group(1), match.group(2)
            if times is None:
                return name
            seed = (body.get("generationConfig") or {}).get("seed")
            key = (name, prompt, seed)
            with self._lock:
                self._counts[key] = self._counts.get(key, 0) + 1
                return name if self._counts[key] <= int(times) else "ok"
        if model.startswith("fake-"):
            return model.removeprefix("fake-")
        if model in self.model_scenarios:
            return self.model_scenarios[model]
        if model not in self.models:
            return "404"
        return self.default_scenario

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _prompt(body: dict) -> str:
    try:
        return body["contents"][0]["parts"][0].get("text", "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def png(width: int, height: int, seed_text: str) -> bytes:
    """A solid PNG whose color depends on `seed_text`, so tests can tell images apart."""
    digest = hashlib.sha256(seed_text.encode()).digest()
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), tuple(digest[:3])).save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


class _Handler(QuietHandler):
    content_type = "application/json; charset=UTF-8"
    fake: FakeGemini

    # --- plumbing ---------------------------------------------------------------

    def _json(self, status: int, data: dict, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, code: int, status: str, message: str, **extra) -> None:
        error = {"code": code, "message": message, "status": status}
        error.update(extra.pop("error_extra", {}))
        self._json(code, {"error": error}, extra.get("headers"))

    def _authorized(self) -> bool:
        expected = self.fake.api_key
        given = self.headers.get("x-goog-api-key")
        if expected is None:
            return True
        if not given:
            self._error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.")
            return False
        if given != expected:
            self._error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                error_extra={
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ]
                },
            )
            return False
        return True

    def _record(self, body: dict | None, scenario: str = "") -> None:
        split = urlsplit(self.path)
        self.fake.record(
            RecordedRequest(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                scenario=scenario,
            )
        )

    # --- GET /v1beta/models -----------------------------------------------------

    def do_GET(self):
        split = urlsplit(self.path)
        self._record(None)
        if split.path != "/v1beta/models":
            self._error(404, "NOT_FOUND", f"Not found: {split.path}")
            return
        if not self._authorized():
            return
        query = parse_qs(split.query)
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        size = min(self.fake.page_size, int((query.get("pageSize") or ["50"])[0]))
        names = list(self.fake.models)
        page = names[start : start + size]
        answer = {
            "models": [
                {
                    "name": f"models/{name}",
                    "displayName": name,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
                for name in page
            ]
        }
        if start + size < len(names):
            answer["nextPageToken"] = str(start + size)
        self._json(200, answer)

    # --- POST .../models/{model}:generateContent --------------------------------

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._record(None, "400")
            self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            return
        match = GENERATE.match(urlsplit(self.path).path)
        model = match.group(1) if match else ""
        scenario = self.fake.scenario_for(model, body) if match else "404"
        self._record(body if self.fake.record_bodies else None, scenario)
        if not match:
            self._error(404, "NOT_FOUND", f"Not found: {self.path}")
            return
        if not self._authorized():
            return
        problem = _invalid(body)
        if problem:
            self._error(400, "INVALID_ARGUMENT", problem)
            return
        if not self.fake.admit():
            self._over_quota()
            return
        try:
            if self.fake.latency:
                time.sleep(self.fake.latency)
            self._answer(scenario, model, body)
        finally:
            self.fake.leave()

    def _over_quota(self) -> None:
        delay = self.fake.quota_retry_seconds
        self._error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            error_extra={
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}
                ]
            },
        )

    def _answer(self, scenario: str, model: str, body: dict) -> None:
        config = body.get("generationConfig") or {}
        image_config = config.get("imageConfig") or {}
        size = image_config.get("imageSize", "1K")
        aspect = image_config.get("aspectRatio", "1:1")
        seed_text = f"{_prompt(body)}|{config.get('seed')}|{size}|{aspect}"
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 1120, "totalTokenCount": 1132}

        if scenario not in SCENARIOS:
            self._error(400, "INVALID_ARGUMENT", f"The fake has no scenario {scenario!r}.")
        elif scenario in ERRORS:
            code, status, message = ERRORS[scenario]
            headers = {}
            if scenario == "429" and self.fake.retry_after is not None:
                headers["Retry-After"] = self.fake.retry_after
            self._error(code, status, message, headers=headers)
        elif scenario == "404":
            self._error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported "
                "for generateContent.",
            )
        elif scenario == "malformed":
            self._send(200, b'{"candidates": [{"content": {"parts": [{"inlineData": ')
        elif scenario == "blocked":
            self._json(
                200,
                {
                    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                    "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                    "modelVersion": model,
                },
            )
        elif scenario == "image_safety":
            self._json(
                200,
                {
                    "candidates": [
                        {
                            "finishReason": "IMAGE_SAFETY",
                            "finishMessage": "The image may depict a real person.",
                            "index": 0,
                        }
                    ],
                    "usageMetadata": usage,
                    "modelVersion": model,
                },
            )
        elif scenario == "no_image":
            parts = [{"text": "I can only describe this scene in words."}]
            self._json(200, _candidate(parts, usage, model))
        elif scenario == "not_image":
            fake_bytes = base64.b64encode(b"this is not an image at all").decode()
            parts = [{"inlineData": {"mimeType": "image/png", "data": fake_bytes}}]
            self._json(200, _candidate(parts, usage, model))
        else:
            if scenario == "slow":
                time.sleep(self.fake.slow_seconds)
            width, height = catalog.pixel_size(size, aspect)
            final = base64.b64encode(png(width, height, seed_text)).decode()
            parts = [{"text": "Here is your image."}]
            if scenario == "thought":
                interim = base64.b64encode(png(64, 64, "interim|" + seed_text)).decode()
                parts = [
                    {"text": "Planning the composition.", "thought": True},
                    {"inlineData": {"mimeType": "image/png", "data": interim}, "thought": True},
                    *parts,
                ]
                usage = {**usage, "thoughtsTokenCount": 310, "totalTokenCount": 1442}
            parts.append(
                {
                    "inlineData": {"mimeType": "image/png", "data": final},
                    "thoughtSignature": "c2lnbmF0dXJl",
                }
            )
            self._json(200, _candidate(parts, usage, model))


def _candidate(parts: list[dict], usage: dict, model: str) -> dict:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": usage,
        "modelVersion": model,
    }


def _invalid(body: dict) -> str:
    """What the real API would reject with 400 INVALID_ARGUMENT, or ""."""
    try:
        parts = body["contents"][0]["parts"]
    except (KeyError, IndexError, TypeError):
        return "* GenerateContentRequest.contents: contents is not specified"
    images = [part for part in parts if "inline_data" in part or "inlineData" in part]
    if len(images) > 14:
        return "Too many input images: at most 14 are supported."
    for part in images:
        inline = part.get("inline_data") or part.get("inlineData")
        try:
            base64.b64decode(inline["data"], validate=True)
        except (KeyError, TypeError, ValueError):
            return "Invalid value at 'contents[0].parts': base64 decoding failed."
    image_config = (body.get("generationConfig") or {}).get("imageConfig") or {}
    if image_config.get("imageSize", "1K") not in catalog.SCALE:
        return f"Unsupported image size: {image_config.get('imageSize')}."
    if image_config.get("aspectRatio", "1:1") not in catalog.ASPECTS[catalog.FLASH]:
        return f"Unsupported aspect ratio: {image_config.get('aspectRatio')}."
    return ""


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    arguments = parser.parse_args()
    fake = FakeGemini(api_key=arguments.api_key).start(arguments.port)
    print(f"Fake Gemini on {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
