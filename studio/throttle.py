"""Rate limits kept in Redis, shared by every web process.

A window opens with the first attempt and lasts `window` seconds, rather
than following the clock's minutes: with clock minutes, attempts that
straddle a minute boundary could get twice the limit in a few seconds.
"""

import math
import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Throttled(Exception):
    retry_after: int
    message: str


def _keys(scope: str, key: str) -> tuple[str, str]:
    base = f"throttle:{scope}:{key}"
    return base, f"{base}:opened"


def hit(scope: str, key: str, *, limit: int, window: int = 60) -> None:
    """Count one attempt; raise Throttled once `limit` is passed in this window."""
    counter, opened = _keys(scope, key)
    now = time.time()
    cache.add(opened, now, timeout=window)
    cache.add(counter, 0, timeout=window)
    try:
        count = cache.incr(counter)
    except ValueError:  # the window closed between add and incr
        cache.set(counter, 1, timeout=window)
        count = 1
    if count > limit:
        started = cache.get(opened, now)
        retry_after = min(window, max(1, math.ceil(started + window - now)))
        raise Throttled(retry_after, f"Too many attempts. Try again in {retry_after} seconds.")


def clear(scope: str, key: str) -> None:
    cache.delete_many(_keys(scope, key))
