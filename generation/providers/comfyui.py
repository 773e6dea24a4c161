"""A studio's own GPUs through ComfyUI's HTTP API.

Each tier runs an API-format workflow template (a JSON file exported with
"Save (API Format)"; see docs/BACKENDS.md for the placeholders). One render:

1. load the tier's template, leave out the branches that need references the
   request does not have, and upload the references it does use
   (`POST /upload/image`, multipart field `image`);
2. fill the placeholders and queue it: `POST /prompt` with
   `{"prompt": workflow, "client_id": ...}`, which answers
   `{"prompt_id", "number", "node_errors"}` (HTTP 400 with `error` and
   `node_errors` when validation fails);
3. follow `GET /history/{prompt_id}` every `poll_seconds` until the entry has
   outputs or `status.status_str == "error"` (the entry only appears once the
   job has finished); the websocket is not needed for this;
4. fetch the first output image with `GET /view?filename=&subfolder=&type=`.

Between polls the request's `cancel_check` is asked; a cancel (or running
past the deadline) removes the job from ComfyUI's queue (`POST /queue` with
`{"delete": [id]}`) and stops it if it is running (`POST /interrupt` with
`{"prompt_id": id}`, which only interrupts that job), so the GPUs are freed.
Routes and shapes follow ComfyUI's server.py and execution.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from pathlib import Path

import httpx

from generation import catalog

from .base import (
    CanceledError,
    PermanentError,
    RenderRequest,
    RenderResult,
    TransientError,
)
from .wire import client_timeout, sniff_mime_type, verified_mime_type

# `{{name}}` anywhere in a string input. A string that is exactly one
# placeholder becomes the value itself (a number for seed, width and height);
# inside longer text it is replaced as text.
PLACEHOLDER = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")
REFERENCE = re.compile(r"^reference_([1-9][0-9]*)$")
VALUES = ("prompt", "negative_prompt", "seed", "width", "height", "base_width", "base_height")
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}

DEFAULT_DEADLINE = 360.0  # seconds for the whole job, queue wait included
REQUEST_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class ComfyUIProvider:
    name = "comfyui"
    label = "ComfyUI (studio GPUs)"

    def __init__(
        self,
        *,
        url: str = "http://127.0.0.1:8188",
        workflows: dict[str, str | Path],
        poll_seconds: float = 1.0,
        deadline: float = DEFAULT_DEADLINE,
        timeout: float | httpx.Timeout | None = None,
    ):
        self.url = url.rstrip("/")
        self.workflows = {tier: Path(path) for tier, path in workflows.items()}
        self.poll_seconds = poll_seconds
        self.deadline = deadline
        self.timeout = client_timeout(timeout, default=REQUEST_TIMEOUT, connect=5.0)
        # One id per provider: ComfyUI uses it to address websocket messages.
        self.client_id = uuid.uuid4().hex

    def render(self, request: RenderRequest) -> RenderResult:
        path = self.workflows[request.tier]
        template = load_workflow(path)
        workflow, used, unused = workflow_for_references(
            template, references=len(request.references), name=path.name
        )
        try:
            with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
                names = {
                    number: self._upload(client, request.references[number - 1]) for number in used
                }
                workflow = fill_placeholders(
                    workflow, values=placeholder_values(request, names), name=path.name
                )
                prompt_id = self._queue(client, workflow, name=path.name)
                try:
                    image_ref = self._follow(client, prompt_id, request, name=path.name)
                except BaseException:
                    # However following ends early (cancel, deadline, an error
                    # answer, the task's time limit), the job must not keep
                    # the GPU busy while a retry queues another.
                    self._stop(client, prompt_id)
                    raise
                image = self._fetch(client, image_ref)
        except httpx.TransportError as error:
            raise TransientError(
                f"The studio's ComfyUI server at {self.url} is not answering; "
                "the image will be retried.",
                detail=f"{type(error).__name__}: {error}",
            )
        note = ""
        if unused:
            note = (
                f"{unused} reference image(s) were not used: the workflow {path.name} "
                f"has {len(used)} reference slot(s)."
            )
        return RenderResult(
            image=image,
            mime_type=verified_mime_type(image, vendor="ComfyUI"),
            model=request.model,
            usage={"prompt_id": prompt_id, "workflow": path.name},
            text=note,
        )

    # --- the four steps ------------------------------------------------------------

    def _upload(self, client: httpx.Client, data: bytes) -> str:
        """Upload one reference; the name a LoadImage node must use for it."""
        mime_type = sniff_mime_type(data)
        if mime_type is None:
            raise PermanentError(
                "A reference image is not a PNG, JPEG or WebP file.",
                detail=f"reference starts with {data[:12]!r}",
            )
        # Named by content, so a reference shared by many jobs is stored once.
        filename = f"contact-sheet-{hashlib.sha256(data).hexdigest()[:24]}.{EXTENSIONS[mime_type]}"
        response = client.post(
            "/upload/image",
            files={"image": (filename, data, mime_type)},
            data={"type": "input", "overwrite": "true"},
        )
        if response.status_code != 200:
            raise _http_error(response, "store a reference image")
        answer = _json(response)
        name = str(answer.get("name") or filename)
        subfolder = str(answer.get("subfolder") or "")
        return f"{subfolder}/{name}" if subfolder else name

    def _queue(self, client: httpx.Client, workflow: dict, *, name: str) -> str:
        response = client.post("/prompt", json={"prompt": workflow, "client_id": self.client_id})
        if response.status_code == 400:
            answer = _json(response)
            raise _rejected(name, answer.get("error"), answer.get("node_errors"))
        if response.status_code != 200:
            raise _http_error(response, "queue the workflow")
        answer = _json(response)
        prompt_id = str(answer.get("prompt_id") or "")
        if not prompt_id:
            raise PermanentError(
                "ComfyUI accepted the workflow but gave no job id.",
                detail=f"POST /prompt answered {response.text[:300]}",
            )
        if answer.get("node_errors"):
            # ComfyUI queues the outputs that did validate; this job is not
            # what the template asked for, so take it back off the queue.
            self._stop(client, prompt_id)
            raise _rejected(name, None, answer["node_errors"])
        return prompt_id

    def _follow(
        self, client: httpx.Client, prompt_id: str, request: RenderRequest, *, name: str
    ) -> dict:
        """Poll the history until the job has an image; the image's /view parameters."""
        give_up_at = time.monotonic() + self.deadline
        while True:
            if request.cancel_check is not None and request.cancel_check():
                raise CanceledError(
                    "The render was canceled; ComfyUI was told to stop it.",
                    detail=f"prompt {prompt_id} deleted from the queue and interrupted",
                )
            response = client.get(f"/history/{prompt_id}")
            if response.status_code != 200:
                raise _http_error(response, "report the job's progress")
            entry = _json(response).get(prompt_id)
            if isinstance(entry, dict):
                image_ref = _finished(entry, prompt_id, name=name)
                if image_ref is not None:
                    return image_ref
            if time.monotonic() >= give_up_at:
                raise TransientError(
                    f"ComfyUI did not finish the image within {self.deadline:.0f} seconds; "
                    "it was stopped and will be retried.",
                    detail=f"prompt {prompt_id} still running or queued",
                )
            time.sleep(self.poll_seconds)

    def _fetch(self, client: httpx.Client, image_ref: dict) -> bytes:
        params = {
            "filename": image_ref.get("filename", ""),
            "subfolder": image_ref.get("subfolder", ""),
            "type": image_ref.get("type", "output"),
        }
        response = client.get("/view", params=params)
        if response.status_code != 200:
            raise _http_error(response, "send the finished image")
        return response.content

    def _stop(self, client: httpx.Client, prompt_id: str) -> None:
        """Take the job off the queue, and interrupt it if it is the one running."""
        for path, body in (
            ("/queue", {"delete": [prompt_id]}),
            ("/interrupt", {"prompt_id": prompt_id}),
        ):
            try:
                client.post(path, json=body)
            except httpx.TransportError:
                pass  # the server is gone; there is nothing left to stop


