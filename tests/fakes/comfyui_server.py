"""A fake ComfyUI server on 127.0.0.1 that behaves as the real one does.

A real HTTP server in a thread (so a Celery worker in another process can use
it through COMFYUI_URL), with one "GPU": a single executor thread that runs
the queued prompts one at a time, lowest `number` first, for `run_seconds`
each. Every behaviour below names where ComfyUI does the same (its
server.py, execution.py and main.py):

- `POST /prompt` validates the whole graph, queues only the outputs that
  validated, and answers `{prompt_id, number, node_errors}`; HTTP 400 with
  `error` and `node_errors` when no output validated, and
  `missing_node_type` for a class it does not have (execution.py,
  validate_prompt / validate_inputs; server.py, post_prompt).
- `GET /history/{id}` answers `200 {}` for an unknown id exactly as for a
  pending or running one; the entry appears when the prompt ends
  (server.py, get_history; execution.py, PromptQueue.get_history/task_done).
- `GET /queue` lists `queue_running` and `queue_pending` as
  `[number, prompt_id, prompt, extra_data, outputs_to_execute]`
  (server.py, get_queue; execution.py, PromptQueue.get_current_queue).
- `POST /queue {"delete": [...]}` removes pending prompts only; a running
  one keeps running (execution.py, PromptQueue.delete_queue_item).
- `POST /interrupt`: from 0.3.57 a `prompt_id` in the body stops only that
  prompt if it is the one running; before, and without an id, it stops
  whatever runs, other clients' prompts too (server.py, post_interrupt).
- `GET /ws?clientId=…` sends `status` on connect and when the queue changes,
  and to the prompt's client `execution_start`, `execution_cached`,
  `executing` per node, `executed` per output node, then
  `execution_success` (or `execution_error` / `execution_interrupted`) and
  last `executing` with node null, after the history entry is written
  (server.py, websocket_handler / send_sync; execution.py,
  PromptExecutor.execute; main.py, prompt_worker).
- `GET /system_stats` carries `system.comfyui_version` (server.py,
  system_stats); `GET /object_info/{class}` the class's inputs, `{}` for an
  unknown class (server.py, get_object_info_node).
- `POST /upload/image` stores into input or temp by `type`; LoadImage takes
  `name [temp]` for a temp file (server.py, image_upload; folder_paths,
  annotated_filepath). SaveImage writes to output, PreviewImage to temp.
- `POST /upload/mask` writes the image `original_ref` names again under the
  upload's name, with the uploaded PNG's alpha; with no such image it writes
  nothing and still answers 200, and a mask of another size fails in PIL's
  putalpha, a 500 (server.py, upload_mask).
- `restart(down_seconds)`: the server goes away (connections refused),
  forgets its queue, running prompt and history, empties its temp folder,
  and answers again after `down_seconds` (queue and history live in memory:
  execution.py PromptQueue; temp is wiped at start: main.py cleanup_temp).
  Files in output and input stay on disk.

What a job does at run time is chosen by a `[fault:NAME]` in any text input:

- node_errors: the server refuses the checkpoint at POST /prompt (HTTP 400),
  although /object_info listed it (a model deleted in between);
- execution_error: KSampler fails with out of memory, a multi-line message
  with the server's paths and a traceback;
- interrupted_elsewhere: someone at the server interrupts it;
- no_output: the job ends "success" with no images;
- slow: the job runs until it is interrupted or the server restarts;
- 500: `POST /prompt` answers HTTP 500.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import random
import re
import socket
import string
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from tests.fakes.gemini_server import png
from tests.fakes.local_server import LocalServer, QuietHandler
from tests.fakes.openai_server import Part, parse_multipart

FAULT = re.compile(r"\[fault:([a-z_0-9]+)\]")
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
INTERRUPT_BY_ID_SINCE = (0, 3, 57)

# The built-in classes the shipped workflows and the bench use, with the
# inputs ComfyUI's nodes.py declares for them (INPUT_TYPES). A list is a
# combo: the value must be one of its items.
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"]
SCHEDULERS = ["normal", "karras", "exponential", "simple"]
UPSCALE = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CLASSES: dict[str, dict] = {
    "CheckpointLoaderSimple": {"required": {"ckpt_name": "CHECKPOINTS"}},
    "CLIPTextEncode": {"required": {"text": "STRING", "clip": "CLIP"}},
    "EmptyLatentImage": {"required": {"width": "INT", "height": "INT", "batch_size": "INT"}},
    "EmptyImage": {
        "required": {"width": "INT", "height": "INT", "batch_size": "INT", "color": "INT"}
    },
    "KSampler": {
        "required": {
            "model": "MODEL",
            "seed": "INT",
            "steps": "INT",
            "cfg": "FLOAT",
            "sampler_name": SAMPLERS,
            "scheduler": SCHEDULERS,
            "positive": "CONDITIONING",
            "negative": "CONDITIONING",
            "latent_image": "LATENT",
            "denoise": "FLOAT",
        }
    },
    "VAEDecode": {"required": {"samples": "LATENT", "vae": "VAE"}},
    "VAEEncode": {"required": {"pixels": "IMAGE", "vae": "VAE"}},
    "ImageScale": {
        "required": {
            "image": "IMAGE",
            "upscale_method": UPSCALE,
            "width": "INT",
            "height": "INT",
            "crop": ["disabled", "center"],
        }
    },
    "LoadImage": {"required": {"image": "INPUT_FILES"}},
    "VAEEncodeForInpaint": {
        "required": {"pixels": "IMAGE", "vae": "VAE", "mask": "MASK", "grow_mask_by": "INT"}
    },
    "ImageCompositeMasked": {
        "required": {
            "destination": "IMAGE",
            "source": "IMAGE",
            "x": "INT",
            "y": "INT",
            "resize_source": "BOOLEAN",
        },
        "optional": {"mask": "MASK"},
    },
    "SaveImage": {"required": {"images": "IMAGE", "filename_prefix": "STRING"}},
    "PreviewImage": {"required": {"images": "IMAGE"}},
}
OUTPUT_NODES = {"SaveImage", "PreviewImage"}
SIZING = {"EmptyLatentImage", "EmptyImage", "ImageScale"}
PRIMITIVES = {"INT": int, "FLOAT": float, "STRING": str}  # validate_inputs converts with these


@dataclass
class Job:
    number: int
    prompt_id: str
    workflow: dict
    client_id: str
    outputs: list[str]  # the output nodes that validated: only these run
    scenario: str
    epoch: int
    stopped: threading.Event = field(default_factory=threading.Event)
    done: bool = False  # its nodes have run; history and the last events may still be on the way


@dataclass
class FakeComfyUI(LocalServer):
    run_seconds: float = 0.05
    version: str = "0.3.64"
    checkpoints: tuple[str, ...] = (
        "sd_xl_turbo_1.0_fp16.safetensors",
        "sd_xl_base_1.0.safetensors",
        "v1-5-pruned-emaonly.safetensors",
    )
    # What tests look at.
    uploads: dict[str, Part] = field(default_factory=dict)  # "name" or "name [temp]"
    mask_uploads: list[dict] = field(default_factory=list)  # POST /upload/mask: fields, image
    interrupts: list[dict] = field(default_factory=list)  # POST /interrupt bodies
    deletes: list[str] = field(default_factory=list)  # ids in POST /queue delete
    history_deletes: list[str] = field(default_factory=list)  # ids in POST /history delete
    submitted: list[dict] = field(default_factory=list)  # POST /prompt bodies
    paths: list[str] = field(default_factory=list)  # "METHOD /path" of every request
    executed: list[str] = field(default_factory=list)  # prompt ids that ran to the end
    stopped: list[str] = field(default_factory=list)  # prompt ids an interrupt stopped
    peak_queue: int = 0  # the most prompts pending or executing at once

    def __post_init__(self):
        self._lock = threading.Condition()
        self._epoch = 0
        self._number = 0
        self._counter = 0
        self.pending: list[Job] = []
        self.running: Job | None = None
        self.history: dict[str, dict] = {}
        self.files: dict[tuple[str, str], bytes] = {}  # (type, name) -> bytes
        self._sockets: dict[str, _Socket] = {}
        self._connections: set[socket.socket] = set()
        self._port = 0
        threading.Thread(target=self._execute_forever, daemon=True).start()

    def handler_class(self):
        return _Handler

    def start(self, port: int = 0):
        super().start(port or self._port)
        self._port = self._server.server_address[1]
        return self

    def reset(self) -> None:
        with self._lock:
            self._forget()
            self.files.clear()
            self.peak_queue = 0
            for log in (
                self.uploads,
                self.mask_uploads,
                self.interrupts,
                self.deletes,
                self.history_deletes,
                self.submitted,
                self.paths,
                self.executed,
                self.stopped,
            ):
                log.clear()

    def _forget(self) -> None:
        """What a ComfyUI process loses when it ends (call with the lock held)."""
        self._epoch += 1
        if self.running is not None:
            self.running.stopped.set()
        self.running = None
        self.pending.clear()
        self.history.clear()
        for key in [key for key in self.files if key[0] == "temp"]:
            del self.files[key]
        for name in [name for name in self.uploads if name.endswith(" [temp]")]:
            del self.uploads[name]
        self._lock.notify_all()

    def stop(self) -> None:
        """Go away as a process does: open connections and websockets end too."""
        super().stop()
        with self._lock:
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._sockets.clear()

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop answering, forget the queue, and come back after `down_seconds`."""
        self.stop()
        with self._lock:
            self._forget()
        if down_seconds:
            timer = threading.Timer(down_seconds, self.start)
            timer.daemon = True
            timer.start()
        else:
            self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"  # the same while it restarts

    @property
    def old_interrupt(self) -> bool:
        return _version(self.version) < INTERRUPT_BY_ID_SINCE

    # --- the queue and the GPU ----------------------------------------------------------

    def put(self, workflow: dict, client_id: str, outputs: list[str], scenario: str) -> Job:
        with self._lock:
            self._number += 1
            job = Job(
                self._number, str(uuid.uuid4()), workflow, client_id, outputs, scenario, self._epoch
            )
            self.pending.append(job)
            executing = 1 if self.running and not self.running.done else 0
            self.peak_queue = max(self.peak_queue, len(self.pending) + executing)
            self._lock.notify_all()
        self._broadcast_status()
        return job

    def queue_lists(self) -> tuple[list, list]:
        with self._lock:
            running = [self._row(self.running)] if self.running else []
            return running, [self._row(job) for job in self.pending]

    @staticmethod
    def _row(job: Job) -> list:
        return [job.number, job.prompt_id, job.workflow, {"client_id": job.client_id}, job.outputs]

    def _execute_forever(self) -> None:
        while True:
            with self._lock:
                while not self.pending:
                    self._lock.wait()
                job = min(self.pending, key=lambda queued: queued.number)
                self.pending.remove(job)
                self.running = job
            self._broadcast_status()
            self._execute(job)
            with self._lock:
                if self.running is job:
                    self.running = None
            self._broadcast_status()

    def _execute(self, job: Job) -> None:
        began = time.monotonic()
        send = self._sender(job)
        messages = [_message("execution_start", job)]
        send("execution_start", messages[-1][1])
        send("execution_cached", {"nodes": [], **_stamp(job)})
        order = _order(job.workflow, job.outputs)
        for node_id in order:
            send(
                "executing", {"node": node_id, "display_node": node_id, "prompt_id": job.prompt_id}
            )
        runs = 3600.0 if job.scenario == "slow" else self.run_seconds
        # The "GPU" time is run_seconds from the start, whatever this fake spent.
        interrupted = job.stopped.wait(max(0.0, runs - (time.monotonic() - began)))
        if job.epoch != self._epoch:
            return  # the server restarted under it: no events, no history
        sampler = next((n for n in order if job.workflow[n]["class_type"] == "KSampler"), order[0])
        if interrupted or job.scenario == "interrupted_elsewhere":
            # execution.py: handle_execution_error with InterruptProcessingException
            data = {
                **_stamp(job),
                "node_id": sampler,
                "node_type": job.workflow[sampler]["class_type"],
                "executed": [],
            }
            self.stopped.append(job.prompt_id)
            self._finish(job, send, "error", [*messages, ["execution_interrupted", data]], {})
            return
        if job.scenario == "execution_error":
            data = {
                **_stamp(job),
                "node_id": sampler,
                "node_type": "KSampler",
                "executed": [],
                "exception_message": "Allocation on device 0 would exceed allowed memory. "
                "(out of memory)\nCurrently allocated     : 22.51 GiB\nRequested               "
                ": 1.50 GiB\nDevice limit            : 23.65 GiB\n"
                "Free (according to CUDA): 19.56 MiB",
                "exception_type": "torch.OutOfMemoryError",
                "traceback": [
                    '  File "/opt/ComfyUI/execution.py", line 496, in execute\n',
                    '  File "/opt/ComfyUI/comfy/samplers.py", line 1151, in sample\n',
                ],
                "current_inputs": {},
                "current_outputs": [],
            }
            self._finish(job, send, "error", [*messages, ["execution_error", data]], {})
            return
        outputs = {}
        if job.scenario != "no_output":
            for node_id in job.outputs:
                images = [self._save(job, node_id)]
                outputs[node_id] = {"images": images}
                send(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": {"images": images},
                        "prompt_id": job.prompt_id,
                    },
                )
        success = ["execution_success", _stamp(job)]
        job.done = True
        self.executed.append(job.prompt_id)  # before a client can hear of it
        send(*success)  # execution.py sends it before the history entry exists
        self._finish(job, send, "success", [*messages, success], outputs)

    def _finish(self, job: Job, send, status: str, messages: list, outputs: dict) -> None:
        job.done = True
        if status == "error":
            send(*messages[-1])
        with self._lock:
            if job.epoch != self._epoch:
                return
            if self.running is job:
                self.running = None  # execution.py task_done: out of the queue, into history
            self.history[job.prompt_id] = {
                "prompt": self._row(job),
                "outputs": outputs,
                "status": {
                    "status_str": status,
                    "completed": status == "success",
                    "messages": messages,
                },
                "meta": {node_id: {"node_id": node_id} for node_id in outputs},
            }
        # main.py prompt_worker: after task_done wrote the history
        send("executing", {"node": None, "prompt_id": job.prompt_id})

    def _save(self, job: Job, node_id: str) -> dict:
        node = job.workflow[node_id]
        width, height = _output_size(job.workflow, node_id)
        with self._lock:
            self._counter += 1
            counter = self._counter
        if node["class_type"] == "PreviewImage":
            # nodes.py PreviewImage: temp folder, a random prefix
            letters = "".join(random.choices(string.ascii_lowercase, k=5))
            kind, subfolder, name = "temp", "", f"ComfyUI_temp_{letters}_{counter:05d}_.png"
        else:
            prefix = str(node["inputs"].get("filename_prefix") or "ComfyUI")
            subfolder, _, base = prefix.rpartition("/")
            kind, name = "output", f"{base}_{counter:05d}_.png"
        data = _image(width, height, json.dumps(job.workflow, sort_keys=True))
        with self._lock:
            self.files[(kind, f"{subfolder}/{name}" if subfolder else name)] = data
        return {"filename": name, "subfolder": subfolder, "type": kind}

    def file(self, kind: str, subfolder: str, name: str) -> bytes | None:
        with self._lock:
            return self.files.get((kind, f"{subfolder}/{name}" if subfolder else name))

    def interrupt(self, prompt_id: str | None) -> None:
        with self._lock:
            running = self.running
        if running is None:
            return
        if prompt_id and not self.old_interrupt and running.prompt_id != prompt_id:
            return  # server.py post_interrupt (0.3.57+): not the running prompt, nothing to do
        running.stopped.set()

    # --- the websocket ------------------------------------------------------------------

    def _sender(self, job: Job):
        def send(kind: str, data: dict) -> None:
            if job.epoch != self._epoch:
                return
            with self._lock:
                target = self._sockets.get(job.client_id)
            if target is not None:
                target.send({"type": kind, "data": data})

        return send

    def _broadcast_status(self) -> None:
        with self._lock:
            remaining = len(self.pending) + (1 if self.running else 0)
            sockets = list(self._sockets.values())
        for target in sockets:
            target.send({"type": "status", "data": {"status": _status(remaining)}})

    def queue_remaining(self) -> int:
        with self._lock:
            return len(self.pending) + (1 if self.running else 0)


