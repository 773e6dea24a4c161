"""Which of a lane's ComfyUI servers a render runs on, shared by every worker through Redis.

Each server has a number of slots (`COMFYUI_SERVER_SLOTS`, one by default:
one GPU runs one prompt at a time, and a prompt queued behind another only
waits there). A slot is held in a sorted set per server, one member per
holder, scored by when its lease runs out; a holder renews it while its
prompt runs, and a worker that was killed frees its slot when the lease
ends. Taking a slot is one Lua script over all of a lane's servers, so two
workers never both take the last one; it picks the up server with the most
free slots, starting from a random one so equal servers share the work.

A server that did not answer is marked down for a few seconds
(`comfyui:down:<url>`); slots are not handed out on it until someone has
asked it again and it answered.

Released slots are announced on a short list per server, so a render
waiting for one wakes at once instead of polling.

Self-contained on purpose: the general provider-quota module can take it
over as one more kind of limit.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass

import redis

ACQUIRED, BUSY, ALL_DOWN = "acquired", "busy", "down"

# KEYS: per server its holders set, then its down marker.
# ARGV: slots per server, holder, lease in ms, the server to look at first.
# Returns the index of the server taken, -1 when every up server is full,
# -2 when every server is marked down.
ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[3])
local servers = #KEYS / 2
local best, best_count, up = -1, limit, 0
for step = 0, servers - 1 do
  local i = (tonumber(ARGV[4]) + step) % servers
  local holders = KEYS[2 * i + 1]
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now_ms)
  if redis.call('EXISTS', KEYS[2 * i + 2]) == 0 then
    up = up + 1
    local count = redis.call('ZCARD', holders)
    if count < best_count then
      best, best_count = i, count
    end
  end
end
if best < 0 then
  if up == 0 then return -2 end
  return -1
end
redis.call('ZADD', KEYS[2 * best + 1], now_ms + lease, ARGV[2])
redis.call('PEXPIRE', KEYS[2 * best + 1], lease * 2)
return best
"""

# KEYS: holders set. ARGV: holder, lease in ms.
RENEW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""

# KEYS: holders set, freed list. ARGV: holder.
RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], -16, -1)
  redis.call('PEXPIRE', KEYS[2], 10000)
end
return 1
"""

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _client(redis_url: str) -> redis.Redis:
    """One connection pool per Redis per process; redis-py's pool is thread-safe."""
    with _clients_lock:
        client = _clients.get(redis_url)
        if client is None:
            client = _clients[redis_url] = redis.Redis.from_url(redis_url)
        return client


def _holders(url: str) -> str:
    return f"comfyui:slots:{url}"


def _down(url: str) -> str:
    return f"comfyui:down:{url}"


def _freed(url: str) -> str:
    return f"comfyui:freed:{url}"


@dataclass
class Slot:
    """One prompt's place on one server; release it as soon as the server is done with it."""

    pool: ServerPool
    url: str
    holder: str
    released: bool = False

    def renew(self) -> None:
        if not self.released:
            self.pool._renew(keys=[_holders(self.url)], args=[self.holder, self.pool.lease_ms])

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.pool._release(keys=[_holders(self.url), _freed(self.url)], args=[self.holder])


class ServerPool:
    def __init__(
        self,
        redis_url: str,
        *,
        slots_per_server: int = 1,
        lease_seconds: float = 30.0,
        down_seconds: float = 2.0,
    ):
        self.redis = _client(redis_url)
        self.slots_per_server = max(1, slots_per_server)
        self.lease_ms = int(lease_seconds * 1000)
        self.lease_seconds = lease_seconds
        self.down_ms = int(down_seconds * 1000)
        self._acquire = self.redis.register_script(ACQUIRE)
        self._renew = self.redis.register_script(RENEW)
        self._release = self.redis.register_script(RELEASE)

    def try_acquire(self, urls: list[str]) -> tuple[Slot | None, str]:
        """A slot on the least busy up server, or None with why: BUSY or ALL_DOWN."""
        keys = [key for url in urls for key in (_holders(url), _down(url))]
        holder = uuid.uuid4().hex
        start = random.randrange(len(urls))
        index = int(
            self._acquire(keys=keys, args=[self.slots_per_server, holder, self.lease_ms, start])
        )
        if index >= 0:
            return Slot(self, urls[index], holder), ACQUIRED
        return None, ALL_DOWN if index == -2 else BUSY

    def wait_for_release(self, urls: list[str], timeout: float) -> None:
        """Sleep until a slot on one of these servers is released, or `timeout` passes."""
        if timeout <= 0:
            return
        self.redis.blpop([_freed(url) for url in urls], timeout=max(0.01, timeout))

    def mark_down(self, url: str) -> None:
        self.redis.set(_down(url), "1", px=self.down_ms)

    def mark_up(self, url: str) -> None:
        self.redis.delete(_down(url))

    def is_down(self, url: str) -> bool:
        return bool(self.redis.exists(_down(url)))

    def claim_probe(self, url: str) -> bool:
        """True for one caller a second: who asks a down server whether it is back."""
        return bool(self.redis.set(f"comfyui:probe:{url}", "1", nx=True, px=1000))

    def holders(self, url: str) -> int:
        """Slots in use on a server now (expired leases not counted)."""
        now_seconds, micros = self.redis.time()
        now_ms = now_seconds * 1000 + micros // 1000
        return int(self.redis.zcount(_holders(url), f"({now_ms}", "+inf"))
