"""OpenAI's GPT image models (gpt-image-1.5, 2, 2.5 …) over the Images API.

One request per image: `POST /v1/images/generations` (JSON) for a prompt
alone, `POST /v1/images/edits` (multipart, one `image[]` part per reference)
when the request carries references, such as a draft being promoted, and for
edits and variations (the image to edit first, then the references; the
edits endpoint keeps no conversation, so a chained edit sends only the
latest image and its instruction). A region edit adds the `mask` part: our
black-and-white mask turned into the PNG OpenAI wants, transparent where the
image may change, applied by OpenAI to the first image (the one to edit). The
gpt-image models always answer with base64 (`data[0].b64_json`); they take
no seed, so a render is not reproducible from its seed the way a Gemini one
is (the seed still goes into the cache fingerprint and the stored metadata).

Errors follow the API's `{"error": {"message", "type", "param", "code"}}`
body (OpenAI API reference, "Error codes"): 429 and 5xx are retried with
Retry-After honoured, except 429 `insufficient_quota`, which no retry can
cure; 400/401/403/404 give up in words; a refusal by OpenAI's moderation
(HTTP 400 with code `moderation_blocked`, or `content_policy_violation` from
the older models and some gateways) is reported as blocked.
"""

from __future__ import annotations

import base64
import binascii
import json

import httpx

from generation import model_catalog
from generation.imaging import mask_with_alpha

from .base import (
    BlockedError,
    PermanentError,
    RateLimitedError,
    RenderRequest,
    RenderResult,
    TransientError,
)
from .wire import (
    client_timeout,
    retry_after_header,
    send_within,
    sniff_mime_type,
    verified_mime_type,
)

# Models the catalog does not know get the three standard shapes every GPT
# image model takes, the nearest by aspect ratio; known models get their
# real size (generation.model_catalog), and what they cannot make is refused
# before anything is held.
SQUARE = "1024x1024"
LANDSCAPE = "1536x1024"
PORTRAIT = "1024x1536"
SIZE_FOR_ASPECT = {
    "1:1": SQUARE,
    "2:3": PORTRAIT,
    "3:4": PORTRAIT,
    "4:5": PORTRAIT,  # 0.80 is nearer 2:3 than 1:1 on a log scale
    "9:16": PORTRAIT,
    "1:4": PORTRAIT,
    "1:8": PORTRAIT,
    "3:2": LANDSCAPE,
    "4:3": LANDSCAPE,
    "5:4": LANDSCAPE,
    "16:9": LANDSCAPE,
    "21:9": LANDSCAPE,
    "4:1": LANDSCAPE,
    "8:1": LANDSCAPE,
}
DEFAULT_QUALITIES = {"flash": "low", "pro": "high"}
# The edits endpoint takes up to 16 input images for the gpt-image models.
MAX_REFERENCES = 16

# A high-quality render takes up to a couple of minutes.
DEFAULT_TIMEOUT = httpx.Timeout(360.0, connect=10.0)

BLOCKED_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_MESSAGES = {
    429: "OpenAI's rate limit was reached.",
    500: "OpenAI had an internal error.",
    502: "OpenAI could not be reached through its gateway.",
    503: "OpenAI is overloaded right now.",
    504: "OpenAI took too long to answer.",
}
REFERENCE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class OpenAIProvider:
    name = "openai"
    label = "OpenAI"

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "https://api.openai.com",
        qualities: dict[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ):
        self.api_key = api_key
        self.api_base = api_base.rstrip("/")
        self.qualities = {**DEFAULT_QUALITIES, **(qualities or {})}
        self.timeout = client_timeout(timeout, default=DEFAULT_TIMEOUT, connect=10.0)

    def render(self, request: RenderRequest) -> RenderResult:
        if not self.api_key:
            raise PermanentError(
                "OpenAI is not set up: no API key is configured. Set OPENAI_API_KEY.",
                detail="OPENAI_API_KEY is empty",
            )
        images = ((request.source,) if request.source else ()) + request.references
        if len(images) > MAX_REFERENCES:
            raise PermanentError(
                f"OpenAI takes at most {MAX_REFERENCES} reference images; "
                f"this request has {len(images)}.",
            )
        fields = request_fields(request, quality=self.qualities[request.tier])
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if images:
            endpoint, body = (
                "edits",
                {
                    "data": {key: str(value) for key, value in fields.items()},
                    "files": reference_parts(images) + mask_parts(request),
                },
            )
        else:
            endpoint, body = "generations", {"json": fields}
        response = send_within(
            "OpenAI",
            "POST",
            f"{self.api_base}/v1/images/{endpoint}",
            headers=headers,
            timeout=self.timeout,
            deadline=request.deadline,
            **body,
        )
        if response.status_code != 200:
            raise http_error(response, model=request.model)
        return parse_answer(response.content, model=request.model)


# gpt-image has no image-strength control: the words say how far to move.
VARIATION_WORDING = {
    "subtle": "A close variation of this image: same composition, subject, framing and "
    "palette, only small details changed.",
    "strong": "A new image on the same idea as this one: same subject and mood, a different "
    "composition, viewpoint and framing.",
}