@functools.lru_cache(maxsize=32)
def _with_alpha(original: bytes, mask: bytes) -> bytes:
    """server.py upload_mask: the original as RGBA with the mask's alpha channel."""
    with Image.open(io.BytesIO(original)) as image, Image.open(io.BytesIO(mask)) as alpha:
        copy = image.convert("RGBA")
        copy.putalpha(alpha.convert("RGBA").getchannel("A"))
    out = io.BytesIO()
    copy.save(out, "PNG")
    return out.getvalue()


def _image(width: int, height: int, seed_text: str) -> bytes:
    return png(width, height, seed_text)  # the same workflow draws the same image


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0)


def _status(remaining: int) -> dict:
    return {"exec_info": {"queue_remaining": remaining}}


def _stamp(job: Job) -> dict:
    return {"prompt_id": job.prompt_id, "timestamp": int(time.time() * 1000)}


def _message(kind: str, job: Job) -> list:
    return [kind, _stamp(job)]


def _links(node: dict) -> list[str]:
    return [
        str(value[0])
        for value in (node.get("inputs") or {}).values()
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
    ]


def _ancestors(workflow: dict, node_id: str) -> list[str]:
    seen: list[str] = []
    stack = [node_id]
    while stack:
        current = stack.pop()
        if current in seen or current not in workflow:
            continue
        seen.append(current)
        stack.extend(_links(workflow[current]))
    return seen