# --- templates ------------------------------------------------------------------------


def load_workflow(path: Path) -> dict:
    try:
        workflow = json.loads(path.read_text())
    except OSError as error:
        raise PermanentError(
            f"The ComfyUI workflow file {path} could not be read. Check "
            "COMFYUI_FLASH_WORKFLOW / COMFYUI_PRO_WORKFLOW.",
            detail=f"{type(error).__name__}: {error}",
        )
    except ValueError as error:
        raise PermanentError(
            f"The ComfyUI workflow {path.name} is not valid JSON.", detail=str(error)
        )
    if not isinstance(workflow, dict) or not all(
        isinstance(node, dict) and "class_type" in node for node in workflow.values()
    ):
        raise PermanentError(
            f"The ComfyUI workflow {path.name} is not in API format: export it with "
            "“Save (API Format)”, not “Save”.",
            detail="expected an object of nodes, each with class_type and inputs",
        )
    return workflow


def _links(node: dict) -> list[str]:
    """Ids of the nodes this node takes inputs from (API format: [node_id, output_index])."""
    return [
        str(value[0])
        for value in (node.get("inputs") or {}).values()
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
    ]


def _reference_numbers(node: dict) -> set[int]:
    numbers = set()
    for value in (node.get("inputs") or {}).values():
        if isinstance(value, str):
            for name in PLACEHOLDER.findall(value):
                match = REFERENCE.match(name)
                if match:
                    numbers.add(int(match.group(1)))
    return numbers


