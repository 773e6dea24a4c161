"""A fake ComfyUI server on 127.0.0.1 that speaks the routes the provider uses.

`POST /prompt`, `GET /history/{id}`, `GET /view`, `POST /upload/image`,
`POST /queue` (delete) and `POST /interrupt`, with ComfyUI's answer shapes.
A real HTTP server in a thread, so a Celery worker in another process can
use it through COMFYUI_URL.

A job "runs" for `run_seconds` after it is queued; until then its history is
`{}`, as in ComfyUI, where the entry appears once the job ends. The result is
a PNG at the width and height the workflow's EmptyLatentImage or last
ImageScale asks for. Validation follows ComfyUI's: links must point at nodes,
a LoadImage must name an uploaded file, and a placeholder left unfilled is
reported as a bad value.

What a job gets is chosen by a `[fault:NAME]` in any text input of the
workflow (the prompt, usually):

- node_errors: HTTP 400 with `node_errors` on the checkpoint loader;
- partial_node_errors: HTTP 200, queued, but with `node_errors` as well;
- execution_error: the job ends with status "error" (out of memory in KSampler);
- interrupted_elsewhere: the job ends interrupted by someone at the server;
- no_output: the job ends "success" with no images;
- slow: the job runs until it is interrupted or deleted;
- 500: `POST /prompt` answers HTTP 500.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.fakes.gemini_server import png
from tests.fakes.local_server import LocalServer, QuietHandler
from tests.fakes.openai_server import Part, parse_multipart

FAULT = re.compile(r"\[fault:([a-z_0-9]+)\]")
UNFILLED = re.compile(r"\{\{.*?\}\}")


@dataclass
class Job:
    prompt_id: str
    workflow: dict
    scenario: str
    queued_at: float
    stopped_by: str = ""  # "interrupt" or "delete"
    output: str = ""  # filename of the saved image


@dataclass
class FakeComfyUI(LocalServer):
    run_seconds: float = 0.05
    jobs: dict[str, Job] = field(default_factory=dict)
    uploads: dict[str, Part] = field(default_factory=dict)
    interrupts: list[dict] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    submitted: list[dict] = field(default_factory=list)  # POST /prompt bodies
    paths: list[str] = field(default_factory=list)  # "METHOD /path" of every request

    def __post_init__(self):
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}

    def handler_class(self):
        return _Handler

    def reset(self) -> None:
        with self._lock:
            for collection in (self.jobs, self.uploads, self._files):
                collection.clear()
            for log in (self.interrupts, self.deletes, self.submitted, self.paths):
                log.clear()

    # --- the server's state -------------------------------------------------------------

    def queue(self, workflow: dict, scenario: str) -> Job:
        job = Job(uuid.uuid4().hex, workflow, scenario, time.monotonic())
        with self._lock:
            self.jobs[job.prompt_id] = job
        return job

    def history_entry(self, job: Job) -> dict | None:
        if job.stopped_by == "delete":
            return None  # taken off the queue before it ran: ComfyUI keeps no history
        if job.stopped_by == "interrupt":
            return _entry(job, {}, "error", [_event("execution_interrupted", job)])
        if job.scenario == "slow" or not self._done(job):
            return None
        if job.scenario == "interrupted_elsewhere":
            return _entry(job, {}, "error", [_event("execution_interrupted", job)])
        if job.scenario == "execution_error":
            error = _event(
                "execution_error",
                job,
                node_id="5",
                node_type="KSampler",
                exception_type="torch.OutOfMemoryError",
                exception_message="Allocation on device 0 would exceed allowed memory. "
                "(out of memory)",
            )
            return _entry(job, {}, "error", [error])
        if job.scenario == "no_output":
            return _entry(job, {}, "success", [])
        if not job.output:
            width, height = _output_size(job.workflow)
            job.output = f"ContactSheet_{len(self._files) + 1:05d}_.png"
            with self._lock:
                self._files[job.output] = png(width, height, json.dumps(job.workflow))
        save_node = next(
            (
                node_id
                for node_id, node in job.workflow.items()
                if node["class_type"] == "SaveImage"
            ),
            "9",
        )
        images = [{"filename": job.output, "subfolder": "", "type": "output"}]
        return _entry(job, {save_node: {"images": images}}, "success", [])

    def _done(self, job: Job) -> bool:
        return time.monotonic() - job.queued_at >= self.run_seconds

    def file(self, name: str) -> bytes | None:
        with self._lock:
            return self._files.get(name)


def _event(kind: str, job: Job, **data) -> list:
    return [kind, {"prompt_id": job.prompt_id, "timestamp": int(time.time() * 1000), **data}]


def _entry(job: Job, outputs: dict, status: str, messages: list) -> dict:
    return {
        "prompt": [0, job.prompt_id, job.workflow, {}, list(outputs)],
        "outputs": outputs,
        "status": {
            "status_str": status,
            "completed": status == "success",
            "messages": [_event("execution_start", job), *messages],
        },
        "meta": {},
    }


def _output_size(workflow: dict) -> tuple[int, int]:
    size = (512, 512)
    for node in workflow.values():  # the last sizing node wins: the final ImageScale
        inputs = node.get("inputs") or {}
        if node["class_type"] in ("EmptyLatentImage", "ImageScale") and isinstance(
            inputs.get("width"), int
        ):
            size = (inputs["width"], inputs["height"])
    return size


def _node_error(class_type: str, message: str, details: str, input_name: str) -> dict:
    return {
        "errors": [
            {
                "type": "value_not_in_list",
                "message": message,
                "details": details,
                "extra_info": {"input_name": input_name},
            }
        ],
        "dependent_outputs": [],
        "class_type": class_type,
    }


class _Handler(QuietHandler):
    fake: FakeComfyUI

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data).encode())

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        split = urlsplit(self.path)
        self.fake.paths.append(f"GET {split.path}")
        if split.path.startswith("/history/"):
            prompt_id = split.path.removeprefix("/history/")
            job = self.fake.jobs.get(prompt_id)
            entry = self.fake.history_entry(job) if job else None
            self._json(200, {prompt_id: entry} if entry else {})
        elif split.path == "/view":
            query = parse_qs(split.query)
            name = (query.get("filename") or [""])[0]
            data = self.fake.file(name) if (query.get("type") or [""])[0] == "output" else None
            if data is None:
                self._send(404, b"404: Not Found", content_type="text/plain")
            else:
                self._send(200, data, content_type="image/png")
        else:
            self._send(404, b"404: Not Found", content_type="text/plain")

    def do_POST(self):
        path = urlsplit(self.path).path
        self.fake.paths.append(f"POST {path}")
        raw = self._body()
        if path == "/upload/image":
            fields, parts = parse_multipart(self.headers.get("Content-Type", ""), raw)
            images = [part for part in parts if part.name == "image"]
            if not images:
                self._send(400, b"", content_type="text/plain")
                return
            image = images[0]
            self.fake.uploads[image.filename] = image
            self._json(200, {"name": image.filename, "subfolder": "", "type": fields.get("type")})
            return
        body = json.loads(raw or b"{}")
        if path == "/interrupt":
            self.fake.interrupts.append(body)
            job = self.fake.jobs.get(body.get("prompt_id", ""))
            if job is not None and not job.output:
                job.stopped_by = job.stopped_by or "interrupt"
            self._send(200, b"", content_type="text/plain")
        elif path == "/queue":
            for prompt_id in body.get("delete") or []:
                self.fake.deletes.append(prompt_id)
                job = self.fake.jobs.get(prompt_id)
                if job is not None and not job.stopped_by:
                    job.stopped_by = "delete"
            self._send(200, b"", content_type="text/plain")
        elif path == "/prompt":
            self._prompt(body)
        else:
            self._send(404, b"404: Not Found", content_type="text/plain")

    def _prompt(self, body: dict) -> None:
        self.fake.submitted.append(body)
        workflow = body.get("prompt")
        if not isinstance(workflow, dict):
            self._json(
                400,
                {
                    "error": {
                        "type": "no_prompt",
                        "message": "No prompt provided",
                        "details": "",
                        "extra_info": {},
                    },
                    "node_errors": {},
                },
            )
            return
        text = json.dumps(workflow)
        match = FAULT.search(text)
        scenario = match.group(1) if match else "ok"
        if scenario == "500":
            self._send(500, b"500 Internal Server Error", content_type="text/plain")
            return
        node_errors = _validate(workflow, self.fake.uploads)
        if scenario in ("node_errors", "partial_node_errors"):
            loader = next(
                (i for i, n in workflow.items() if n["class_type"] == "CheckpointLoaderSimple"),
                "1",
            )
            node_errors[loader] = _node_error(
                "CheckpointLoaderSimple",
                "Value not in list",
                "ckpt_name: 'sd_xl_turbo_1.0_fp16.safetensors' not in "
                "['v1-5-pruned-emaonly.safetensors']",
                "ckpt_name",
            )
        if node_errors and scenario != "partial_node_errors":
            self._json(
                400,
                {
                    "error": {
                        "type": "prompt_outputs_failed_validation",
                        "message": "Prompt outputs failed validation",
                        "details": "",
                        "extra_info": {},
                    },
                    "node_errors": node_errors,
                },
            )
            return
        job = self.fake.queue(workflow, scenario)
        self._json(
            200,
            {"prompt_id": job.prompt_id, "number": len(self.fake.jobs), "node_errors": node_errors},
        )


def _validate(workflow: dict, uploads: dict) -> dict:
    """ComfyUI-style node_errors for what this fake can check."""
    errors: dict = {}
    for node_id, node in workflow.items():
        class_type = node.get("class_type", "?")
        for name, value in (node.get("inputs") or {}).items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in workflow:
                errors[node_id] = _node_error(
                    class_type, "Required input is missing", f"{name}: node {value[0]}", name
                )
            elif isinstance(value, str) and UNFILLED.search(value):
                errors[node_id] = _node_error(
                    class_type, "Failed to convert an input value", f"{name}: {value!r}", name
                )
        if class_type == "LoadImage" and node["inputs"].get("image") not in uploads:
            errors[node_id] = _node_error(
                class_type,
                "Custom validation failed for node",
                f"image - Invalid image file: {node['inputs'].get('image')}",
                "image",
            )
    return errors


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8188)
    arguments = parser.parse_args()
    fake = FakeComfyUI().start(arguments.port)
    print(f"Fake ComfyUI on {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