def _order(workflow: dict, outputs: list[str]) -> list[str]:
    order: list[str] = []
    for output in outputs:
        for node_id in reversed(_ancestors(workflow, output)):
            if node_id not in order:
                order.append(node_id)
    return order or list(workflow)[:1]


def _output_size(workflow: dict, output: str) -> tuple[int, int]:
    size = (512, 512)
    for node_id in _ancestors(workflow, output):  # nearest sizing node upstream wins
        inputs = workflow[node_id].get("inputs") or {}
        if workflow[node_id]["class_type"] in SIZING and isinstance(inputs.get("width"), int):
            return inputs["width"], inputs["height"]
    return size


def _reason(kind: str, message: str, details: str, input_name: str) -> dict:
    return {
        "type": kind,
        "message": message,
        "details": details,
        "extra_info": {"input_name": input_name},
    }


def _node_error(class_type: str, reasons: list[dict], outputs: list[str]) -> dict:
    return {"errors": reasons, "dependent_outputs": outputs, "class_type": class_type}


def validate(fake: FakeComfyUI, workflow: dict) -> tuple[dict | None, list[str], dict]:
    """ComfyUI's validate_prompt: (error, outputs that validated, node_errors)."""
    for node_id, node in workflow.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type not in CLASSES:
            # execution.py validate_prompt, as 0.3.64 words it
            return (
                {
                    "type": "missing_node_type",
                    "message": f"Cannot execute because node {class_type} does not exist.",
                    "details": f"Node ID '#{node_id}'",
                    "extra_info": {},
                },
                [],
                {},
            )
    outputs = [node_id for node_id, node in workflow.items() if node["class_type"] in OUTPUT_NODES]
    if not outputs:
        error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": ""}
        return {**error, "extra_info": {}}, [], {}
    good, node_errors = [], {}
    for output in outputs:
        failed = False
        for node_id in _ancestors(workflow, output):
            reasons = _check_inputs(fake, workflow, workflow[node_id])
            if reasons:
                failed = True
                entry = node_errors.setdefault(
                    node_id, _node_error(workflow[node_id]["class_type"], reasons, [])
                )
                entry["dependent_outputs"].append(output)
        if not failed:
            good.append(output)
    if not good:
        details = "\n".join(
            f"{reason['message']}: {reason['details']}"
            for entry in node_errors.values()
            for reason in entry["errors"]
        )
        error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }
        return error, [], node_errors
    return None, good, node_errors


