"""Rate limits kept in Redis, shared by every web process.

A window opens with the first attempt and lasts `window` seconds, rather
than following the clock's minutes: with clock minutes, attempts that
straddle a minute boundary could get twice the limit in a few seconds.
"""

import hashlib
import ipaddress
import logging
import math
import time
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache

logger = logging.getLogger(__name__)


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


def unhit(scope: str, key: str) -> None:
    """Take back one attempt counted by `hit` (no-op once its window closed)."""
    counter, _ = _keys(scope, key)
    try:
        cache.decr(counter)
    except ValueError:
        pass


def clear(scope: str, key: str) -> None:
    cache.delete_many(_keys(scope, key))


# --- who is asking ---------------------------------------------------------------


def client_address(request) -> str:
    """The client's address, seen through TRUSTED_PROXY_COUNT reverse proxies.

    Each proxy appends the address it got the request from to
    X-Forwarded-For, so with N trusted proxies the client is the Nth entry
    from the right; everything further left was written by the client and
    can say anything. A header with fewer entries, or a malformed entry,
    means the request did not come through all the proxies (or the count is
    wrong): it is keyed on the peer that connected, which nobody can forge.
    """
    peer = _parse_address(request.META.get("REMOTE_ADDR", "")) or "unknown"
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        if "HTTP_X_FORWARDED_FOR" in request.META:
            _warn_once_about_an_ignored_header(peer)
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(forwarded) < proxies:
        return peer
    return _parse_address(forwarded[-proxies]) or peer


_warned_about_an_ignored_header = False


def _warn_once_about_an_ignored_header(peer: str) -> None:
    # Once per process: a client can send the header itself, so this is a
    # hint for the operator, not proof of a proxy.
    global _warned_about_an_ignored_header
    if _warned_about_an_ignored_header:
        return
    _warned_about_an_ignored_header = True
    logger.warning(
        "A request from %s carried X-Forwarded-For, which TRUSTED_PROXY_COUNT=0 ignores. "
        "Behind a reverse proxy, set TRUSTED_PROXY_COUNT to the number of proxies, or the "
        "sign-in limits count every visitor under the proxy's address.",
        peer,
    )


def _parse_address(text: str) -> str | None:
    """An IP address in canonical form, from `a.b.c.d`, `a.b.c.d:port`, `v6` or `[v6]:port`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _address_bucket(address: str) -> str:
    # One IPv6 subscriber gets a whole /64, so counting single IPv6 addresses
    # would give an attacker 2**64 fresh buckets.
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def username_key(username: str) -> str:
    """The form of a username that sign-in limits count under.

    Django's sign-in form NFKC-normalizes what is typed before looking the
    account up, so `ｖadmin` and `𝐯admin` both reach `vadmin`; the limits
    must count them as one. Case-folded too (then normalized again, since
    folding can undo NFKC), so `VAdmin` is not a fresh name either.
    """
    folded = AbstractBaseUser.normalize_username(username.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


# --- sign-in ---------------------------------------------------------------------
#
# Two limits, both checked before the password is:
#
# - per (username, address) pair, SIGNIN_ATTEMPTS_PER_MINUTE: bounds how fast
#   one client can guess one account's password;
# - per address, four times that, for failures across all usernames: bounds
#   one client spraying a common password over many accounts.
#
# There is deliberately no limit on a username alone: whoever can name an
# account could then lock its owner out from everywhere. Nor is any limit
# waived for a correct password: a limit that lets the right password
# through answers "wrong" and "right" differently while refusing, so a
# guesser would go on guessing at full speed and the limit would slow
# nothing. Because each limit is keyed on the guesser's own address, a
# person signing in from anywhere else is never refused. That holds only
# when the address is the client's: behind a reverse proxy,
# TRUSTED_PROXY_COUNT must say how many proxies there are, or every
# visitor shares the proxy's address.


def _pair(username: str, address: str) -> str:
    # Hashed so a typed username never becomes part of a cache key as-is.
    name = hashlib.sha256(username_key(username).encode()).hexdigest()[:32]
    return f"{name}:{_address_bucket(address)}"


def signin_attempt(*, username: str, address: str) -> None:
    """Count one sign-in attempt; raise Throttled if this client must wait."""
    per_pair = settings.SIGNIN_ATTEMPTS_PER_MINUTE
    bucket = _address_bucket(address)
    # Counted before the password is checked, so parallel attempts cannot
    # all slip in under the limit.
    hit("signin-address", bucket, limit=per_pair * 4)
    try:
        hit("signin-pair", _pair(username, address), limit=per_pair)
    except Throttled:
        # Refused on the pair, so the password is never tried: not a
        # failure for the address limit to count.
        unhit("signin-address", bucket)
        raise


def signin_succeeded(*, username: str, address: str) -> None:
    """A correct password: its attempt was no failure, and the pair starts afresh."""
    unhit("signin-address", _address_bucket(address))
    clear("signin-pair", _pair(username, address))


# --- review links ------------------------------------------------------------------
#
# A link's password is guessed per (link, address), at the sign-in rate; a
# token is 256 bits, so misses are limited only to keep a crawler of guessed
# tokens cheap to refuse.

REVIEW_MISSES_PER_MINUTE = 60
# Picks, ratings and comments per link from one address: far above a person
# clicking through a grid, low enough that a script cannot flood the studio.
REVIEW_WRITES_PER_MINUTE = 120


def review_password_attempt(*, link_id: int, address: str) -> None:
    key = f"{link_id}:{_address_bucket(address)}"
    hit("review-password", key, limit=settings.SIGNIN_ATTEMPTS_PER_MINUTE)


def review_password_succeeded(*, link_id: int, address: str) -> None:
    clear("review-password", f"{link_id}:{_address_bucket(address)}")


def review_token_missed(*, address: str) -> None:
    hit("review-miss", _address_bucket(address), limit=REVIEW_MISSES_PER_MINUTE)


def review_write(*, link_id: int, address: str) -> None:
    hit("review-write", f"{link_id}:{_address_bucket(address)}", limit=REVIEW_WRITES_PER_MINUTE)
