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

A chained edit sends a conversation: the fake checks that the turns alternate
user and model, end with the user's, and that every image part of a model
turn carries a thoughtSignature (400 otherwise, as Gemini 3 image models
refuse such edits); the newest user turn's text chooses the scenario and the
image. Every answer's image part has a signature of its own
(`signature_for`), so tests can follow them from turn to turn.

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
BATCH_CREATE = re.compile(r"^/v1beta/models/([^/:]+):batchGenerateContent$")
BATCH_GET = re.compile(r"^/v1beta/(batches/[^/:]+)$")
BATCH_CANCEL = re.compile(r"^/v1beta/(batches/[^/:]+):cancel$")
FILE_DOWNLOAD = re.compile(r"^(?:/download)?/v1beta/(files/[^/:]+):download$")
# Asked for in a prompt of a batch job: the whole job ends failed or expired,
# or that one request comes back with nothing.
BATCH_FAULT = re.compile(r"\[batch:(failed|expired|lost)\]")
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"

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
    # The batch endpoint: a job is pending, then running, for `batch_delay`
    # seconds in all, then ends in `batch_outcome` (succeeded, failed, expired)
    # unless a prompt in it asks otherwise.
    batch_delay: float = 0.0
    batch_outcome: str = "succeeded"
    # Keys answered for although nobody asked (a result for a request we no longer have).
    batch_extra_keys: tuple[str, ...] = ()

    def __post_init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple, int] = {}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.answered = 0
        self.throttled = 0
        self._tokens: float | None = None  # a full bucket at the first request
        self._refilled = time.monotonic()
        self.batches: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self._uploads: dict[str, dict] = {}
        self._next_id = 0

    def next_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return f"{self._next_id:06d}"

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
    """The text of the newest user turn: the prompt, or a chained edit's latest instruction."""
    try:
        return body["contents"][-1]["parts"][0].get("text", "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def signature_for(seed_text: str) -> str:
    """The thoughtSignature the fake gives an answer: opaque, and different per image."""
    return base64.b64encode(hashlib.sha256(b"signature|" + seed_text.encode()).digest()).decode()


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
        if BATCH_GET.match(split.path) or FILE_DOWNLOAD.match(split.path):
            if self._authorized():
                self._batch_get(split.path)
            return
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
        path = urlsplit(self.path).path
        if path == "/upload/v1beta/files":
            self._record(None)
            # The session URL a start answers with is its own authority, as Google's is.
            session = (parse_qs(urlsplit(self.path).query).get("upload_id") or [""])[0]
            if session in self.fake._uploads or self._authorized():
                self._upload(raw)
            return
        if BATCH_CREATE.match(path) or BATCH_CANCEL.match(path):
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
                return
            self._record(body if self.fake.record_bodies else None)
            if self._authorized():
                self._batch_post(path, body)
            return
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

    # --- the batch endpoint and the Files API ---------------------------------

    def _upload(self, raw: bytes) -> None:
        command = (self.headers.get("X-Goog-Upload-Command") or "").lower()
        query = parse_qs(urlsplit(self.path).query)
        if command == "start":
            upload_id = self.fake.next_id()
            session = f"{self.fake.url}/upload/v1beta/files?upload_id={upload_id}"
            self.fake._uploads[upload_id] = json.loads(raw or b"{}").get("file") or {}
            self._json(
                200,
                {},
                {
                    "X-Goog-Upload-URL": session,
                    "X-Goog-Upload-Status": "active",
                },
            )
            return
        upload_id = (query.get("upload_id") or [""])[0]
        if "upload" not in command or upload_id not in self.fake._uploads:
            self._error(400, "INVALID_ARGUMENT", "Unknown upload session.")
            return
        meta = self.fake._uploads.pop(upload_id)
        name = f"files/upload-{upload_id}"
        self.fake.files[name] = raw
        self._json(
            200,
            {
                "file": {
                    "name": name,
                    "displayName": meta.get("displayName", ""),
                    "mimeType": "application/jsonl",
                    "sizeBytes": str(len(raw)),
                    "state": "ACTIVE",
                    "uri": f"{self.fake.url}/v1beta/{name}",
                }
            },
            {"X-Goog-Upload-Status": "final"},
        )

    def _batch_post(self, path: str, body: dict) -> None:
        cancel = BATCH_CANCEL.match(path)
        if cancel:
            job = self.fake.batches.get(cancel.group(1))
            if job is None:
                self._error(404, "NOT_FOUND", f"{cancel.group(1)} not found.")
                return
            if job["state"] is None:
                job["cancelled"] = True
            self._json(200, {})
            return
        model = BATCH_CREATE.match(path).group(1)
        if model not in self.fake.models and not model.startswith("fake-"):
            self._error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta.")
            return
        batch = body.get("batch") or {}
        source = batch.get("inputConfig") or {}
        if source.get("fileName"):
            data = self.fake.files.get(source["fileName"])
            if data is None:
                self._error(400, "INVALID_ARGUMENT", f"File {source['fileName']} not found.")
                return
            entries = []
            for line in data.splitlines():
                if line.strip():
                    item = json.loads(line)
                    entries.append((str(item.get("key", "")), item.get("request") or {}))
            via_file = True
        else:
            requests = (source.get("requests") or {}).get("requests")
            if not isinstance(requests, list) or not requests:
                self._error(400, "INVALID_ARGUMENT", "* inputConfig: requests are required.")
                return
            entries = [
                (str((r.get("metadata") or {}).get("key", "")), r.get("request") or {})
                for r in requests
            ]
            via_file = False
        for _, request in entries:
            problem = _invalid(request)
            if problem:
                self._error(400, "INVALID_ARGUMENT", problem)
                return
        name = f"batches/{self.fake.next_id()}"
        self.fake.batches[name] = {
            "name": name,
            "model": model,
            "display_name": batch.get("displayName", ""),
            "entries": entries,
            "via_file": via_file,
            "created": time.monotonic(),
            "create_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cancelled": False,
            "state": None,  # set once it has ended
            "output": None,
        }
        self._json(200, self._operation(self.fake.batches[name]))

    def _batch_get(self, path: str) -> None:
        download = FILE_DOWNLOAD.match(path)
        if download:
            data = self.fake.files.get(download.group(1))
            if data is None:
                self._error(404, "NOT_FOUND", f"{download.group(1)} not found.")
            else:
                self._send(200, data, content_type="application/octet-stream")
            return
        job = self.fake.batches.get(BATCH_GET.match(path).group(1))
        if job is None:
            self._error(404, "NOT_FOUND", "Batch not found.")
            return
        self._json(200, self._operation(job))

    def _operation(self, job: dict) -> dict:
        """The long-running operation batches.get answers with, ending the job when due."""
        fake = self.fake
        state = job["state"]
        if state is None:
            elapsed = time.monotonic() - job["created"]
            prompts = " ".join(_prompt(request) for _, request in job["entries"])
            faults = set(BATCH_FAULT.findall(prompts))
            if job["cancelled"]:
                state = "BATCH_STATE_CANCELLED"
            elif elapsed < fake.batch_delay / 2:
                state = "BATCH_STATE_PENDING"
            elif elapsed < fake.batch_delay:
                state = "BATCH_STATE_RUNNING"
            elif "failed" in faults or fake.batch_outcome == "failed":
                state = "BATCH_STATE_FAILED"
            elif "expired" in faults or fake.batch_outcome == "expired":
                state = "BATCH_STATE_EXPIRED"
            else:
                state = "BATCH_STATE_SUCCEEDED"
                job["output"] = self._batch_output(job)
            if state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                job["state"] = state
        count = len(job["entries"])
        done = state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
        metadata = {
            "@type": BATCH_TYPE,
            "name": job["name"],
            "displayName": job["display_name"],
            "model": f"models/{job['model']}",
            "state": state,
            "createTime": job["create_time"],
            "updateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "batchStats": {
                "requestCount": str(count),
                "pendingRequestCount": "0" if done else str(count),
            },
        }
        operation = {"name": job["name"], "metadata": metadata}
        if done:
            metadata["endTime"] = metadata["updateTime"]
            operation["done"] = True
            if job["output"] is not None:
                metadata["output"] = job["output"]
                operation["response"] = {"@type": BATCH_TYPE + "Output", **job["output"]}
            elif state == "BATCH_STATE_FAILED":
                operation["error"] = {"code": 13, "message": "The batch job failed."}
        return operation

    def _batch_output(self, job: dict) -> dict:
        results, lines = [], []
        keys = [key for key, _ in job["entries"]] + list(self.fake.batch_extra_keys)
        requests = dict(job["entries"])
        for key in keys:
            request = requests.get(key) or job["entries"][0][1]
            if "[batch:lost]" in _prompt(request):
                continue
            scenario = self.fake.scenario_for(job["model"], request)
            status, payload, _ = answer_for(self.fake, scenario, job["model"], request)
            if status == 200 and isinstance(payload, dict):
                entry = {"response": payload}
            elif isinstance(payload, dict):
                entry = {"error": payload["error"]}
            else:
                entry = {"error": {"code": 13, "message": "Internal error.", "status": "INTERNAL"}}
            results.append({**entry, "metadata": {"key": key}})
            lines.append(json.dumps({"key": key, **entry}))
        if job["via_file"]:
            name = f"files/batch-{job['name'].split('/')[-1]}-responses"
            self.fake.files[name] = "\n".join(lines).encode()
            return {"responsesFile": name}
        return {"inlinedResponses": {"inlinedResponses": results}}

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
        status, payload, headers = answer_for(self.fake, scenario, model, body)
        if isinstance(payload, bytes):
            self._send(status, payload, headers)
        else:
            self._json(status, payload, headers)