def _check_inputs(fake: FakeComfyUI, workflow: dict, node: dict) -> list[dict]:
    """execution.py validate_inputs, for the input kinds this fake knows."""
    reasons = []
    inputs = node.get("inputs") or {}
    for name, kind in CLASSES[node["class_type"]]["required"].items():
        if name not in inputs:
            reasons.append(
                _reason("required_input_missing", "Required input is missing", name, name)
            )
            continue
        value = inputs[name]
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
            if str(value[0]) not in workflow:
                reasons.append(
                    _reason("bad_linked_input", "Bad linked input", f"{name}: {value}", name)
                )
            continue
        if kind == "CHECKPOINTS":
            kind = list(fake.checkpoints)
        if kind == "INPUT_FILES":
            # nodes.py LoadImage.VALIDATE_INPUTS: the file must exist (input, or "[temp]")
            if value not in fake.uploads:
                reasons.append(
                    _reason(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        f"image - Invalid image file: {value}",
                        name,
                    )
                )
        elif isinstance(kind, list):
            if value not in kind:
                reasons.append(
                    _reason(
                        "value_not_in_list",
                        "Value not in list",
                        f"{name}: '{value}' not in {kind}",
                        name,
                    )
                )
        elif kind in PRIMITIVES and not _converts(PRIMITIVES[kind], value):
            reasons.append(
                _reason(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {kind} value",
                    f"{name}, {value!r}",
                    name,
                )
            )
    return reasons


