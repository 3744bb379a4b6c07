"""Client-side rate limiting for one HubSpot portal, shared by every connector of that portal:
threads of one process, Dagster's step processes, and (with Redis) several machines.

Why client-side: HubSpot's burst limit (100-250 requests per rolling 10 s, depending on the tier)
and its search limit (4-5 per second) belong to the *portal*, not to one connector instance.
When the hub extracts companies, contacts and deals at the same time (Dagster's multi-process
executor runs each step in its own OS process), each process hitting 429s and backing off would
waste requests and slow everything down. So every connector talking to the same portal with the
same credentials draws from one budget whose state is shared:

- ``memory``: an in-process log (tests, a library user with one process);
- ``sqlite:///path``: a SQLite file (by default ``$CRMHUB_HOME/ratelimit.db``, next to the hub
  database) guarded by a file lock: every process on the machine shares it;
- ``redis://host:port/db``: a Redis sorted set updated by one atomic Lua script: processes on any
  number of machines share it (``CRMHUB_REDIS_URL``).

Why pyrate-limiter (v4) rather than ``limits`` or hand-written code: it keeps a *sliding window
log* (the strict rolling window HubSpot counts: never more than N requests in any 10-s span, where
a refilling token bucket lets 2N through across a refill), it ships exactly the shared backends
needed here (a SQLite bucket with a file lock for one machine, a Redis bucket with an atomic
check-and-insert for many) and it returns the wait until the oldest blocking request leaves the
window with the verdict, from the same atomic step. ``limits`` has no SQLite storage, and its
moving window on Redis answers only yes/no.

How: one bucket per portal and rate (``<digest>_burst`` for every request, ``<digest>_search`` for
searches), keyed by the base URL and a digest of the credential (the raw token is never a key).
The limiter asks the bucket to admit one request at "now"; on a refusal it sleeps the wait the
bucket computed and asks again. A search takes its search slot first, then its burst slot, without
sleeping in between: if the burst is full, it sleeps and takes a *new* search slot afterwards, so
that a logged search is never sent later than it was counted.

Time: wall-clock milliseconds (every process on the machine, and machines synced by NTP, agree),
or an injected ``clock`` and ``sleep`` so that tests run instantly on a fake clock.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyrate_limiter import InMemoryBucket, Rate, RateItem
from pyrate_limiter.abstracts import AbstractBucket

#: Old log entries are removed every this many admitted requests (the log stays ~N rows).
_LEAK_EVERY = 200


class RollingWindow:
    """At most ``limit`` events in any ``window`` seconds, counted in a (possibly shared) bucket.

    The log keeps whole milliseconds and its window is closed at the lower end (an entry exactly
    ``window`` old still counts), so a request goes at the earliest one millisecond after the
    window of the one it replaces has passed: strictly more than ``window`` apart, whatever the
    rounding, never the ``limit + 1``-th in a window as the portal measures it.
    """

    def __init__(self, limit: int, window: float, bucket: AbstractBucket | None = None) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.rate = Rate(limit, max(1, round(window * 1000)))
        self.bucket = bucket if bucket is not None else InMemoryBucket([self.rate])
        self._admitted = 0

    def take(self, now: float) -> float:
        """Log one event at ``now`` if it fits and return 0; else return the seconds to wait."""
        now_ms = round(now * 1000)
        decision = self.bucket.put_decision(RateItem("request", now_ms))
        if decision.allowed:  # type: ignore[union-attr]
            self._admitted += 1
            if self._admitted % _LEAK_EVERY == 0:
                self.bucket.leak(now_ms)
            return 0.0
        wait_ms = decision.retry_after_ms  # type: ignore[union-attr]
        if wait_ms is None:  # the bucket computed none: look it up
            wait_ms = self.bucket.waiting(RateItem("request", now_ms))  # type: ignore[assignment]
        return max(int(wait_ms), 1) / 1000.0  # type: ignore[arg-type]

    def close(self) -> None:
        self.bucket.close()


def _search_window(search_per_second: float) -> tuple[int, float]:
    # Fractional rates (e.g. 0.5/s) become "1 per 2 s"; integral ones "N per second".
    if search_per_second >= 1:
        return int(search_per_second), 1.0
    return 1, 1.0 / search_per_second


class PortalLimiter:
    """The burst window for every request plus the per-second window for searches.

    ``store``: where the windows live (see the module docstring): ``""``/``"memory"``,
    ``"sqlite:///path/ratelimit.db"`` or ``"redis://host:6379/0"``; ``key`` names the portal's
    buckets in a shared store.
    """

    def __init__(
        self,
        burst_limit: int,
        burst_window_seconds: float,
        search_per_second: float,
        *,
        store: str = "",
        key: str = "portal",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        search_limit, search_window = _search_window(search_per_second)
        self.store = store_label(store)
        self.burst = RollingWindow(burst_limit, burst_window_seconds)
        self.search = RollingWindow(search_limit, search_window)
        if store and store != "memory":
            self.burst.bucket = _shared_bucket(store, f"{key}_burst", self.burst.rate)
            self.search.bucket = _shared_bucket(store, f"{key}_search", self.search.rate)
        self.clock = clock
        self.sleep = sleep
        self.waited_seconds = 0.0
        self._lock = threading.Lock()

    def acquire(self, *, search: bool = False) -> float:
        """Block until one request (a search if ``search``) may go out; return seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                wait = self.search.take(now) if search else 0.0
                if wait <= 0:
                    wait = self.burst.take(now)
                if wait <= 0:
                    self.waited_seconds += waited
                    return waited
            # Sleep outside the lock so other threads can take their own turns.
            self.sleep(wait)
            waited += wait

    def close(self) -> None:
        self.burst.close()
        self.search.close()


