"""Shared helpers of the HubSpot connector tests (no tests of its own): a sandbox portal whose
limits do not get in the way, connectors on a fake clock, seeding and request counting.

Why a fake clock: the connector's client-side limiter and backoff sleep for real in production;
in tests they run on a clock that only moves when they "sleep", so nothing waits and every wait
is recorded for the assertions. The sandbox's own clock (record times, ``Date`` headers) is
advanced with ``state.advance_clock`` instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Page
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.limiter import PortalLimiter
from connectors.records import AnyRecord
from sandbox.control import set_config
from sandbox.hubspot.testing import link, seed
from sandbox.runner import Sandbox
from sandbox.state import HS

__all__ = ["FakeClock", "ago", "calls", "connector", "drain", "link", "sandbox_fixture", "seed"]


@dataclass
class FakeClock:
    """A monotonic clock that advances only when something sleeps on it."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)


@pytest.fixture(name="sb")
def sandbox_fixture(tmp_path: Path) -> Iterator[Sandbox]:
    """A running sandbox whose HubSpot limits are out of the way (limit tests set their own)."""
    with Sandbox(tmp_path) as sandbox:
        set_config(
            sandbox.state,
            HS,
            {"burst_limit": 100_000, "search_per_second": 100_000, "retry_after_seconds": 1},
        )
        yield sandbox


def connector(
    sb: Sandbox,
    clock: FakeClock | None = None,
    *,
    limiter: PortalLimiter | None = None,
    **overrides: Any,
) -> HubSpotConnector:
    """A connector for the sandbox portal on a fake clock with a private (generous) limiter."""
    clock = clock or FakeClock()
    info = sb.info
    options: dict[str, Any] = {
        "base_url": info.hubspot_url,
        "ca_bundle": info.ca_bundle,
        "access_token": info.hs_token,
    }
    options.update(overrides)
    config = HubSpotConfig(**options)
    limiter = limiter or PortalLimiter(10_000, 10.0, 10_000, clock=clock, sleep=clock.sleep)
    return HubSpotConnector(config, limiter=limiter, sleep=clock.sleep, clock=clock)


def drain(pages: Iterable[Page]) -> tuple[list[AnyRecord], dict[str, Any] | None, list[Page]]:
    """Every record, the last cursor and the pages of a read."""
    records: list[AnyRecord] = []
    cursor: dict[str, Any] | None = None
    seen: list[Page] = []
    for page in pages:
        records.extend(page.records)
        cursor = page.cursor
        seen.append(page)
    return records, cursor, seen


def calls(sb: Sandbox, since: int) -> list[tuple[str, str, int]]:
    """HubSpot requests since a ledger position: (method, path without query, status)."""
    return [
        (r["method"], r["path"].split("?")[0], r["status"])
        for r in sb.state.ledger(since=since, crm=HS)
    ]


def ago(sb: Sandbox, seconds: float) -> dt.datetime:
    """A sandbox-clock instant ``seconds`` in the past."""
    return sb.state.now() - dt.timedelta(seconds=seconds)
