"""The HubSpot connector's client-side limiter never lets more than the configured burst into any
rolling window (nor more searches per second than configured), is shared by every connector of
one portal and credential in the process, and keeps a real sync under the portal's burst limit
where an unlimited client runs into 429s."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import FakeClock, ago, calls, connector, drain, sandbox_fixture, seed  # noqa: F401

from connectors.errors import TransientError
from connectors.hubspot.limiter import PortalLimiter, portal_key, shared_limiter
from sandbox.control import set_config
from sandbox.runner import Sandbox
from sandbox.state import HS


def _max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_burst_and_search_windows_hold_on_a_fake_clock() -> None:
    clock = FakeClock()
    limiter = PortalLimiter(5, 10.0, 2, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    searches: list[float] = []
    for i in range(23):
        search = i % 2 == 0
        limiter.acquire(search=search)
        sent.append(clock.now)
        if search:
            searches.append(clock.now)
    assert _max_in_window(sent, 10.0) == 5
    assert _max_in_window(searches, 1.0) <= 2
    assert sent[-1] - sent[0] >= 40.0  # 23 requests at 5 per 10 s need four full windows
    assert sum(clock.sleeps) == limiter.waited_seconds > 0

    slow = PortalLimiter(100, 10.0, 0.5, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(3):
        slow.acquire(search=True)
    # A fractional rate: one search per 2 s (plus the log's millisecond past each boundary).
    assert 4.0 < clock.now - start < 4.01


def test_one_limiter_per_portal_and_credential() -> None:
    a = shared_limiter(
        "https://x.test/", "tok-1", burst_limit=9, burst_window_seconds=10, search_per_second=4
    )
    b = shared_limiter(
        "https://x.test", "tok-1", burst_limit=50, burst_window_seconds=10, search_per_second=4
    )
    c = shared_limiter(
        "https://x.test", "tok-2", burst_limit=9, burst_window_seconds=10, search_per_second=4
    )
    assert a is b and a is not c and a.burst.limit == 9
    assert "tok-1" not in portal_key("https://x.test", "tok-1")


def test_a_sync_stays_under_the_portal_burst_limit(sb: Sandbox) -> None:
    """The emulator's burst window runs on real time, so this test waits about 1.5 s."""
    for i in range(7):
        seed(sb.state, "companies", {"name": str(i)}, rid=str(10 + i), created=ago(sb, 3600))
    set_config(sb.state, HS, {"burst_limit": 3, "burst_window_seconds": 0.5})
    # The client counts at send time, the portal at arrival: keep a margin, as the default
    # (100 per 10 s) does below every tier's real limit.
    one = {"search_page_size": 1, "list_page_size": 1, "association_batch_size": 1}
    limited = connector(sb, limiter=PortalLimiter(3, 0.7, 100), **one)
    records, _, _ = drain(limited.read("account", None))
    assert len(records) == 7
    statuses = [c[2] for c in calls(sb, 0)]
    assert statuses == [200] * 8  # properties + 7 list pages, never a 429

    head = sb.state.ledger_head()
    unlimited = connector(sb, **one)
    with contextlib.suppress(TransientError):  # its retries on a fake clock are spent at once
        drain(unlimited.read("account", None))
    assert 429 in [c[2] for c in calls(sb, head)]
