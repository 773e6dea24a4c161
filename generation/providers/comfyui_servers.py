"""One ComfyUI server as this process sees it: pooled HTTP, one websocket, what it is.

Renders run in many threads of one worker; they share, per server, one
httpx.Client (its connection pool is thread-safe), one websocket listener
and what was learned about the server (its version, its node classes).
Everything mutable here is behind a lock.

The websocket (`/ws?clientId=…`) carries ComfyUI's progress messages for
the prompts queued with the same client id (server.py send_sync addresses
them to the prompt's `client_id`). One listener thread per server reads
them and keeps, per prompt id, the images of its `executed` messages and
how it ended: `execution_success`, `execution_error`,
`execution_interrupted`, or the final `executing` with node null (sent once
the history entry is written). A render waits on that instead of polling
the history; when the socket drops, waiters are woken so they check the
history and the queue themselves (the fallback).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
VERSION_SECONDS = 300.0  # how long a server's version is trusted before asking again
CLASS_SECONDS = 60.0  # how long a node class's inputs (model lists) are trusted
IDLE_SECONDS = 60.0  # a listener nobody waits on closes after this long
REMEMBERED_PROMPTS = 2000  # prompts whose events are kept until their render reads them
INTERRUPT_BY_ID_SINCE = (0, 3, 57)  # server.py post_interrupt honours "prompt_id" from here


@dataclass
class PromptEvents:
    images: list[dict] = field(default_factory=list)  # from `executed` messages
    ended: str = ""  # "success" | "error" | "interrupted"
    error: dict = field(default_factory=dict)  # the execution_error / _interrupted data
    finished: bool = False  # the final `executing` with node null: history is written


def parse_version(text: str) -> tuple[int, int, int] | None:
    """ComfyUI's version from /system_stats ("0.3.64", "v0.3.64-3-gabc123"), or None."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(part) for part in match.groups()) if match else None


