"""The scheduled jobs' executor: on a fresh hub database, a sandbox sync (tiny profile) on Dagster's
multiprocess executor succeeds with every step in its own process, the per-CRM pools (limit 2
in dagster.yaml) never let more steps of one CRM run at the same time, the executor never runs more
than ``CRMHUB_MAX_CONCURRENT_STEPS``, and the two CRMs' steps overlap. The executor holds a CRM's
extra steps itself (``CRMHUB_CRM_STEPS``), so no step waits on a pool's back-off."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.definitions import all_assets
from sandbox.runner import Sandbox
from unified_model import settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def sync_job() -> dg.JobDefinition:
    from assets.definitions import build_definitions

    return build_definitions().resolve_job_def("sync_job")


@pytest.mark.usefixtures("fresh_forkserver")
def test_multiprocess_sync_keeps_each_crm_pool_to_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith(("CRMHUB_", "DAGSTER_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    (tmp_path / "dagster").mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", tmp_path / "dagster" / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    with Sandbox(tmp_path / "home" / "sandbox") as sb:
        sb.seed("tiny", seed=13)
        sb.write_discovery()
        assert sync_job().executor_def.name == "multiprocess"
        with dg.DagsterInstance.get() as instance:
            result = dg.execute_job(dg.reconstructable(sync_job), instance=instance)
            assert result.success
            records = instance.get_records_for_run(result.run_id).records

    spans: dict[str, list[float]] = {}
    pids: set[int] = set()
    blocked: list[str] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if "blocked by limit for pool" in (event.message or ""):
            blocked.append(event.step_key)
        if event.event_type_value == "STEP_START":
            spans[event.step_key] = [record.event_log_entry.timestamp]
            pids.add(event.pid or 0)
        elif event.event_type_value == "STEP_SUCCESS":
            spans[event.step_key].append(record.event_log_entry.timestamp)
    # every asset, the blocking unify checks (one step), 1 multi-asset freshness check
    assert len(spans) == len(all_assets) + 1 + 1
    assert os.getpid() not in pids and len(pids) > 2

    def crm_spans(crm: str) -> list[tuple[float, float]]:
        return sorted((a, b) for key, (a, b) in spans.items() if key.startswith(f"{crm}__"))

    def most_at_once(steps: list[tuple[float, float]]) -> int:
        edges = sorted([(a, 1) for a, _ in steps] + [(b, -1) for _, b in steps])
        return max(itertools.accumulate(delta for _, delta in edges))

    limit = yaml.safe_load((ROOT / "dagster.yaml").read_text())["concurrency"]["pools"]
    for crm in ("salesforce", "hubspot"):
        assert 1 <= most_at_once(crm_spans(crm)) <= limit["default_limit"], crm
    assert most_at_once(list(spans.values())) <= settings.max_concurrent_steps()
    # HubSpot has more steps than its pool: the executor held them, none polled the pool
    assert sum(key.startswith("hubspot__") for key in spans) > limit["default_limit"]
    assert blocked == []
    # the two CRMs' reads ran side by side at least once
    assert any(a < d and c < b for a, b in crm_spans("salesforce") for c, d in crm_spans("hubspot"))
