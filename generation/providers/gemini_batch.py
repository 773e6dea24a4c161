"""Gemini's Batch API: the same generateContent requests, half price, within 24 hours.

Wire format (gemini-image-api.md "Batch mode", field names as the
python-genai SDK's batches.py sends and reads them):

- create: POST /v1beta/models/{model}:batchGenerateContent with
  {"batch": {"displayName", "inputConfig": {"requests": {"requests": [
  {"request": GenerateContentRequest, "metadata": {"key": …}}]}}}} while the
  body stays under 20 MB, else {"inputConfig": {"fileName": "files/…"}} naming
  a JSONL file ({"key", "request"} per line) uploaded through the Files API
  (resumable upload: start, then upload + finalize);
- the answer, and GET /v1beta/batches/{id}, is a long-running operation:
  {"name": "batches/…", "metadata": {"state": "BATCH_STATE_…", "output": …}};
- output: {"inlinedResponses": {"inlinedResponses": [{"response" | "error",
  "metadata": {"key"}}]}} or {"responsesFile": "files/…"}, downloaded from
  /download/v1beta/files/…:download?alt=media as JSONL {"key", "response" | "error"};
- cancel: POST /v1beta/batches/{id}:cancel.

Each response is read by the interactive path's own parse_answer, so a
blocked or imageless answer means the same in both lanes.
"""

from __future__ import annotations

import json

import httpx

from .base import PermanentError, ProviderError, TransientError
from .batch_base import (
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    BatchItem,
    BatchPoll,
)
from .gemini import http_error, parse_answer, request_body

# Google's limit for a request with its inline requests; above it, the file route.
INLINE_LIMIT_BYTES = 20 * 1024 * 1024
TIMEOUT = httpx.Timeout(120.0, connect=10.0)

STATES = {
    "BATCH_STATE_PENDING": PENDING,
    "BATCH_STATE_RUNNING": RUNNING,
    "BATCH_STATE_SUCCEEDED": SUCCEEDED,
    "BATCH_STATE_FAILED": FAILED,
    "BATCH_STATE_CANCELLED": CANCELLED,
    "BATCH_STATE_EXPIRED": EXPIRED,
    # Vertex and older answers name the same states JOB_STATE_…
    "JOB_STATE_PENDING": PENDING,
    "JOB_STATE_QUEUED": PENDING,
    "JOB_STATE_RUNNING": RUNNING,
    "JOB_STATE_SUCCEEDED": SUCCEEDED,
    "JOB_STATE_FAILED": FAILED,
    "JOB_STATE_CANCELLED": CANCELLED,
    "JOB_STATE_EXPIRED": EXPIRED,
}


class GeminiBatchClient:
    name = "gemini"

    def __init__(self, *, api_key: str, api_base: str, inline_limit: int | None = None):
        self.api_key = api_key
        self.api_base = api_base.rstrip("/")
        self.inline_limit = inline_limit or INLINE_LIMIT_BYTES

    # --- plumbing ------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        if not self.api_key:
            raise PermanentError(
                "Gemini is not set up: no API key is configured. Set GEMINI_API_KEY."
            )
        headers = {"x-goog-api-key": self.api_key, **kwargs.pop("headers", {})}
        try:
            return httpx.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
        except httpx.HTTPError as error:
            raise TransientError("Gemini's batch endpoint could not be reached.", detail=str(error))

    def _json(self, response: httpx.Response, model: str) -> dict:
        if response.status_code != 200:
            raise http_error(response, model=model)
        try:
            answer = response.json()
        except ValueError:
            raise PermanentError("Gemini's batch endpoint sent an answer that could not be read.")
        if not isinstance(answer, dict):
            raise PermanentError("Gemini's batch endpoint sent an answer that could not be read.")
        return answer

    # --- the job -------------------------------------------------------------------

    def submit(self, *, model: str, display_name: str, items: list[BatchItem]) -> str:
        requests = [
            {"request": request_body(item.request), "metadata": {"key": item.key}} for item in items
        ]
        batch: dict = {"displayName": display_name}
        inline = {"batch": {**batch, "inputConfig": {"requests": {"requests": requests}}}}
        encoded = json.dumps(inline).encode()
        if len(encoded) <= self.inline_limit:
            body = encoded
        else:
            lines = "\n".join(
                json.dumps({"key": r["metadata"]["key"], "request": r["request"]}) for r in requests
            )
            file_name = self._upload(lines.encode(), display_name)
            body = json.dumps({"batch": {**batch, "inputConfig": {"fileName": file_name}}}).encode()
        response = self._send(
            "POST",
            f"{self.api_base}/v1beta/models/{model}:batchGenerateContent",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        answer = self._json(response, model)
        name = answer.get("name") or (answer.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name.startswith("batches/"):
            raise PermanentError(
                "Gemini accepted the batch job but did not name it.",
                detail=f"answer: {str(answer)[:300]}",
            )
        return name

    def _upload(self, data: bytes, display_name: str) -> str:
        """The Files API's resumable upload: start, then upload and finalize in one step."""
        start = self._send(
            "POST",
            f"{self.api_base}/upload/v1beta/files",
            json={"file": {"displayName": display_name}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(data)),
                "X-Goog-Upload-Header-Content-Type": "application/jsonl",
            },
        )
        upload_url = start.headers.get("x-goog-upload-url")
        if start.status_code != 200 or not upload_url:
            raise http_error(start, model="files")
        done = self._send(
            "POST",
            upload_url,
            content=data,
            headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        )
        name = (self._json(done, "files").get("file") or {}).get("name")
        if not name:
            raise PermanentError("Gemini's Files API did not name the uploaded requests.")
        return name

    def poll(self, name: str) -> BatchPoll:
        answer = self._json(self._send("GET", f"{self.api_base}/v1beta/{name}"), name)
        metadata = answer.get("metadata") or {}
        state = STATES.get(metadata.get("state", ""), PENDING)
        if state != SUCCEEDED:
            error = (answer.get("error") or {}).get("message", "")
            return BatchPoll(state=state, error=error)
        output = metadata.get("output") or answer.get("response") or {}
        if output.get("responsesFile"):
            return BatchPoll(state=state, results=self._file_results(output["responsesFile"]))
        entries = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
        results = {}
        for entry in entries:
            key = str((entry.get("metadata") or {}).get("key", ""))
            results[key] = _result(entry, model=metadata.get("model", ""))
        return BatchPoll(state=state, results=results)

    def _file_results(self, file_name: str) -> dict:
        response = self._send(
            "GET", f"{self.api_base}/download/v1beta/{file_name}:download", params={"alt": "media"}
        )
        if response.status_code != 200:
            raise http_error(response, model="files")
        results = {}
        for line in response.content.splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a broken line: its request is released as returning nothing
            results[str(entry.get("key", ""))] = _result(entry, model="")
        return results

    def cancel(self, name: str) -> None:
        response = self._send("POST", f"{self.api_base}/v1beta/{name}:cancel", json={})
        if response.status_code != 200:
            raise http_error(response, model=name)


def _result(entry: dict, *, model: str):
    """One request's outcome: a RenderResult or the ProviderError it ended in."""
    if entry.get("error"):
        error = entry["error"]
        reason = error.get("message", "no reason given")
        return PermanentError(
            f"Gemini's batch could not render this image: {reason}",
            detail=json.dumps(error)[:500],
        )
    try:
        return parse_answer(json.dumps(entry.get("response") or {}).encode(), model=model)
    except ProviderError as error:
        return error
