"""A studio's own GPUs through ComfyUI's HTTP API and websocket.

Each tier runs an API-format workflow template (a JSON file exported with
"Save (API Format)"; see docs/BACKENDS.md for the placeholders) on one of
the lane's servers (`COMFYUI_FLASH_URLS` / `COMFYUI_PRO_URLS`). One render:

1. take a slot on the least busy up server of the lane (comfyui_pool: a
   count per server shared by every worker through Redis);
2. load the template, leave out the branches that need references the
   request lacks, fill the placeholders, and check the whole graph against
   the server's own node classes (`GET /object_info/{class}`) before
   anything is queued: ComfyUI would otherwise run the outputs that
   validated and only report the others;
3. upload the references it uses into ComfyUI's temp folder
   (`POST /upload/image`, `type=temp`, named `name [temp]` in LoadImage) and
   queue it: `POST /prompt` with `{"prompt", "client_id"}`; SaveImage nodes
   become PreviewImage, so the outputs go to temp too (ComfyUI empties temp
   each time it starts; Contact Sheet keeps its own copy of every image);
4. learn of the end from the websocket (comfyui_servers), asking
   `GET /history/{id}` and `GET /queue` as the fallback and every few
   seconds: `/history/{id}` answers `200 {}` for a prompt that is running
   and for one the server has forgotten alike, so a prompt in neither the
   history nor the queue is lost (deleted at the server, or a restart) and
   is queued again;
5. fetch the image (`GET /view`), free the slot, drop the history entry.

A server that stops answering is waited for by time, `COMFYUI_OUTAGE_MINUTES`
(other servers of the lane take the job meanwhile), and the job is queued
again on the first that answers. A cancel, the deadline or any early end
takes the prompt off the queue and interrupts it: with `{"prompt_id"}` on
ComfyUI 0.3.57 and later, which stops only that prompt; older servers stop
whatever runs on any `/interrupt`, so there it is sent only while `/queue`
shows our prompt running. Routes and shapes follow ComfyUI's server.py,
execution.py and main.py.

A region edit (a request with a mask) runs the inpainting template
(`COMFYUI_INPAINT_WORKFLOW`) instead of the tier's: the image to edit goes up
with `/upload/image`, then the mask with `/upload/mask`, which (server.py,
upload_mask) writes the image it names in `original_ref` again with the
mask's alpha, transparent where it may change, as ComfyUI's own mask editor
does; LoadImage gives that file's MASK. `{{source}}` names the image,
`{{mask}}` the masked copy, and `{{prompt}}` is the instruction (what goes in
the painted area).

Any other edit or variation runs the img2img template
(`COMFYUI_IMG2IMG_WORKFLOW`): the image goes up with `/upload/image` as
`{{source}}`, and `{{denoise}}` says how much of it may change (DENOISE).
SD-class models follow a description rather than an instruction, so an
edit's `{{prompt}}` is the image's prompt with the instruction after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from pathlib import Path

import httpx

from generation import catalog
from generation.imaging import mask_with_alpha

from .base import (
    CanceledError,
    PermanentError,
    RenderRequest,
    RenderResult,
    TransientError,
)
from .comfyui_pool import ALL_DOWN, ServerPool, Slot
from .comfyui_servers import ComfyUIServer, PromptEvents, server_for
from .wire import client_timeout, sniff_mime_type, verified_mime_type

log = logging.getLogger(__name__)

# `{{name}}` anywhere in a string input. A string that is exactly one
# placeholder becomes the value itself (a number for seed, width and height);
# inside longer text it is replaced as text.
PLACEHOLDER = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")
REFERENCE = re.compile(r"^reference_([1-9][0-9]*)$")
VALUES = ("prompt", "negative_prompt", "seed", "width", "height", "base_width", "base_height")
REGION_VALUES = ("source", "mask")  # the inpainting template's, for a region edit
# How much of the image the sampler may change: an edit keeps the layout and
# changes what the words name; subtle keeps the composition, strong the idea.
DENOISE = {"edit": 0.55, "subtle": 0.35, "strong": 0.75}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}

DEFAULT_DEADLINE = 360.0  # seconds for one prompt on a server, its queue wait included
DEFAULT_OUTAGE = 300.0  # seconds a render waits for an unreachable server
CHECK_SECONDS = 5.0  # how often a running prompt is looked for in the history and queue
MAX_REQUEUES = 3  # lost prompts queued again before the render gives up for this attempt
REQUEST_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# Stopping a prompt happens after the deadline too (that is often why): briefly.
STOP_TIMEOUT = httpx.Timeout(2.0)


class ServerGone(Exception):
    """The server stopped answering while it had our prompt."""


class PromptLost(Exception):
    """The server has the prompt neither in its history nor in its queue."""


class ComfyUIProvider:
    name = "comfyui"
    label = "ComfyUI (studio GPUs)"

    def __init__(
        self,
        *,
        workflows: dict[str, str | Path],
        inpaint_workflow: str | Path = "",
        img2img_workflow: str | Path = "",
        url: str = "",
        servers: dict[str, list[str]] | None = None,
        redis_url: str = "",
        slots_per_server: int = 1,
        outage_seconds: float = DEFAULT_OUTAGE,
        keep_outputs: bool = False,
        poll_seconds: float = 1.0,
        check_seconds: float = CHECK_SECONDS,
        deadline: float = DEFAULT_DEADLINE,
        timeout: float | httpx.Timeout | None = None,
    ):
        if servers is None:
            address = url or "http://127.0.0.1:8188"
            servers = {tier: [address] for tier in catalog.TIERS}
        self.servers = {
            tier: [address.rstrip("/") for address in addresses]
            for tier, addresses in servers.items()
        }
        self.workflows = {tier: Path(path) for tier, path in workflows.items()}
        self.inpaint_workflow = Path(inpaint_workflow) if inpaint_workflow else None
        self.img2img_workflow = Path(img2img_workflow) if img2img_workflow else None
        if not redis_url:
            from django.conf import settings

            redis_url = settings.CELERY_BROKER_URL
        self.pool = ServerPool(redis_url, slots_per_server=slots_per_server)
        self.outage_seconds = outage_seconds
        self.keep_outputs = keep_outputs
        self.poll_seconds = poll_seconds
        self.check_seconds = check_seconds
        self.deadline = deadline
        self.timeout = client_timeout(timeout, default=REQUEST_TIMEOUT, connect=5.0)

    def render(self, request: RenderRequest) -> RenderResult:
        path = self.workflows[request.tier]
        if request.mask:
            if self.inpaint_workflow is None:
                raise PermanentError(
                    "This site's ComfyUI has no inpainting workflow, so it takes no mask. "
                    "Set COMFYUI_INPAINT_WORKFLOW, or edit without a mask.",
                )
            path = self.inpaint_workflow
        from_image = bool(request.source) and not request.mask and self.img2img_workflow
        if from_image:
            path = self.img2img_workflow
        template = load_workflow(path)
        workflow, used, unused = workflow_for_references(
            template, references=len(request.references), name=path.name
        )
        uploads = {number: _upload_name(request.references[number - 1]) for number in used}
        names = {number: f"{filename} [temp]" for number, (filename, _) in uploads.items()}
        values = placeholder_values(request, names)
        masked = None
        if request.mask:
            uploads["source"] = _upload_name(request.source)
            masked = _masked_upload(request, original=uploads["source"][0])
            values.update(
                prompt=request.instruction,
                source=f"{uploads['source'][0]} [temp]",
                mask=f"{masked[0]} [temp]",
            )
        elif from_image:
            uploads["source"] = _upload_name(request.source)
            values.update(
                prompt=f"{request.prompt}, {request.instruction}" if request.is_edit
                else request.prompt,
                source=f"{uploads['source'][0]} [temp]",
                denoise=DENOISE["edit" if request.is_edit else request.variation or "subtle"],
            )  # fmt: skip
        workflow = fill_placeholders(workflow, values=values, name=path.name)
        if not self.keep_outputs:
            workflow = with_temporary_outputs(workflow)
        urls = self.servers.get(request.tier) or []
        if not urls:
            raise PermanentError(
                f"No ComfyUI server is set for the {request.tier} lane: set "
                f"COMFYUI_{request.tier.upper()}_URLS (or COMFYUI_URL).",
            )
        job = _Job(self, request, workflow, name=path.name, uploads=uploads, masked=masked)
        image, prompt_id = job.run(urls)
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


class _Job:
    """One render's way through the lane's servers: slots, outages, lost prompts."""

    def __init__(
        self, provider: ComfyUIProvider, request, workflow: dict, *, name, uploads, masked=None
    ):
        self.provider = provider
        self.request = request
        self.workflow = workflow
        self.name = name
        self.uploads = uploads  # reference number (or "source") -> (filename, bytes)
        self.masked = masked  # a region edit's (filename, mask bytes, image's filename)
        self.started = time.monotonic()
        # The lane's own deadline for the render (its threads cannot be
        # killed), when it sets one: every wait and request ends before it.
        self.hard_deadline = request.deadline or math.inf
        self.give_up_at = min(self.started + provider.deadline, self.hard_deadline)
        self.unreachable_since: float | None = None
        self.unreachable: list[str] = []

    @property
    def timeout(self) -> httpx.Timeout:
        """The provider's request timeout, cut to what is left before the deadline."""
        remaining = self.hard_deadline - time.monotonic()
        if remaining <= 0:
            raise TransientError(
                "ComfyUI did not answer in time.",
                detail="the render's deadline passed while waiting for ComfyUI",
            )
        full = self.provider.timeout

        def cap(seconds: float | None) -> float:
            return remaining if seconds is None else min(seconds, remaining)

        return httpx.Timeout(
            connect=cap(full.connect), read=cap(full.read), write=cap(full.write),
            pool=cap(full.pool),
        )  # fmt: skip

    def run(self, urls: list[str]) -> tuple[bytes, str]:
        requeues = 0
        previous: tuple[str, str] | None = None  # (server, prompt id) it was last queued on
        while True:
            slot = self._slot(urls)
            server = server_for(slot.url)
            try:
                try:
                    if previous and previous[0] == slot.url:
                        # Back on the server that stopped answering: it may
                        # still have the prompt (a network blip, not a restart).
                        prompt_id = previous[1]
                        events = self._where(server, prompt_id)
                    else:
                        prompt_id, events = self._submit(server), None
                    previous = (slot.url, prompt_id)
                    self.unreachable_since = None
                    image_ref = self._follow(server, slot, prompt_id, events)
                    slot.release()  # the GPU is free; the download need not hold it
                    image = self._fetch(server, image_ref)
                except httpx.TransportError as error:
                    raise ServerGone(f"{type(error).__name__}: {error}")
            except ServerGone as gone:
                log.warning("ComfyUI server %s stopped answering: %s", slot.url, gone)
                self.provider.pool.mark_down(slot.url)
                self._lost_contact(slot.url)
                continue
            except PromptLost:
                requeues += 1
                log.warning(
                    "ComfyUI server %s lost prompt %s; queueing it again (%d)",
                    slot.url,
                    previous[1] if previous else "?",
                    requeues,
                )
                previous = None
                if requeues > MAX_REQUEUES:
                    raise TransientError(
                        f"The ComfyUI server at {slot.url} lost the job {requeues} times.",
                        detail="prompt in neither /history nor /queue",
                    )
                continue
            finally:
                slot.release()
            self._clean_up(server, prompt_id)
            return image, prompt_id

    # --- a slot on an up server -----------------------------------------------------------

    def _slot(self, urls: list[str]) -> Slot:
        pool = self.provider.pool
        while True:
            self._check_cancel(None, None)
            slot, why = pool.try_acquire(urls)
            if slot is not None:
                return slot
            now = time.monotonic()
            if why == ALL_DOWN:
                for url in urls:
                    self._lost_contact(url)
                if any(self._probe(url) for url in urls):
                    continue
                pool.wait_for_release(urls, min(0.5, self.provider.poll_seconds))
                continue
            if now >= self.give_up_at:
                raise TransientError(
                    f"The lane's ComfyUI servers stayed busy for {now - self.started:.0f} seconds.",
                    detail=f"no free slot on {', '.join(urls)}",
                )
            pool.wait_for_release(urls, min(1.0, self.give_up_at - now))

    def _lost_contact(self, url: str) -> None:
        """Count the outage from the first time no server answered; give up when it is spent."""
        now = time.monotonic()
        if self.unreachable_since is None:
            self.unreachable_since = now
        if url not in self.unreachable:
            self.unreachable.append(url)
        waited = now - self.unreachable_since
        if waited >= self.provider.outage_seconds:
            minutes = self.provider.outage_seconds / 60
            where = (
                f"The studio's ComfyUI server at {self.unreachable[0]}"
                if len(self.unreachable) == 1
                else f"None of the studio's ComfyUI servers ({', '.join(self.unreachable)})"
            )
            raise PermanentError(
                f"{where} did not answer for {_minutes(minutes)}, so the image was not "
                "rendered. Nothing was charged.",
                detail=f"unreachable for {waited:.0f} s (COMFYUI_OUTAGE_MINUTES)",
            )
        if now >= self.hard_deadline:
            raise TransientError(
                f"The studio's ComfyUI server at {self.unreachable[0]} has not answered for "
                f"{waited:.0f} seconds.",
                detail="the render's deadline came before COMFYUI_OUTAGE_MINUTES ran out",
            )
        # The outage budget is on top of the time a prompt may take.
        self.give_up_at = min(
            max(self.give_up_at, now + self.provider.deadline), self.hard_deadline
        )

    def _probe(self, url: str) -> bool:
        """Ask a down server whether it is back (one asker per server a second)."""
        pool = self.provider.pool
        if not pool.is_down(url):
            return True
        if not pool.claim_probe(url):
            return False
        try:
            server_for(url).http.get("/system_stats", timeout=httpx.Timeout(2.0))
        except httpx.TransportError:
            pool.mark_down(url)
            return False
        pool.mark_up(url)
        return True

    # --- one prompt on one server -------------------------------------------------------

    def _submit(self, server: ComfyUIServer) -> str:
        server.version(self.timeout)  # asked once every few minutes; _stop needs it
        self._validate(server)
        for filename, data in self.uploads.values():
            self._upload(server, filename, data)
        if self.masked:
            self._upload_mask(server, *self.masked)  # after the image it is applied to
        listening = server.listen(timeout=2.0)
        if not listening:
            log.info("ComfyUI websocket %s not connected; following by history", server.url)
        return self._queue(server)

    def _validate(self, server: ComfyUIServer) -> None:
        """Every node of the graph against the server's classes, before anything runs."""
        problems = self._problems(server, fresh=False)
        if problems and any(
            server.class_age(node["class_type"]) > 5 for node in self.workflow.values()
        ):
            problems = self._problems(server, fresh=True)  # a model may just have been added
        if problems:
            raise PermanentError(
                _refusal(self.name, problems), detail="; ".join(problems) + " (/object_info)"
            )

    def _problems(self, server: ComfyUIServer, *, fresh: bool) -> list[str]:
        problems = []
        classes: dict[str, dict | None] = {}
        references = {f"{filename} [temp]" for filename, _ in self.uploads.values()}
        if self.masked:
            references.add(f"{self.masked[0]} [temp]")
        for node_id, node in self.workflow.items():
            class_type = node["class_type"]
            if class_type not in classes:
                classes[class_type] = server.class_info(class_type, self.timeout, fresh=fresh)
            info = classes[class_type]
            if info is None:
                raise PermanentError(
                    _missing_class(self.name, server.url, node_id, class_type),
                    detail=f"GET /object_info/{class_type} answered {{}}",
                )
            spec = info.get("input") or {}
            required = spec.get("required") or {}
            known = {**(spec.get("optional") or {}), **required}
            inputs = node.get("inputs") or {}
            where = f"node {node_id} ({class_type})"
            for input_name in required:
                if input_name not in inputs:
                    problems.append(f"{where}: the input {input_name} is missing")
            for input_name, value in inputs.items():
                if _is_link(value) or input_name not in known:
                    continue
                if isinstance(value, str) and value in references:
                    continue  # uploaded just before queueing
                options = _options(known[input_name])
                if options is not None and value not in options:
                    shown = ", ".join(str(option) for option in options[:8])
                    more = f" and {len(options) - 8} more" if len(options) > 8 else ""
                    problems.append(
                        f"{where}: {input_name} {value!r} is not one this server has "
                        f"({shown}{more})"
                    )
                kind = known[input_name][0] if known[input_name] else None
                # ComfyUI converts as int() / float() do (execution.py validate_inputs).
                if kind == "INT" and not _converts(int, value):
                    problems.append(f"{where}: {input_name} must be a whole number, not {value!r}")
                if kind == "FLOAT" and not _converts(float, value):
                    problems.append(f"{where}: {input_name} must be a number, not {value!r}")
        return problems

    def _upload(self, server: ComfyUIServer, filename: str, data: bytes) -> None:
        mime_type = sniff_mime_type(data)
        response = server.http.post(
            "/upload/image",
            files={"image": (filename, data, mime_type)},
            data={"type": "temp", "overwrite": "true"},
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise _http_error(response, "store a reference image")

    def _upload_mask(self, server: ComfyUIServer, filename: str, data: bytes, original: str):
        # server.py upload_mask: the image named by original_ref is saved again as
        # `filename` with this PNG's alpha. It answers 200 even when it found no such
        # image (and writes nothing), so the image always goes up first.
        response = server.http.post(
            "/upload/mask",
            files={"image": (filename, data, "image/png")},
            data={
                "type": "temp",
                "overwrite": "true",
                "original_ref": json.dumps({"filename": original, "type": "temp", "subfolder": ""}),
            },
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise _http_error(response, "store the mask of a region edit")

    def _queue(self, server: ComfyUIServer) -> str:
        response = server.http.post(
            "/prompt",
            json={"prompt": self.workflow, "client_id": server.client_id},
            timeout=self.timeout,
        )
        if response.status_code == 400:
            answer = _json(response)
            raise _rejected(
                self.name, server.url, self.workflow, answer.get("error"), answer.get("node_errors")
            )
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
            # ComfyUI queued the outputs that did validate; this job is not
            # what the template asked for, so take it back off the queue.
            self._stop(server, prompt_id)
            raise _rejected(self.name, server.url, self.workflow, None, answer["node_errors"])
        return prompt_id

    def _follow(
        self, server: ComfyUIServer, slot: Slot, prompt_id: str, events: PromptEvents | dict | None
    ) -> dict:
        """Wait for the prompt's end; its first image's /view parameters."""
        try:
            return self._wait(server, slot, prompt_id, events)
        except BaseException as error:
            if not isinstance(error, (PromptLost, httpx.TransportError)):
                # However following ends early (cancel, deadline, an error
                # answer, the task's time limit), the prompt must not keep
                # the GPU busy while a retry queues another.
                self._stop(server, prompt_id)
            raise
        finally:
            server.forget(prompt_id)

    def _wait(self, server, slot: Slot, prompt_id: str, found) -> dict:
        checked_at = time.monotonic()
        renewed_at = checked_at
        drops = server.drops
        while True:
            if isinstance(found, PromptEvents):
                image_ref = self._from_events(server, prompt_id, found)
                if image_ref is not None:
                    return image_ref
            elif isinstance(found, dict):
                image_ref = _finished(found, prompt_id, name=self.name)
                if image_ref is not None:
                    return image_ref
            found = None
            now = time.monotonic()
            self._check_cancel(server, prompt_id)
            if now >= self.give_up_at:
                raise TransientError(
                    f"ComfyUI did not finish the image within {now - self.started:.0f} "
                    "seconds, so it was stopped.",
                    detail=f"prompt {prompt_id} still running or queued on {server.url}",
                )
            if now - renewed_at >= self.provider.pool.lease_seconds / 3:
                slot.renew()
                renewed_at = now
            connected = server.listen(timeout=0)
            if (
                connected
                and server.drops == drops
                and now - checked_at < self.provider.check_seconds
            ):
                wait = min(self.provider.poll_seconds, self.give_up_at - now)
                found = server.wait(prompt_id, max(0.0, wait), drops)
                continue
            # No websocket, it dropped, or time for the regular look: ask the server.
            drops = server.drops
            checked_at = time.monotonic()
            found = self._where(server, prompt_id)
            if found is None and not connected:
                time.sleep(self.provider.poll_seconds)

    def _where(self, server: ComfyUIServer, prompt_id: str) -> dict | None:
        """The prompt's history entry, None while it is queued or running; PromptLost if neither."""
        entry = self._history(server, prompt_id)
        if entry is not None:
            return entry
        response = server.http.get("/queue", timeout=self.timeout)
        if response.status_code != 200:
            raise _http_error(response, "show its queue")
        if prompt_id in _queued_ids(_json(response)):
            return None
        # It may have finished between the two questions: the history is written
        # as the prompt leaves the queue (execution.py PromptQueue.task_done).
        entry = self._history(server, prompt_id)
        if entry is not None:
            return entry
        raise PromptLost(prompt_id)

    def _history(self, server: ComfyUIServer, prompt_id: str) -> dict | None:
        response = server.http.get(f"/history/{prompt_id}", timeout=self.timeout)
        if response.status_code != 200:
            raise _http_error(response, "report the job's progress")
        entry = _json(response).get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def _from_events(self, server, prompt_id: str, events: PromptEvents) -> dict | None:
        if events.ended == "error":
            raise _execution_error(events.error, prompt_id, name=self.name)
        if events.ended == "interrupted":
            raise _interrupted(prompt_id)
        if events.images:
            return events.images[0]
        entry = self._history(server, prompt_id)  # finished: the history has the outputs
        if entry is None:
            return None
        return _finished(entry, prompt_id, name=self.name)

    def _fetch(self, server: ComfyUIServer, image_ref: dict) -> bytes:
        params = {
            "filename": image_ref.get("filename", ""),
            "subfolder": image_ref.get("subfolder", ""),
            "type": image_ref.get("type", "output"),
        }
        response = server.http.get("/view", params=params, timeout=self.timeout)
        if response.status_code != 200:
            raise _http_error(response, "send the finished image")
        return response.content

    def _clean_up(self, server: ComfyUIServer, prompt_id: str) -> None:
        """Drop the history entry: it holds the whole prompt, and we have the image."""
        try:
            server.http.post("/history", json={"delete": [prompt_id]}, timeout=STOP_TIMEOUT)
        except httpx.TransportError:
            pass

    def _check_cancel(self, server: ComfyUIServer | None, prompt_id: str | None) -> None:
        cancel_check = self.request.cancel_check
        if cancel_check is not None and cancel_check():
            raise CanceledError(
                "The render was canceled; ComfyUI was told to stop it.",
                detail=f"prompt {prompt_id} deleted from the queue and interrupted"
                if prompt_id
                else "canceled before it was queued",
            )

    def _stop(self, server: ComfyUIServer, prompt_id: str) -> None:
        """Take the prompt off the queue, and interrupt it if it is the one running."""
        try:
            server.http.post("/queue", json={"delete": [prompt_id]}, timeout=STOP_TIMEOUT)
            if not server.interrupts_by_id(server.version(STOP_TIMEOUT)):
                # Before 0.3.57 /interrupt stops whatever runs, another
                # client's prompt too: only send it while ours is running.
                response = server.http.get("/queue", timeout=STOP_TIMEOUT)
                running = _json(response).get("queue_running") or []
                if not any(_row_id(row) == prompt_id for row in running):
                    return
            server.http.post("/interrupt", json={"prompt_id": prompt_id}, timeout=STOP_TIMEOUT)
        except (httpx.TransportError, PermanentError):
            pass  # the server is gone or garbled; there is nothing left to stop


def _minutes(minutes: float) -> str:
    if minutes >= 1:
        whole = f"{minutes:.0f}" if minutes == int(minutes) else f"{minutes:.1f}"
        return f"{whole} minute{'s' if whole != '1' else ''}"
    seconds = round(minutes * 60)
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _upload_name(data: bytes) -> tuple[str, bytes]:
    mime_type = sniff_mime_type(data)
    if mime_type is None:
        raise PermanentError(
            "A reference image is not a PNG, JPEG or WebP file.",
            detail=f"reference starts with {data[:12]!r}",
        )
    # Named by content, so a reference shared by many jobs is stored once.
    digest = hashlib.sha256(data).hexdigest()[:24]
    return f"contact-sheet-{digest}.{EXTENSIONS[mime_type]}", data


def _masked_upload(request: RenderRequest, *, original: str) -> tuple[str, bytes, str]:
    """The mask as /upload/mask takes it: alpha 0 where the image may change."""
    data = mask_with_alpha(request.mask)
    # Named by image and mask together: the file written is the image with this alpha.
    digest = hashlib.sha256(request.source + request.mask).hexdigest()[:24]
    return f"contact-sheet-mask-{digest}.png", data, original


def _converts(kind, value) -> bool:
    try:
        kind(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _options(spec) -> list | None:
    """A combo input's choices: `[[a, b]]` (classic nodes) or `["COMBO", {"options": […]}]`."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return list(spec[1].get("options") or [])
    return None


def _row_id(row) -> str:
    return str(row[1]) if isinstance(row, list) and len(row) > 1 else ""


def _queued_ids(answer: dict) -> set[str]:
    rows = list(answer.get("queue_running") or []) + list(answer.get("queue_pending") or [])
    return {_row_id(row) for row in rows}


def with_temporary_outputs(workflow: dict) -> dict:
    """SaveImage nodes as PreviewImage: the image goes to ComfyUI's temp folder, not output."""
    changed = {}
    for node_id, node in workflow.items():
        if node.get("class_type") == "SaveImage":
            images = (node.get("inputs") or {}).get("images")
            node = {**node, "class_type": "PreviewImage", "inputs": {"images": images}}
        changed[node_id] = node
    return changed


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
            names = (*VALUES, "model", *REGION_VALUES, "denoise", "reference_1")
            known = ", ".join(f"{{{{{known}}}}}" for known in names)
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

# A folder path as ComfyUI's messages carry them: /opt/ComfyUI/…, C:\ComfyUI\…
FOLDER_PATH = re.compile(r"(?:[A-Za-z]:\\|/)[^\s'\"]*[/\\][^\s'\"]*")


def _finished(entry: dict, prompt_id: str, *, name: str) -> dict | None:
    """The first output image of a finished job, None while it runs, or the error."""
    status = entry.get("status") or {}
    if status.get("status_str") == "error":
        events = {
            message[0]: message[1]
            for message in status.get("messages") or []
            if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)
        }
        if "execution_error" in events:
            raise _execution_error(events["execution_error"], prompt_id, name=name)
        if "execution_interrupted" in events:
            raise _interrupted(prompt_id)
        raise PermanentError(
            f"ComfyUI could not run the workflow {name}.",
            detail=f"prompt {prompt_id}: {json.dumps(status.get('messages'))[:300]}",
        )
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


def _execution_error(error: dict, prompt_id: str, *, name: str) -> PermanentError:
    """One sentence for the gallery; ComfyUI's whole message and traceback for the log."""
    said = str(error.get("exception_message") or "").strip()
    first = FOLDER_PATH.sub("…", said.splitlines()[0] if said else "").strip()
    if len(first) > 160:
        first = first[:157].rstrip() + "…"
    node = f"node {error.get('node_id')} ({error.get('node_type')})"
    detail = f"prompt {prompt_id}: {error.get('exception_type')}: {said}\n" + "".join(
        str(line) for line in error.get("traceback") or []
    )
    log.warning("ComfyUI run-time error in %s, %s: %s", name, node, detail)
    sentence = f"ComfyUI could not run the workflow {name}: {node} failed"
    return PermanentError(f"{sentence}: {first}" if first else f"{sentence}.", detail=detail)


def _interrupted(prompt_id: str) -> TransientError:
    # Someone stopped it at the ComfyUI server itself (or, before 0.3.57,
    # another client's interrupt reached it), not through us.
    return TransientError(
        "The job was interrupted on the ComfyUI server.",
        detail=f"prompt {prompt_id}: execution_interrupted",
    )


def _missing_class(name: str, url: str, node_id: str, class_type) -> str:
    return (
        f"The workflow {name} uses the node class {class_type!r} (node {node_id}), which the "
        f"ComfyUI server at {url} does not have. Install the custom node that provides it "
        "there, or change the workflow."
    )


def _refusal(name: str, problems: list[str]) -> str:
    message = f"ComfyUI refused the workflow {name}: " + "; ".join(problems[:3])
    if len(problems) > 3:
        message += f"; and {len(problems) - 3} more"
    return message


def _rejected(name: str, url: str, workflow: dict, error, node_errors) -> PermanentError:
    """A clear message for a workflow ComfyUI refused to queue."""
    detail = json.dumps({"error": error, "node_errors": node_errors})
    if isinstance(error, dict) and error.get("type") == "missing_node_type":
        # "Cannot execute because node X does not exist." / "Node 'X' not found…",
        # with the node as "Node ID '#2'" in the details.
        extra = error.get("extra_info") or {}
        match = re.search(r"#([^']+)'", str(error.get("details") or ""))
        node_id = str(extra.get("node_id") or (match.group(1) if match else "?"))
        class_type = extra.get("class_type") or (workflow.get(node_id) or {}).get("class_type")
        return PermanentError(_missing_class(name, url, node_id, class_type), detail=detail)
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
        return PermanentError(_refusal(name, problems), detail=detail)
    said = error.get("message", "") if isinstance(error, dict) else str(error or "")
    if isinstance(error, dict) and error.get("details"):
        said += f": {error['details']}"
    message = f"ComfyUI refused the workflow {name}: {said or 'no reason given'}"
    return PermanentError(message, detail=detail)


def _http_error(response: httpx.Response, action: str) -> TransientError | PermanentError:
    detail = f"HTTP {response.status_code} {response.request.url.path}: {response.text[:300]}"
    if response.status_code >= 500:
        return TransientError(f"ComfyUI had an error when asked to {action}.", detail=detail)
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
