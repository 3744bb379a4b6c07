"""A full handover evaluation in worker processes stores exactly what one process stores.

Why: the first sync, the first sync of each business day and a rules change evaluate every
customer; from ``PARALLEL_FROM`` customers on the chunks go to ``CRMHUB_HUB_WORKERS`` processes
(real spawned processes here, on a copy of the same synced hub database), each writing its own
chunks. Decisions, values, transitions and the run's figures must not depend on it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tests.e2e.hub_support import sandbox_hub
from tests.e2e.test_incremental import _derived, _run
from unified_model import settings
from unified_model import tables as t
from unified_model.insights import compute_customer_insights
from unified_model.rules import load_rules
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with sandbox_hub(tmp_path, monkeypatch, "tiny", 17) as env:
        yield env


def _transitions(store: HubStore) -> list[tuple[Any, ...]]:
    return sorted(
        (r.customer_id, r.from_status, r.to_status, r.at, repr(r.reasons))
        for r in store.all(t.HandoverTransition)
    )


def test_worker_processes_store_what_one_process_stores(
    hub_env: dict[str, Any], tmp_path: Path
) -> None:
    _run(dg.DagsterInstance.ephemeral())
    source = Path(hub_env["db_url"].removeprefix("sqlite:///"))
    rules = load_rules(settings.config_dir() / "rules.yaml")
    # 40 days on: dates and zone rules move, so decisions and values change and transitions
    # are recorded (not only rewritten as they were)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    results = {}
    for name, workers in (("serial", 1), ("workers", 2)):
        copy = tmp_path / f"{name}.db"
        shutil.copyfile(source, copy)
        store = HubStore(f"sqlite:///{copy}")
        before = len(store.all(t.HandoverTransition))
        stats = compute_customer_insights(
            store,
            rules,
            now=later,
            incremental=False,
            workers=workers,
            parallel_from=1,
            chunk_size=7,
        )
        assert stats.workers == workers
        results[name] = (
            (stats.evaluated, stats.changed, stats.transitions, stats.by_status),
            _derived(store),
            _transitions(store),
            len(store.all(t.HandoverTransition)) - before,
        )
        store.dispose()
    serial, parallel = results["serial"], results["workers"]
    assert serial[0][0] > 7 * 2  # several chunks, so both workers had some
    assert serial[0][1] > 0 and serial[3] == serial[0][2]
    assert parallel == serial


def test_bad_worker_setting_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMHUB_HUB_WORKERS", "two")
    with pytest.raises(settings.SettingsError, match=r"CRMHUB_HUB_WORKERS='two'.*whole number"):
        settings.hub_workers()
    monkeypatch.setenv("CRMHUB_HUB_WORKERS", "3")
    assert settings.hub_workers() == 3
    monkeypatch.delenv("CRMHUB_HUB_WORKERS")
    assert 1 <= settings.hub_workers() <= 4
