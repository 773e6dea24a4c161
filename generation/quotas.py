"""Provider quotas, shared by every worker on every host through Redis.

A credential is what a provider meters: a Gemini project's API key, an
OpenAI key, a ComfyUI server list. Each has optional limits
(settings.PROVIDER_QUOTAS): renders in flight, requests per minute and images
per minute. A worker thread takes a slot before it claims a job and gives it
back as soon as the provider has answered, so ten worker hosts together never
exceed what one credential allows.

- In flight: a counting semaphore kept as a sorted set of holders scored by
  when their render's deadline ends, so a worker killed mid-render cannot
  keep its slots.
- Per minute: GCRA (a token bucket kept as one timestamp), which spaces the
  starts evenly with at most one second's worth back to back; a minute's
  worth at once would be a burst that providers answer with 429.
- Congestion: a 429 halves the window of renders in flight and pauses every
  worker on that credential for Retry-After (once per pause, not once per
  refused request); each success then widens the window by 1/window, as TCP
  does (additive increase, multiplicative decrease), up to just under the
  level the provider last refused until a minute has passed.

All of it runs as one Lua script per attempt, on Redis's clock, so hosts
with skewed clocks agree. If Redis cannot be reached the render goes ahead
unmetered: the broker is the same Redis, so this only happens mid-outage,
and the provider's own 429s still hold the line.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings

log = logging.getLogger(__name__)

PROVIDER_LABELS = {"gemini": "Gemini", "openai": "OpenAI", "comfyui": "ComfyUI"}

# After a 429 the window grows back to just under the level that was
# refused, and past it only once this long has gone by without another.
CEILING_MEMORY_SECONDS = 60
# A full window re-polls this often; a paused or rate-spaced credential
# sleeps exactly until its next start instead.
IN_FLIGHT_POLL_SECONDS = 0.05

_ACQUIRE = """
local holders, state = KEYS[1], KEYS[2]
local holder, lease_ms = ARGV[1], tonumber(ARGV[2])
local limit, interval, burst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
local pause = tonumber(redis.call('HGET', state, 'pause_until') or '0')
if pause > now then return pause - now end
local window = tonumber(redis.call('HGET', state, 'window') or '0')
if window == 0 then window = limit end
if limit > 0 and window > limit then window = limit end
if window > 0 and redis.call('ZCARD', holders) >= math.max(1, math.floor(window)) then
  return -1
end
if interval > 0 then
  local tat = tonumber(redis.call('HGET', state, 'tat') or '0')
  if tat < now then tat = now end
  local allowed_at = tat - interval * (burst - 1)
  if allowed_at > now then return allowed_at - now end
  redis.call('HSET', state, 'tat', tat + interval)
end
redis.call('ZADD', holders, now + lease_ms, holder)
redis.call('PEXPIRE', holders, lease_ms + 60000)
redis.call('PEXPIRE', state, 3600000)
return 0
"""

_RELEASE = """
local holders, state = KEYS[1], KEYS[2]
local holder, outcome, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local pause_ms, ceiling_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local in_flight = redis.call('ZCARD', holders)
redis.call('ZREM', holders, holder)
local window = tonumber(redis.call('HGET', state, 'window') or '0')
if outcome == 'throttled' then
  local pause = tonumber(redis.call('HGET', state, 'pause_until') or '0')
  if pause < now + pause_ms then redis.call('HSET', state, 'pause_until', now + pause_ms) end
  local shrunk = tonumber(redis.call('HGET', state, 'shrunk_at') or '0')
  if now - shrunk > pause_ms then
    local base = window
    if base == 0 or base > in_flight then base = in_flight end
    redis.call('HSET', state, 'window', math.max(1, base / 2), 'shrunk_at', now)
    redis.call('HSET', state, 'ceiling', in_flight, 'ceiling_at', now)
    redis.call('HINCRBY', state, 'throttles', 1)
    return 1
  end
  return 0
end
if outcome == 'succeeded' and window > 0 then
  window = window + 1 / window
  -- Below the level the provider last refused, for a minute: probing it
  -- again at once would only buy another 429.
  local ceiling = tonumber(redis.call('HGET', state, 'ceiling') or '0')
  local ceiling_at = tonumber(redis.call('HGET', state, 'ceiling_at') or '0')
  if ceiling > 0 and now - ceiling_at < ceiling_ms then
    window = math.min(window, math.max(1, ceiling - 1))
  elseif ceiling > 0 then
    redis.call('HDEL', state, 'ceiling', 'ceiling_at')
  end
  if (limit > 0 and window >= limit) or (limit == 0 and window > 2 * in_flight + 1) then
    redis.call('HDEL', state, 'window')
  else
    redis.call('HSET', state, 'window', window)
  end