def workflow_for_references(
    template: dict, *, references: int, name: str
) -> tuple[dict, list[int], int]:
    """The workflow to run for a request with this many references.

    Nodes that need a reference the request lacks are left out, with every
    node downstream of them. Of the output nodes that remain, those using the
    most references are kept with the nodes they need, and the others are
    left out: a template can offer a plain branch and a reference branch, and
    only the one that fits runs. Returns the workflow, the reference numbers
    it uses, and how many of the request's references go unused.
    """
    consumers = {node_id: 0 for node_id in template}
    for node in template.values():
        for source in _links(node):
            if source in consumers:
                consumers[source] += 1
    outputs = [node_id for node_id, count in consumers.items() if count == 0]

    dropped = {
        node_id
        for node_id, node in template.items()
        if any(number > references for number in _reference_numbers(node))
    }
    changed = True
    while changed:
        changed = False
        for node_id, node in template.items():
            if node_id not in dropped and any(source in dropped for source in _links(node)):
                dropped.add(node_id)
                changed = True

    def ancestors(node_id: str) -> set[str]:
        seen, stack = set(), [node_id]
        while stack:
            current = stack.pop()
            if current in seen or current not in template:
                continue
            seen.add(current)
            stack.extend(_links(template[current]))
        return seen

    def used_by(nodes: set[str]) -> set[int]:
        return set().union(*(_reference_numbers(template[node_id]) for node_id in nodes))

    surviving = {node_id: ancestors(node_id) for node_id in outputs if node_id not in dropped}
    if not surviving:
        needed = max(
            (number for node in template.values() for number in _reference_numbers(node)),
            default=0,
        )
        raise PermanentError(
            f"The ComfyUI workflow {name} needs {needed} reference image(s); this request "
            f"has {references}.",
        )
    most = max(len(used_by(nodes)) for nodes in surviving.values())
    keep: set[str] = set()
    for nodes in surviving.values():
        if len(used_by(nodes)) == most:
            keep |= nodes
    used = sorted(used_by(keep))
    workflow = {node_id: node for node_id, node in template.items() if node_id in keep}
    return workflow, used, max(0, references - len(used))


def placeholder_values(request: RenderRequest, reference_names: dict[int, str]) -> dict:
    width, height = catalog.pixel_size(request.size, request.aspect)
    # The 1K pixel size of the same ratio: what SD-class models render best,
    # for workflows that render small and upscale to width × height.
    base_width, base_height = catalog.pixel_size("1K", request.aspect)
    values = {
        "prompt": request.prompt,
        "negative_prompt": "",
        "seed": request.seed,
        "width": width,
        "height": height,
        "base_width": base_width,
        "base_height": base_height,
        "model": request.model,
    }
    values.update({f"reference_{number}": name for number, name in reference_names.items()})
    return values