def _converts(kind, value) -> bool:
    try:
        kind(value)
    except (TypeError, ValueError):
        return False
    return True


def object_info(fake: FakeComfyUI, class_type: str) -> dict:
    """server.py node_info for one class: `input.required` as [type, options] or [[combo]]."""
    if class_type not in CLASSES:
        return {}
    required = {}
    for name, kind in CLASSES[class_type]["required"].items():
        if kind == "CHECKPOINTS":
            required[name] = [list(fake.checkpoints), {}]
        elif kind == "INPUT_FILES":
            files = sorted(n for n in fake.uploads if not n.endswith(" [temp]"))
            required[name] = [files, {"image_upload": True}]
        elif isinstance(kind, list):
            required[name] = [kind, {}]
        else:
            required[name] = [kind, {}]
    optional = {name: [kind, {}] for name, kind in CLASSES[class_type].get("optional", {}).items()}
    inputs, order = {"required": required}, {"required": list(required)}
    if optional:
        inputs["optional"], order["optional"] = optional, list(optional)
    return {
        class_type: {
            "input": inputs,
            "input_order": order,
            "output_node": class_type in OUTPUT_NODES,
            "name": class_type,
            "display_name": class_type,
            "python_module": "nodes",
        }
    }


class _Socket:
    """One websocket client: unmasked text frames out, a lock so threads do not interleave."""

    def __init__(self, connection: socket.socket):
        self.connection = connection
        self.lock = threading.Lock()

    def send(self, message: dict, opcode: int = 0x1) -> None:
        payload = json.dumps(message).encode() if isinstance(message, dict) else message
        head = bytes([0x80 | opcode])
        if len(payload) < 126:
            head += bytes([len(payload)])
        elif len(payload) < 65536:
            head += bytes([126]) + struct.pack(">H", len(payload))
        else:
            head += bytes([127]) + struct.pack(">Q", len(payload))
        try:
            with self.lock:
                self.connection.sendall(head + payload)
        except OSError:
            pass  # the client went away; ComfyUI logs "send error" and goes on


