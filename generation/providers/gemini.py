"""Gemini image models (Nano Banana 2 and Pro) over the REST generateContent API.

One request per image. The wire format and the error table follow the shared
reference (gemini-image-api.md): errors are sorted into retry (429, 5xx,
timeouts, dropped connections), give up (400, 403, 404, broken answers) and
blocked (HTTP 200 with a block reason or an image finishReason), each with a
message a designer can act on.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re

import httpx
from PIL import Image

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

MAX_REFERENCES = 14
# Inline data is limited per image; bigger references are re-encoded to fit.
MAX_INLINE_BYTES = 7 * 1024 * 1024
REFERENCE_SIDE_LIMIT = 3072

# Pro renders take tens of seconds; Google's gateways hold a request up to minutes.
DEFAULT_TIMEOUT = httpx.Timeout(360.0, connect=10.0)

BLOCK_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "NO_IMAGE",
        "BLOCKLIST",
        "RECITATION",
    }
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

TRANSIENT_MESSAGES = {
    429: "Gemini's rate limit or quota was reached.",
    500: "Gemini had an internal error.",
    502: "Gemini could not be reached through its gateway.",
    503: "Gemini is overloaded right now.",
    504: "Gemini took too long to answer.",
}


class GeminiProvider:
    name = "gemini"
    label = "Gemini"

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "https://generativelanguage.googleapis.com",
        timeout: float | httpx.Timeout | None = None,
    ):
        self.api_key = api_key
        self.api_base = api_base.rstrip("/")
        self.timeout = client_timeout(timeout, default=DEFAULT_TIMEOUT, connect=10.0)

    def render(self, request: RenderRequest) -> RenderResult:
        if not self.api_key:
            raise PermanentError(
                "Gemini is not set up: no API key is configured. Set GEMINI_API_KEY.",
                detail="GEMINI_API_KEY is empty",
            )
        url = f"{self.api_base}/v1beta/models/{request.model}:generateContent"
        body = request_body(request)
        response = send_within(
            "Gemini",
            "POST",
            url,
            json=body,
            headers={"x-goog-api-key": self.api_key},
            timeout=self.timeout,
            deadline=request.deadline,
        )
        if response.status_code != 200:
            raise http_error(response, model=request.model)
        return parse_answer(response.content, model=request.model)


# How a variation is asked for: Gemini has no image-strength control, so the
# words and a new seed say how far to move from the source image.
VARIATION_WORDING = {
    "subtle": "Make a close variation of this image: keep its composition, subject, framing "
    "and palette, and change only small details.",
    "strong": "Make a new image on the same idea as this one: keep the subject and mood, "
    "and find a different composition, viewpoint and framing.",
}


# Gemini takes no mask: a region edit sends ours (white = change) as one more image
# with words asking to keep to it. It is guidance, and the page says so.
MASK_WORDING = (
    "The black-and-white image attached to this message is a mask of the image to edit: "
    "make the change only inside its white area and keep everything in its black area "
    "exactly as it is. The mask is not part of the picture; do not draw it."
)


def request_body(request: RenderRequest) -> dict:
    images = len(request.references) + (1 if request.source else 0) + (1 if request.mask else 0)
    if images > MAX_REFERENCES:
        raise PermanentError(
            f"Gemini takes at most {MAX_REFERENCES} reference images; this request has {images}.",
        )
    if request.is_edit:
        contents = edit_contents(request)
    else:
        text = request.prompt
        if request.variation:
            text = f"{VARIATION_WORDING[request.variation]}\n\n{request.prompt}"
        parts: list[dict] = [{"text": text}]
        parts += [_image_part(data) for data in request.references]
        if request.source:
            parts.append(_image_part(request.source))
        contents = [{"role": "user", "parts": parts}]
    return {
        "contents": contents,
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": request.aspect, "imageSize": request.size},
            "seed": request.seed,
        },
    }


def edit_contents(request: RenderRequest) -> list[dict]:
    """The conversation of an edit, in the documented multi-turn shape.

    The first user turn carries the first instruction with the image the
    chain began from (and the references); then, for every earlier turn, the
    model's answer as it gave it (the image part with its thoughtSignature)
    and the next instruction. The last user turn is this edit's instruction.
    """
    turns = request.turns
    if not request.chain_start or not all(turn.signature for turn in turns):
        # Turns another provider rendered (or a cached copy without its
        # signature) cannot go back as Gemini's own answers: start the
        # conversation from the latest image instead.
        turns = ()
    first_image = request.chain_start if turns else request.source
    first_text = turns[0].instruction if turns else request.instruction
    parts = [{"text": first_text}, _image_part(first_image)]
    parts += [_image_part(data) for data in request.references]
    contents = [{"role": "user", "parts": parts}]
    for number, turn in enumerate(turns):
        answer = {**_image_part(turn.image), "thoughtSignature": turn.signature}
        contents.append({"role": "model", "parts": [answer]})
        following = (
            turns[number + 1].instruction if number + 1 < len(turns) else request.instruction
        )
        contents.append({"role": "user", "parts": [{"text": following}]})
    if request.mask:
        # In this edit's own turn: right after the image to edit when that turn
        # carries it (a first edit), else after the words (the image is the last answer).
        parts = contents[-1]["parts"]
        parts[0] = {"text": f"{parts[0]['text']}\n\n{MASK_WORDING}"}
        parts.insert(2 if len(contents) == 1 else 1, _image_part(request.mask))
    return contents


def _image_part(data: bytes) -> dict:
    data, mime_type = _inline_reference(data)
    return {"inline_data": {"mime_type": mime_type, "data": base64.b64encode(data).decode()}}


def _inline_reference(data: bytes) -> tuple[bytes, str]:
    mime_type = sniff_mime_type(data)
    if mime_type is None:
        raise PermanentError(
            "A reference image is not a PNG, JPEG or WebP file.",
            detail=f"reference starts with {data[:12]!r}",
        )
    if len(data) <= MAX_INLINE_BYTES:
        return data, mime_type
    # A 4K draft promoted as a reference can be tens of megabytes as PNG.
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((REFERENCE_SIDE_LIMIT, REFERENCE_SIDE_LIMIT))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=90)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise PermanentError("A reference image could not be read.", detail=str(error))
    return buffer.getvalue(), "image/jpeg"


def http_error(response: httpx.Response, *, model: str) -> TransientError | PermanentError:
    """Turn a non-200 answer into the error the lane should act on."""
    code = response.status_code
    error = _error_body(response)
    status = error.get("status", "")
    text = error.get("message", "") or response.text[:500]
    detail = f"HTTP {code} {status}: {text}".strip()
    if code == 429:
        return RateLimitedError(
            TRANSIENT_MESSAGES[code], detail=detail, retry_after=_retry_after(response, error)
        )
    if code in RETRY_STATUSES:
        return TransientError(
            TRANSIENT_MESSAGES[code], detail=detail, retry_after=_retry_after(response, error)
        )
    if code == 404:
        return PermanentError(
            f"The model id '{model}' is not known to Gemini. Check FLASH_MODEL / PRO_MODEL.",
            detail=detail,
        )
    if code in (401, 403) or _error_reason(error) == "API_KEY_INVALID":
        return PermanentError(
            "Gemini refused the API key. Check that GEMINI_API_KEY is valid and has "
            "access to the Gemini API.",
            detail=detail,
        )
    if status == "FAILED_PRECONDITION":
        return PermanentError(
            "Gemini is not available for this account: billing may not be enabled for the "
            "API key's project, or the service is not offered in this region.",
            detail=detail,
        )
    if code == 400:
        return PermanentError(f"Gemini rejected the request: {text}", detail=detail)
    if code >= 500:
        return TransientError(
            "Gemini had a server error.",
            detail=detail,
            retry_after=_retry_after(response, error),
        )
    return PermanentError(f"Gemini answered with an error (HTTP {code}).", detail=detail)


def _error_body(response: httpx.Response) -> dict:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _error_reason(error: dict) -> str:
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("reason"):
            return detail["reason"]
    return ""


def _retry_after(response: httpx.Response, error: dict) -> float | None:
    """Seconds to wait: the Retry-After header, else the body's RetryInfo.retryDelay."""
    header = retry_after_header(response)
    if header is not None:
        return header
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([\d.]+)s\s*", str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def parse_answer(content: bytes, *, model: str) -> RenderResult:
    """Find the final image in a 200 answer, or say why there is none."""
    try:
        answer = json.loads(content)
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON object")
    except ValueError as error:
        raise PermanentError(
            "Gemini sent an answer that could not be read.",
            detail=f"malformed JSON: {error}; body starts {content[:200]!r}",
        )
    usage = answer.get("usageMetadata") or {}
    feedback = answer.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        raise _blocked(feedback["blockReason"], feedback.get("blockReasonMessage", ""))
    candidates = answer.get("candidates") or []
    if not candidates or not isinstance(candidates[0], dict):
        raise PermanentError(
            "Gemini answered without an image.", detail=f"no candidates: {content[:300]!r}"
        )
    candidate = candidates[0]
    finish_reason = candidate.get("finishReason", "")
    if finish_reason in BLOCK_REASONS:
        raise _blocked(finish_reason, candidate.get("finishMessage", ""))

    image_part = None
    signature = ""
    texts = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if not isinstance(part, dict) or part.get("thought"):
            continue  # interim "thinking" images and text are not the result
        inline = part.get("inlineData") or part.get("inline_data")
        if inline:
            image_part = inline  # the last image part is the final one
            signature = str(part.get("thoughtSignature") or part.get("thought_signature") or "")
        elif part.get("text"):
            texts.append(part["text"])
    text = "\n".join(texts)
    if image_part is None:
        said = f" Gemini said: {text[:300]}" if text else ""
        raise PermanentError(
            f"Gemini answered without an image.{said}",
            detail=f"finishReason={finish_reason or 'none'}; no image part",
        )
    try:
        image = base64.b64decode(image_part.get("data", ""), validate=True)
    except (binascii.Error, ValueError) as error:
        raise PermanentError(
            "Gemini sent an image that could not be read.", detail=f"bad base64: {error}"
        )
    mime_type = verified_mime_type(image, vendor="Gemini")
    return RenderResult(
        image=image, mime_type=mime_type, model=model, usage=usage, text=text, signature=signature
    )