def _err(code: int, status: str, message: str, headers: dict | None = None):
    return code, {"error": {"code": code, "message": message, "status": status}}, headers or {}


def answer_for(fake: FakeGemini, scenario: str, model: str, body: dict):
    """(HTTP status, JSON payload or raw bytes, headers) of a generateContent answer:
    the interactive endpoint sends it, the batch endpoint keeps it per request."""
    config = body.get("generationConfig") or {}
    image_config = config.get("imageConfig") or {}
    size = image_config.get("imageSize", "1K")
    aspect = image_config.get("aspectRatio", "1:1")
    seed_text = f"{_prompt(body)}|{config.get('seed')}|{size}|{aspect}"
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 1120, "totalTokenCount": 1132}

    if scenario not in SCENARIOS:
        return _err(400, "INVALID_ARGUMENT", f"The fake has no scenario {scenario!r}.")
    if scenario in ERRORS:
        code, status, message = ERRORS[scenario]
        headers = {}
        if scenario == "429" and fake.retry_after is not None:
            headers["Retry-After"] = fake.retry_after
        return _err(code, status, message, headers)
    if scenario == "404":
        return _err(
            404,
            "NOT_FOUND",
            f"models/{model} is not found for API version v1beta, or is not supported "
            "for generateContent.",
        )
    if scenario == "malformed":
        return 200, b'{"candidates": [{"content": {"parts": [{"inlineData": ', {}
    if scenario == "blocked":
        return (
            200,
            {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                "modelVersion": model,
            },
            {},
        )
    if scenario == "image_safety":
        return (
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
            {},
        )
    if scenario == "no_image":
        parts = [{"text": "I can only describe this scene in words."}]
        return 200, _candidate(parts, usage, model), {}
    if scenario == "not_image":
        fake_bytes = base64.b64encode(b"this is not an image at all").decode()
        parts = [{"inlineData": {"mimeType": "image/png", "data": fake_bytes}}]
        return 200, _candidate(parts, usage, model), {}
    if scenario == "slow":
        time.sleep(fake.slow_seconds)
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
            "thoughtSignature": signature_for(seed_text),
        }
    )
    return 200, _candidate(parts, usage, model), {}


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
        contents = body["contents"]
        parts = [part for content in contents for part in content["parts"]]
    except (KeyError, IndexError, TypeError):
        return "* GenerateContentRequest.contents: contents is not specified"
    if not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    # A conversation (a chained edit) alternates user and model turns and ends
    # with the user's; the model's image parts come back with the
    # thoughtSignature they were given, which Gemini 3 image models require.
    roles = [content.get("role", "user") for content in contents]
    expected = ["user" if number % 2 == 0 else "model" for number in range(len(roles))]
    if roles != expected or roles[-1] != "user":
        return f"Please ensure that turns alternate between user and model: {roles}."
    for number, content in enumerate(contents):
        for part in content["parts"] if content.get("role") == "model" else ():
            inline = part.get("inline_data") or part.get("inlineData")
            if inline and not (part.get("thoughtSignature") or part.get("thought_signature")):
                return f"Image part in content at index {number} is missing a thought_signature."
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
