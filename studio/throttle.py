"""Fixed-window rate limits kept in Redis, shared by every web process."""

import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Throttled(Exception):
    retry_after: int
    message: str


def hit(scope: str, key: str, *, limit: int, window: int = 60) -> None:
    """Count one attempt; raise Throttled once `limit` is passed in this window."""
    window_start = int(time.time()) // window * window
    cache_key = f"throttle:{scope}:{key}:{window_start}"
    cache.add(cache_key, 0, timeout=window + 5)
    count = cache.incr(cache_key)
    if count > limit:
        retry_after = max(1, window_start + window - int(time.time()))
        raise Throttled(retry_after, f"Too many attempts. Try again in {retry_after} seconds.")


def clear(scope: str, key: str, *, window: int = 60) -> None:
    window_start = int(time.time()) // window * window
    cache.delete(f"throttle:{scope}:{key}:{window_start}")