def _blocked(reason: str, explanation: str) -> BlockedError:
    if "RECITATION" in reason:
        why = "because the result would copy existing material too closely"
    elif reason in ("NO_IMAGE", "IMAGE_OTHER", "OTHER"):
        why = "without giving a specific reason"
    else:
        why = "for safety reasons"
    message = f"Gemini declined this prompt {why} ({reason}). Try rewording it."
    if explanation:
        message += f" Gemini said: {explanation}"
    return BlockedError(message, detail=f"blocked: {reason} {explanation}".strip(), reason=reason)


def check_models(
    api_base: str, key: str, model_ids: list[str] | tuple[str, ...], *, timeout: float = 20.0
) -> list[str]:
    """Problems with the configured model ids, in words; empty when all are served.

    Model ids changed several times in 2026, so a start-up check saves a studio
    from finding out through a grid of failed images.
    """
    url = f"{api_base.rstrip('/')}/v1beta/models"
    known: dict[str, dict] = {}
    params = {"pageSize": 1000}
    try:
        with httpx.Client(timeout=timeout) as client:
            while True:
                response = client.get(url, params=params, headers={"x-goog-api-key": key})
                if response.status_code != 200:
                    error = http_error(response, model="")
                    return [f"Could not list Gemini models: {error.detail}"]
                page = response.json()
                for model in page.get("models") or []:
                    known[model.get("name", "").removeprefix("models/")] = model
                token = page.get("nextPageToken")
                if not token:
                    break
                params = {"pageSize": 1000, "pageToken": token}
    except (httpx.HTTPError, ValueError, AttributeError) as error:
        return [f"Could not list Gemini models: {type(error).__name__}: {error}"]
    problems = []
    for model_id in model_ids:
        model = known.get(model_id)
        if model is None:
            problems.append(
                f"The model id '{model_id}' is not known to Gemini. Check FLASH_MODEL / PRO_MODEL."
            )
        elif "generateContent" not in (model.get("supportedGenerationMethods") or []):
            problems.append(f"The Gemini model '{model_id}' does not support generateContent.")
    return problems