class _Handler(QuietHandler):
    fake: FakeComfyUI

    def setup(self):
        super().setup()
        # aiohttp, ComfyUI's server, sends without Nagle's delay (tcp_nodelay);
        # without it a header write and a body write wait ~40 ms for an ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self):
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data).encode())

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        split = urlsplit(self.path)
        path = split.path.removeprefix("/api") if split.path.startswith("/api/") else split.path
        query = parse_qs(split.query)
        self.fake.paths.append(f"GET {path}")
        if path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket((query.get("clientId") or [""])[0])
        elif path.startswith("/history/"):
            prompt_id = path.removeprefix("/history/")
            with self.fake._lock:
                entry = self.fake.history.get(prompt_id)
            self._json(200, {prompt_id: entry} if entry else {})
        elif path == "/queue":
            running, pending = self.fake.queue_lists()
            self._json(200, {"queue_running": running, "queue_pending": pending})
        elif path == "/system_stats":
            self._json(
                200,
                {
                    "system": {
                        "os": "posix",
                        "ram_total": 67430649856,
                        "ram_free": 60000000000,
                        "comfyui_version": self.fake.version,
                        "python_version": "3.12.3",
                        "pytorch_version": "2.8.0+cu128",
                        "embedded_python": False,
                        "argv": ["main.py", "--listen"],
                    },
                    "devices": [
                        {
                            "name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
                            "type": "cuda",
                            "index": 0,
                            "vram_total": 25393692672,
                            "vram_free": 24000000000,
                            "torch_vram_total": 0,
                            "torch_vram_free": 0,
                        }
                    ],
                },
            )
        elif path.startswith("/object_info/"):
            self._json(200, object_info(self.fake, path.removeprefix("/object_info/")))
        elif path == "/view":
            first = {key: values[0] for key, values in query.items()}
            data = self.fake.file(
                first.get("type", "output"), first.get("subfolder", ""), first.get("filename", "")
            )
            if data is None:
                self._send(404, b"404: Not Found", content_type="text/plain")
            else:
                self._send(200, data, content_type="image/png")
        else:
            self._send(404, b"404: Not Found", content_type="text/plain")

    def do_POST(self):
        split = urlsplit(self.path)
        path = split.path.removeprefix("/api") if split.path.startswith("/api/") else split.path
        self.fake.paths.append(f"POST {path}")
        raw = self._body()
        if path == "/upload/image":
            fields, parts = parse_multipart(self.headers.get("Content-Type", ""), raw)
            images = [part for part in parts if part.name == "image"]
            if not images:
                self._send(400, b"", content_type="text/plain")
                return
            image = images[0]
            kind = fields.get("type") or "input"
            key = f"{image.filename} [temp]" if kind == "temp" else image.filename
            self.fake.uploads[key] = image
            with self.fake._lock:
                self.fake.files[(kind, image.filename)] = image.data
            self._json(200, {"name": image.filename, "subfolder": "", "type": kind})
            return
        if path == "/upload/mask":
            self._upload_mask(raw)
            return
        body = json.loads(raw or b"{}")
        if path == "/interrupt":
            self.fake.interrupts.append(body)
            self.fake.interrupt(None if self.fake.old_interrupt else body.get("prompt_id"))
            self._send(200, b"", content_type="text/plain")
        elif path == "/queue":
            with self.fake._lock:
                for prompt_id in body.get("delete") or []:
                    self.fake.deletes.append(prompt_id)
                    self.fake.pending = [
                        job for job in self.fake.pending if job.prompt_id != prompt_id
                    ]
            self.fake._broadcast_status()
            self._send(200, b"", content_type="text/plain")
        elif path == "/history":
            with self.fake._lock:
                for prompt_id in body.get("delete") or []:
                    self.fake.history_deletes.append(prompt_id)
                    self.fake.history.pop(prompt_id, None)
            self._send(200, b"", content_type="text/plain")
        elif path == "/prompt":
            self._prompt(body)
        else:
            self._send(404, b"404: Not Found", content_type="text/plain")

    def _upload_mask(self, raw: bytes) -> None:
        fields, parts = parse_multipart(self.headers.get("Content-Type", ""), raw)
        images = [part for part in parts if part.name == "image"]
        if not images or "original_ref" not in fields:
            self._send(400, b"", content_type="text/plain")
            return
        mask, original_ref = images[0], json.loads(fields["original_ref"])
        kind = fields.get("type") or "input"
        self.fake.mask_uploads.append({"fields": fields, "image": mask})
        with self.fake._lock:
            original = self.fake.files.get(
                (original_ref.get("type", "output"), original_ref["filename"])
            )
        if original is not None:
            try:
                data = _with_alpha(original, mask.data)
            except ValueError:  # PIL putalpha: "images do not match"
                self._send(500, b"500 Internal Server Error", content_type="text/plain")
                return
            key = f"{mask.filename} [temp]" if kind == "temp" else mask.filename
            self.fake.uploads[key] = Part("image", mask.filename, "image/png", data)
            with self.fake._lock:
                self.fake.files[(kind, mask.filename)] = data
        self._json(200, {"name": mask.filename, "subfolder": "", "type": kind})

    def _prompt(self, body: dict) -> None:
        self.fake.submitted.append(body)
        workflow = body.get("prompt")
        if not isinstance(workflow, dict):
            error = {"type": "no_prompt", "message": "No prompt provided", "details": ""}
            self._json(400, {"error": {**error, "extra_info": {}}, "node_errors": {}})
            return
        match = FAULT.search(json.dumps(workflow))
        scenario = match.group(1) if match else "ok"
        if scenario == "500":
            self._send(500, b"500 Internal Server Error", content_type="text/plain")
            return
        error, outputs, node_errors = validate(self.fake, workflow)
        if scenario == "node_errors" and error is None:
            loader = next(
                (i for i, n in workflow.items() if n["class_type"] == "CheckpointLoaderSimple"),
                "1",
            )
            value = workflow.get(loader, {}).get("inputs", {}).get("ckpt_name")
            reason = _reason(
                "value_not_in_list",
                "Value not in list",
                f"ckpt_name: '{value}' not in ['v1-5-pruned-emaonly.safetensors']",
                "ckpt_name",
            )
            node_errors = {loader: _node_error("CheckpointLoaderSimple", [reason], outputs)}
            error = {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": f"{reason['message']}: {reason['details']}",
                "extra_info": {},
            }
        if error is not None:
            self._json(400, {"error": error, "node_errors": node_errors})
            return
        job = self.fake.put(workflow, str(body.get("client_id") or ""), outputs, scenario)
        self._json(
            200, {"prompt_id": job.prompt_id, "number": job.number, "node_errors": node_errors}
        )

    def _websocket(self, client_id: str) -> None:
        """server.py websocket_handler: an id per client, status first, then the events."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.close_connection = True
        sid = client_id or uuid.uuid4().hex
        target = _Socket(self.connection)
        with self.fake._lock:
            self.fake._sockets[sid] = target  # reusing an id replaces the old socket
        target.send(
            {"type": "status", "data": {"status": _status(self.fake.queue_remaining()), "sid": sid}}
        )
        try:
            for opcode, payload in _frames(self.rfile):
                if opcode == 0x8:  # close: answer it, then end
                    target.send(payload, opcode=0x8)
                    return
                if opcode == 0x9:  # ping
                    target.send(payload, opcode=0xA)
        finally:
            with self.fake._lock:
                if self.fake._sockets.get(sid) is target:
                    del self.fake._sockets[sid]


def _frames(stream):
    """Client frames (RFC 6455, section 5.2): (opcode, unmasked payload) until EOF."""
    while True:
        try:
            head = stream.read(2)
            if len(head) < 2:
                return
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", stream.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", stream.read(8))[0]
            mask = stream.read(4) if head[1] & 0x80 else b""
            payload = stream.read(length)
        except (OSError, struct.error):
            return
        if mask:
            payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        yield head[0] & 0x0F, payload


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--run-seconds", type=float, default=0.05)
    parser.add_argument("--version", default="0.3.64")
    arguments = parser.parse_args()
    fake = FakeComfyUI(run_seconds=arguments.run_seconds, version=arguments.version)
    fake.start(arguments.port)
    print(f"Fake ComfyUI on {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
