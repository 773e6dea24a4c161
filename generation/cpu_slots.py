"""The CPU-bound steps of a render share a few slots per worker process.

A lane worker keeps dozens of renders in flight on threads, because a render
is mostly waiting on a remote model. The few steps that do work here —
decoding what came back, splicing the PNG metadata, encoding thumbnails, the
offline renderer's drawing — take one of RENDER_CPU_SLOTS (the cores, by
default) so fifty finishing renders neither thrash the cores nor hold fifty
full-size decodes in memory at once: an image waiting for a slot is still
only its compressed bytes.
"""

import threading
from contextlib import contextmanager

from django.conf import settings

_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


@contextmanager
def cpu_slot():
    size = settings.RENDER_CPU_SLOTS
    with _lock:
        semaphore = _slots.setdefault(size, threading.BoundedSemaphore(size))
    with semaphore:
        yield
