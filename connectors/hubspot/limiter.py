"""Client-side rate limiting for one HubSpot portal, shared by every connector in the process.

Why client-side: HubSpot's burst limit (100-250 requests per rolling 10 s, depending on the tier)
and its search limit (4-5 per second) belong to the *portal*, not to one connector instance.
When the hub extracts companies, contacts and deals at the same time, each instance hitting 429s
and backing off would waste requests and slow everything down. So every instance talking to the
same portal with the same credentials draws from one limiter (module-level registry keyed by the
base URL and a digest of the credential; the raw token is never kept as a key).

Why a rolling window rather than a refilling bucket: a classic token bucket of capacity N that
refills N per 10 s lets through up to 2N requests in some 10-second span (a full bucket spent at
the end of one window, then the refill). HubSpot counts a *rolling* window, so the limiter keeps
the send times of the last N requests and waits until the oldest leaves the window: the strict
form of the bucket, never more than N in any window. Memory is N floats.

Sleep-based (the connector is synchronous), with injectable ``clock`` and ``sleep`` so that tests
run instantly on a fake clock.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time
from collections.abc import Callable


class RollingWindow:
    """At most ``limit`` events in any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._times: collections.deque[float] = collections.deque()

    def wait_time(self, now: float) -> float:
        """Seconds until one more event fits (0 if it fits now)."""
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window - now

    def record(self, now: float) -> None:
        self._times.append(now)


class PortalLimiter:
    """The burst window for every request plus the per-second window for searches."""

    def __init__(
        self,
        burst_limit: int,
        burst_window_seconds: float,
        search_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.burst = RollingWindow(burst_limit, burst_window_seconds)
        # Fractional rates (e.g. 0.5/s) become "1 per 2 s"; integral ones "N per second".
        if search_per_second >= 1:
            self.search = RollingWindow(int(search_per_second), 1.0)
        else:
            self.search = RollingWindow(1, 1.0 / search_per_second)
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
                wait = self.burst.wait_time(now)
                if search:
                    wait = max(wait, self.search.wait_time(now))
                if wait <= 0:
                    self.burst.record(now)
                    if search:
                        self.search.record(now)
                    self.waited_seconds += waited
                    return waited
            # Sleep outside the lock so other threads can compute their own waits.
            self.sleep(wait)
            waited += wait


_REGISTRY: dict[str, PortalLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def portal_key(base_url: str, credential: str) -> str:
    """The registry key of a portal: base URL + a digest of the credential (never the secret)."""
    digest = hashlib.sha256(credential.encode("utf-8")).hexdigest()[:16]
    return f"{base_url.rstrip('/')}#{digest}"


def shared_limiter(
    base_url: str,
    credential: str,
    *,
    burst_limit: int,
    burst_window_seconds: float,
    search_per_second: float,
) -> PortalLimiter:
    """The process-wide limiter of one portal, created on first use.

    The first connector's limits win; a later one with different figures reuses the existing
    limiter, because two limiters for one portal would each allow the full burst.
    """
    key = portal_key(base_url, credential)
    with _REGISTRY_LOCK:
        limiter = _REGISTRY.get(key)
        if limiter is None:
            limiter = PortalLimiter(burst_limit, burst_window_seconds, search_per_second)
            _REGISTRY[key] = limiter
        return limiter
