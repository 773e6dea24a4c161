"""Which render a log line belongs to: its batch, generation, team, provider and lane.

lane_run and generation_render set these for the thread that runs them, and
the console handler's filter (studio.logs) copies them onto every record, so
a line logged anywhere during a render (a provider's warning, a quota's 429,
an unexpected traceback) says which job it is about. Context variables are
per thread, so the fifty renders of one worker never mix their fields.
This module imports nothing from Django: logging is set up before the apps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("batch", "generation", "team", "provider", "model", "lane")

# A tuple of pairs, not a dict: a context variable's default must not be mutable.
_current: ContextVar[tuple[tuple[str, object], ...]] = ContextVar("render_log_fields", default=())


@contextmanager
def render_fields(**fields: object) -> Iterator[None]:
    """Add these fields to every log line of this thread until the block ends."""
    known = {key: value for key, value in fields.items() if value not in (None, "")}
    token = _current.set(tuple({**dict(_current.get()), **known}.items()))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> dict[str, object]:
    return dict(_current.get())