end
return 0
"""

_STATE = """
local holders, state = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
local values = redis.call('HMGET', state, 'window', 'pause_until', 'tat')
return {redis.call('ZCARD', holders), values[1] or '0', values[2] or '0', values[3] or '0', now}
"""


@dataclass(frozen=True)
class Credential:
    provider: str
    key: str  # stable across hosts; never the secret itself
    in_flight: int | None = None
    requests_per_minute: int | None = None
    images_per_minute: int | None = None

    @property
    def label(self) -> str:
        return PROVIDER_LABELS.get(self.provider, self.provider)

    @property
    def metered(self) -> bool:
        """The offline renderer is metered only when limits are set for it (benches)."""
        return self.provider != "offline" or self.limited

    @property
    def limited(self) -> bool:
        return bool(self.in_flight or self.requests_per_minute or self.images_per_minute)

    @property
    def interval_ms(self) -> int:
        """Milliseconds between starts; each render is one request for one image."""
        rates = [r for r in (self.requests_per_minute, self.images_per_minute) if r]
        return round(60_000 / min(rates)) if rates else 0

    @property
    def burst(self) -> int:
        rates = [r for r in (self.requests_per_minute, self.images_per_minute) if r]
        return max(1, min(rates) // 60) if rates else 1


def credential_for(provider: str) -> Credential:
    """The credential a provider's renders are metered under, with its limits."""
    secret = {
        "gemini": f"{settings.GEMINI_API_BASE}\0{settings.GEMINI_API_KEY}",
        "openai": f"{settings.OPENAI_API_BASE}\0{settings.OPENAI_API_KEY}",
        "comfyui": settings.COMFYUI_URL,
    }.get(provider, provider)
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    limits = settings.PROVIDER_QUOTAS.get(provider, {})
    return Credential(provider=provider, key=f"{provider}:{digest}", **limits)


@dataclass
class QuotaState:
    in_flight: int
    window: float | None  # the congestion window, when a 429 has narrowed it
    paused_seconds: float
    backlog_seconds: float  # how far ahead the per-minute limit has booked starts

    def is_bottleneck(self, credential: Credential) -> bool:
        limit = self.window or credential.in_flight
        return bool(
            self.paused_seconds > 0
            or (limit and self.in_flight >= int(limit))
            or self.backlog_seconds > 1
        )


class Slot:
    """A permit to send one request on a credential. Give it back once the
    provider has answered: `succeeded()`, `throttled(retry_after)` or `release()`."""

    def __init__(self, credential: Credential, holder: str | None):
        self.credential = credential
        self.holder = holder
        self._done = holder is None

    def succeeded(self) -> None:
        self._finish("succeeded")

    def throttled(self, retry_after: float | None) -> None:
        """A 429: every worker on this credential waits, and the window narrows."""
        self._finish("throttled", pause_seconds=retry_after or 1.0)

    def release(self) -> None:
        self._finish("released")

    def _finish(self, outcome: str, pause_seconds: float = 0.0) -> None:
        if self._done:
            return
        self._done = True
        try:
            narrowed = _scripts().release(
                keys=_keys(self.credential),
                args=[
                    self.holder,
                    outcome,
                    self.credential.in_flight or 0,
                    int(pause_seconds * 1000),
                    int(CEILING_MEMORY_SECONDS * 1000),
                ],
            )
        except redis.RedisError as error:
            log.warning("quota %s: could not release a slot (%s)", self.credential.key, error)
            return
        if narrowed:
            log.warning(
                "%s answered 429: every worker pauses %.1f s and sends fewer at once",
                self.credential.label,
                pause_seconds,
            )

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(credential: Credential, *, lease_seconds: float, wait_seconds: float) -> Slot | None:
    """A slot on the credential, waiting up to `wait_seconds`; None if none came free."""
    if not credential.metered:
        return Slot(credential, None)
    holder = uuid.uuid4().hex
    give_up = time.monotonic() + wait_seconds
    args = [
        holder,
        int(lease_seconds * 1000),
        credential.in_flight or 0,
        credential.interval_ms,
        credential.burst,
    ]
    while True:
        try:
            wait_ms = _scripts().acquire(keys=_keys(credential), args=args)
        except redis.RedisError as error:
            log.warning("quota %s: Redis unreachable, not metering (%s)", credential.key, error)
            return Slot(credential, None)
        if wait_ms == 0:
            return Slot(credential, holder)
        pause = IN_FLIGHT_POLL_SECONDS if wait_ms < 0 else wait_ms / 1000
        # Jitter, so threads released by the same event do not all ask at once.
        pause *= random.uniform(1.0, 1.5)
        if time.monotonic() + pause > give_up:
            return None
        time.sleep(pause)


def state(credential: Credential) -> QuotaState | None:
    """What the credential is doing now, for the grid's "waiting for" line."""
    if not credential.metered:
        return None
    try:
        in_flight, window, pause_until, tat, now = _scripts().state(keys=_keys(credential))
    except redis.RedisError:
        return None
    window, pause_until, tat = float(window), int(pause_until), int(tat)
    return QuotaState(
        in_flight=int(in_flight),
        window=window or None,
        paused_seconds=max(0, pause_until - now) / 1000,
        backlog_seconds=max(0, tat - now) / 1000,
    )


def reset(credential: Credential) -> None:
    """Forget a credential's holders and window (tests and benches)."""
    _client().delete(*_keys(credential))


def _keys(credential: Credential) -> list[str]:
    return [f"quota:{credential.key}:holders", f"quota:{credential.key}:state"]


class _Scripts:
    def __init__(self, client: redis.Redis):
        self.acquire = client.register_script(_ACQUIRE)
        self.release = client.register_script(_RELEASE)
        self.state = client.register_script(_STATE)


_lock = threading.Lock()
_cached: dict[str, object] = {}


def _client() -> redis.Redis:
    with _lock:
        if "client" not in _cached:
            _cached["client"] = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
            )
        return _cached["client"]


def _scripts() -> _Scripts:
    client = _client()
    with _lock:
        if "scripts" not in _cached:
            _cached["scripts"] = _Scripts(client)
        return _cached["scripts"]