def requested_size(request: RenderRequest) -> str:
    """WIDTHxHEIGHT: the real pixels of the tier's size for models the catalog knows
    (the 2.x models take any size within their limits), else the nearest of the
    three standard shapes."""
    offer = model_catalog.offer(request.tier, "openai", request.model)
    if offer.entry is None:
        return SIZE_FOR_ASPECT[request.aspect]
    if offer.problems(request.size, request.aspect):
        raise PermanentError(next(iter(offer.problems(request.size, request.aspect).values())))
    width, height = offer.pixel_size(request.size, request.aspect)
    return f"{width}x{height}"


def request_fields(request: RenderRequest, *, quality: str) -> dict:
    prompt = request.prompt
    if request.is_edit:
        prompt = request.instruction
    elif request.variation:
        prompt = f"{VARIATION_WORDING[request.variation]}\n\n{request.prompt}"
    return {
        "model": request.model,
        "prompt": prompt,
        "size": requested_size(request),
        # xhigh and max exist on 2.5 only; other models get their best.
        "quality": quality if quality in model_catalog.openai_qualities(request.model) else "high",
        "n": 1,
        "output_format": "png",
    }


def reference_parts(references: tuple[bytes, ...]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """One `image[]` file part per reference, typed by its content."""
    parts = []
    for number, data in enumerate(references, start=1):
        mime_type = sniff_mime_type(data)
        if mime_type is None:
            raise PermanentError(
                "A reference image is not a PNG, JPEG or WebP file.",
                detail=f"reference {number} starts with {data[:12]!r}",
            )
        filename = f"reference-{number}.{REFERENCE_TYPES[mime_type]}"
        parts.append(("image[]", (filename, data, mime_type)))
    return parts


def mask_parts(request: RenderRequest) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The `mask` file part of a region edit (none for any other request)."""
    if not (request.mask and request.source):
        return []
    return [("mask", ("mask.png", mask_with_alpha(request.mask), "image/png"))]


def http_error(
    response: httpx.Response, *, model: str
) -> TransientError | PermanentError | BlockedError:
    """Turn a non-200 answer into the error the lane should act on."""
    status = response.status_code
    error = _error_body(response)
    code = str(error.get("code") or "")
    kind = str(error.get("type") or "")
    text = str(error.get("message") or "") or response.text[:500]
    detail = f"HTTP {status} {code or kind}: {text}".strip()
    if code in BLOCKED_CODES:
        return _blocked(code, error, detail)
    if status == 429 and "insufficient_quota" in (code, kind):
        return PermanentError(
            "OpenAI says the account is out of credit or over its spending limit "
            "(insufficient_quota). Add credit in the OpenAI billing settings.",
            detail=detail,
        )
    error_class = RateLimitedError if status == 429 else TransientError
    if status in RETRY_STATUSES:
        return error_class(
            TRANSIENT_MESSAGES[status], detail=detail, retry_after=retry_after_header(response)
        )
    if status == 404 or code == "model_not_found":
        return PermanentError(
            f"The model id '{model}' is not known to OpenAI. Check FLASH_MODEL / PRO_MODEL.",
            detail=detail,
        )
    if status == 401:
        return PermanentError(
            "OpenAI refused the API key. Check that OPENAI_API_KEY is valid.", detail=detail
        )
    if status == 403:
        return PermanentError(
            f"OpenAI does not let this API key use '{model}'. Image models may need a "
            f"verified organization or a project with access to them. OpenAI said: {text}",
            detail=detail,
        )
    if status == 400:
        return PermanentError(f"OpenAI rejected the request: {text}", detail=detail)
    if status >= 500:
        return TransientError(
            "OpenAI had a server error.",
            detail=detail,
            retry_after=retry_after_header(response),
        )
    return PermanentError(f"OpenAI answered with an error (HTTP {status}).", detail=detail)


def _error_body(response: httpx.Response) -> dict:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _blocked(code: str, error: dict, detail: str) -> BlockedError:
    details = error.get("moderation_details") or {}
    categories = details.get("categories") if isinstance(details, dict) else None
    message = f"OpenAI declined this prompt for safety reasons ({code}). Try rewording it."
    if categories and isinstance(categories, list):
        message += f" Flagged: {', '.join(str(category) for category in categories)}."
    return BlockedError(message, detail=detail, reason=code)


def parse_answer(content: bytes, *, model: str) -> RenderResult:
    """The image in a 200 answer, or why there is none."""
    try:
        answer = json.loads(content)
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON object")
    except ValueError as error:
        raise PermanentError(
            "OpenAI sent an answer that could not be read.",
            detail=f"malformed JSON: {error}; body starts {content[:200]!r}",
        )
    data = answer.get("data")
    first = data[0] if isinstance(data, list) and data else None
    if not isinstance(first, dict) or not first.get("b64_json"):
        raise PermanentError(
            "OpenAI answered without an image.", detail=f"no data[0].b64_json: {content[:300]!r}"
        )
    try:
        image = base64.b64decode(first["b64_json"], validate=True)
    except (binascii.Error, ValueError, TypeError) as error:
        raise PermanentError(
            "OpenAI sent an image that could not be read.", detail=f"bad base64: {error}"
        )
    mime_type = verified_mime_type(image, vendor="OpenAI")
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    return RenderResult(
        image=image,
        mime_type=mime_type,
        model=model,
        usage=usage,
        text=str(first.get("revised_prompt") or ""),
    )