class ComfyUIServer:
    def __init__(self, url: str):
        self.url = url
        # ComfyUI addresses a prompt's messages to the client id it was queued
        # with; one id per server per process, used by the listener and every POST.
        self.client_id = uuid.uuid4().hex
        self.http = httpx.Client(
            base_url=url,
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._prompts: OrderedDict[str, PromptEvents] = OrderedDict()
        self._connected = False
        self._drops = 0  # bumped each time the socket goes away
        self._listener: threading.Thread | None = None
        self._wanted_at = 0.0
        self._failed_at = 0.0  # when connecting last failed: do not make renders wait on it
        self._version: tuple[float, str] | None = None  # (asked at, version text)
        self._classes: dict[str, tuple[float, dict | None]] = {}

    # --- what the server is -------------------------------------------------------------

    def version(self, timeout) -> str:
        """`system.comfyui_version` from /system_stats, asked at most every few minutes."""
        with self._lock:
            known = self._version
        if known and time.monotonic() - known[0] < VERSION_SECONDS:
            return known[1]
        response = self.http.get("/system_stats", timeout=timeout)
        try:
            text = str(response.json().get("system", {}).get("comfyui_version") or "")
        except (ValueError, AttributeError):
            text = ""
        with self._lock:
            first = self._version is None
            self._version = (time.monotonic(), text)
        if first and not self.interrupts_by_id(text):
            log.warning(
                "ComfyUI at %s reports version %r; before 0.3.57 /interrupt stops whatever "
                "runs, so it is sent only while our own prompt is running. Upgrade ComfyUI.",
                self.url,
                text,
            )
        return text

    @staticmethod
    def interrupts_by_id(version: str) -> bool:
        parsed = parse_version(version)
        return parsed is not None and parsed >= INTERRUPT_BY_ID_SINCE

    def class_info(self, class_type: str, timeout, *, fresh: bool = False) -> dict | None:
        """`/object_info/{class}`: the class's inputs, or None when the server lacks it."""
        with self._lock:
            known = self._classes.get(class_type)
        if known and not fresh and time.monotonic() - known[0] < CLASS_SECONDS:
            return known[1]
        response = self.http.get(f"/object_info/{class_type}", timeout=timeout)
        info = None
        if response.status_code == 200:
            try:
                info = response.json().get(class_type)
            except (ValueError, AttributeError):
                info = None
        with self._lock:
            self._classes[class_type] = (time.monotonic(), info)
        return info

    def class_age(self, class_type: str) -> float:
        with self._lock:
            known = self._classes.get(class_type)
        return time.monotonic() - known[0] if known else 0.0

    # --- the websocket ------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        base = re.sub(r"^http", "ws", self.url)
        return f"{base}/ws?clientId={self.client_id}"

    def listen(self, timeout: float) -> bool:
        """Make sure the listener runs; True once it is connected (waits up to `timeout`)."""
        with self._changed:
            self._wanted_at = time.monotonic()
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name=f"comfyui-ws {self.url}", daemon=True
                )
                self._listener.start()
            recently_failed = time.monotonic() - self._failed_at < 10
            if not self._connected and timeout > 0 and not recently_failed:
                self._changed.wait_for(lambda: self._connected, timeout)
            return self._connected

    @property
    def drops(self) -> int:
        with self._lock:
            return self._drops

    def wait(self, prompt_id: str, timeout: float, drops: int) -> PromptEvents | None:
        """The prompt's events once it has ended; None on timeout or when the socket dropped."""

        def over(events: PromptEvents | None) -> bool:
            # A success without images yet waits for the final `executing`,
            # after which the history has the outputs.
            return events is not None and (
                events.finished
                or events.ended in ("error", "interrupted")
                or (events.ended == "success" and bool(events.images))
            )

        with self._changed:
            self._wanted_at = time.monotonic()
            self._changed.wait_for(
                lambda: (
                    over(self._prompts.get(prompt_id))
                    or self._drops != drops
                    or not self._connected
                ),
                timeout,
            )
            events = self._prompts.get(prompt_id)
            if over(events):
                return PromptEvents(
                    list(events.images), events.ended, dict(events.error), events.finished
                )
            return None

    def forget(self, prompt_id: str) -> None:
        with self._lock:
            self._prompts.pop(prompt_id, None)

    def _listen(self) -> None:
        pause = 0.1
        while True:
            with self._lock:
                if time.monotonic() - self._wanted_at > IDLE_SECONDS:
                    self._listener = None
                    return
            try:
                with connect(
                    self.ws_url, open_timeout=5, close_timeout=1, max_size=None, compression=None
                ) as socket:
                    with self._changed:
                        self._connected = True
                        self._changed.notify_all()
                    pause = 0.1
                    while True:
                        try:
                            message = socket.recv(timeout=10)
                        except TimeoutError:
                            with self._lock:
                                if time.monotonic() - self._wanted_at > IDLE_SECONDS:
                                    break
                            continue
                        if isinstance(message, str):  # binary messages are previews
                            self._dispatch(message)
            except (OSError, WebSocketException, TimeoutError) as error:
                log.debug("ComfyUI websocket %s: %s", self.url, error)
            with self._changed:
                if self._connected:
                    self._drops += 1
                else:
                    self._failed_at = time.monotonic()
                self._connected = False
                self._changed.notify_all()
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _dispatch(self, message: str) -> None:
        try:
            decoded = json.loads(message)
            kind, data = decoded.get("type"), decoded.get("data") or {}
            prompt_id = data.get("prompt_id")
        except (ValueError, AttributeError):
            return
        if not prompt_id or kind not in (
            "execution_start",
            "executed",
            "execution_success",
            "execution_error",
            "execution_interrupted",
            "executing",
        ):
            return
        with self._changed:
            events = self._prompts.get(prompt_id)
            if events is None:
                events = self._prompts[prompt_id] = PromptEvents()
                while len(self._prompts) > REMEMBERED_PROMPTS:
                    self._prompts.popitem(last=False)
            if kind == "executed":
                for image in (data.get("output") or {}).get("images") or []:
                    if isinstance(image, dict) and image.get("filename"):
                        events.images.append(image)
            elif kind == "execution_success":
                events.ended = "success"
            elif kind == "execution_error":
                events.ended, events.error = "error", data
            elif kind == "execution_interrupted":
                events.ended, events.error = "interrupted", data
            elif kind == "executing" and data.get("node") is None:
                events.finished = True
            else:
                return
            self._changed.notify_all()


_servers: dict[str, ComfyUIServer] = {}
_servers_lock = threading.Lock()


def server_for(url: str) -> ComfyUIServer:
    """The process's one ComfyUIServer for this address."""
    with _servers_lock:
        server = _servers.get(url)
        if server is None:
            server = _servers[url] = ComfyUIServer(url)
        return server