def fill_placeholders(workflow: dict, *, values: dict, name: str) -> dict:
    def fill(value):
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value.strip())
            if whole:
                return _value(whole.group(1))
            return PLACEHOLDER.sub(lambda match: str(_value(match.group(1))), value)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    def _value(key: str):
        if key not in values:
            known = ", ".join(f"{{{{{known}}}}}" for known in (*VALUES, "model", "reference_1"))
            raise PermanentError(
                f"The ComfyUI workflow {name} has an unknown placeholder {{{{{key}}}}}. "
                f"Known: {known}, ….",
            )
        return values[key]

    return {
        node_id: {**node, "inputs": fill(node.get("inputs") or {})}
        for node_id, node in workflow.items()
    }


# --- answers --------------------------------------------------------------------------


def _finished(entry: dict, prompt_id: str, *, name: str) -> dict | None:
    """The first output image of a finished job, None while it runs, or the error."""
    status = entry.get("status") or {}
    if status.get("status_str") == "error":
        raise _execution_error(status.get("messages") or [], prompt_id, name=name)
    for output in (entry.get("outputs") or {}).values():
        for image in (output or {}).get("images") or []:
            if isinstance(image, dict) and image.get("filename"):
                return image
    if status.get("completed"):
        raise PermanentError(
            f"ComfyUI finished the workflow {name} without an image. Its output node "
            "must save or preview an image (SaveImage or PreviewImage).",
            detail=f"prompt {prompt_id}: outputs {json.dumps(entry.get('outputs'))[:300]}",
        )
    return None


def _execution_error(messages: list, prompt_id: str, *, name: str) -> Exception:
    events = {
        message[0]: message[1]
        for message in messages
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)
    }
    if "execution_error" in events:
        error = events["execution_error"]
        said = str(error.get("exception_message") or "").strip()
        node = f"node {error.get('node_id')} ({error.get('node_type')})"
        return PermanentError(
            f"ComfyUI could not run the workflow {name}: {node} failed: {said}",
            detail=f"prompt {prompt_id}: {error.get('exception_type')}: {said}",
        )
    if "execution_interrupted" in events:
        # Someone stopped it at the ComfyUI server itself, not through us.
        return TransientError(
            "The job was interrupted on the ComfyUI server; the image will be retried.",
            detail=f"prompt {prompt_id}: execution_interrupted",
        )
    return PermanentError(
        f"ComfyUI could not run the workflow {name}.",
        detail=f"prompt {prompt_id}: {json.dumps(messages)[:300]}",
    )


def _rejected(name: str, error, node_errors) -> PermanentError:
    """A clear message for a workflow ComfyUI refused to queue."""
    problems = []
    for node_id, node_error in (node_errors or {}).items():
        if not isinstance(node_error, dict):
            continue
        for reason in node_error.get("errors") or []:
            text = str(reason.get("message") or "")
            if reason.get("details"):
                text += f": {str(reason['details'])[:200]}"
            problems.append(f"node {node_id} ({node_error.get('class_type', '?')}): {text}")
    if problems:
        message = f"ComfyUI refused the workflow {name}: " + "; ".join(problems[:3])
        if len(problems) > 3:
            message += f"; and {len(problems) - 3} more"
    else:
        said = error.get("message", "") if isinstance(error, dict) else str(error or "")
        if isinstance(error, dict) and error.get("details"):
            said += f": {error['details']}"
        message = f"ComfyUI refused the workflow {name}: {said or 'no reason given'}"
    return PermanentError(message, detail=json.dumps({"error": error, "node_errors": node_errors}))


def _http_error(response: httpx.Response, action: str) -> TransientError | PermanentError:
    detail = f"HTTP {response.status_code} {response.request.url.path}: {response.text[:300]}"
    if response.status_code >= 500:
        return TransientError(
            f"ComfyUI had an error when asked to {action}; the image will be retried.",
            detail=detail,
        )
    return PermanentError(
        f"ComfyUI answered HTTP {response.status_code} when asked to {action}.", detail=detail
    )


def _json(response: httpx.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        raise PermanentError(
            "ComfyUI sent an answer that could not be read.",
            detail=f"{response.request.url.path}: {response.text[:300]!r}",
        )
    return answer if isinstance(answer, dict) else {}