def store_label(store: str) -> str:
    """The store without credentials (``redis://:secret@host`` → ``redis://host``): for logs."""
    if "://" not in store:
        return store or "memory"
    scheme, rest = store.split("://", 1)
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def _shared_bucket(store: str, name: str, rate: Rate) -> AbstractBucket:
    """A pyrate-limiter bucket in the shared store ``store`` (SQLite file or Redis)."""
    if store.startswith("sqlite:///"):
        from pyrate_limiter import SQLiteBucket

        path = Path(store.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file lock serialises check-and-insert across processes (WAL mode underneath).
        return SQLiteBucket.init_from_file(
            [rate], table=name, db_path=str(path), create_new_table=True, use_file_lock=True
        )
    if store.startswith(("redis://", "rediss://", "unix://")):
        from pyrate_limiter import RedisBucket
        from pyrate_limiter.buckets.redis_bucket import LuaScript
        from redis import Redis

        # The bucket's script counts the window as [now - interval, now]. Processes read their
        # clocks before their scripts run, so an entry logged by another process a fraction of
        # a millisecond "later" would not be counted (measured: 7 in a window of 6 with two
        # processes). Counting up to +inf keeps every admitted entry in the count.
        upper = "redis.call('ZCOUNT', bucket, window_start, now)"
        if upper not in LuaScript.PUT_ITEM:
            raise RuntimeError("pyrate-limiter's Redis script changed: review the limiter")
        script = LuaScript.PUT_ITEM.replace(
            upper, "redis.call('ZCOUNT', bucket, window_start, '+inf')"
        )
        client: Any = Redis.from_url(store, socket_timeout=10, socket_connect_timeout=5)
        return RedisBucket([rate], client, f"crmhub:ratelimit:{name}", client.script_load(script))
    raise ValueError(
        f"unknown rate-limit store {store_label(store)!r}: use 'memory', "
        "'sqlite:///path/ratelimit.db' or 'redis://host:6379/0'"
    )


_REGISTRY: dict[tuple[str, str], PortalLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


# A forked child (a multiprocessing start method) must not reuse the parent's store connections
# (SQLite handles and sockets are not fork-safe): it opens its own on first use.
def _after_fork() -> None:
    global _REGISTRY_LOCK
    _REGISTRY.clear()
    _REGISTRY_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def portal_key(base_url: str, credential: str) -> str:
    """The registry key of a portal: base URL + a digest of the credential (never the secret)."""
    digest = hashlib.sha256(credential.encode("utf-8")).hexdigest()[:16]
    return f"{base_url.rstrip('/')}#{digest}"


def bucket_key(base_url: str, credential: str) -> str:
    """The portal's name in a shared store: a digest only (safe as a table or Redis key)."""
    return "hs_" + hashlib.sha256(portal_key(base_url, credential).encode()).hexdigest()[:20]


def shared_limiter(
    base_url: str,
    credential: str,
    *,
    burst_limit: int,
    burst_window_seconds: float,
    search_per_second: float,
    store: str = "",
) -> PortalLimiter:
    """The process-wide limiter of one portal (and store), created on first use.

    The first connector's limits win within a process; a later one with different figures reuses
    the existing limiter, because two limiters for one portal would each allow the full burst.
    Across processes the log is shared through ``store`` and each process enforces its own
    configured limits against it (configure them alike).
    """
    key = (portal_key(base_url, credential), store)
    with _REGISTRY_LOCK:
        limiter = _REGISTRY.get(key)
        if limiter is None:
            limiter = PortalLimiter(
                burst_limit,
                burst_window_seconds,
                search_per_second,
                store=store,
                key=bucket_key(base_url, credential),
            )
            _REGISTRY[key] = limiter
        return limiter
