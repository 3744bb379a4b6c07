"""``crmhub sync --executor multiprocess``: the schedules' executor from the command line.

Why: a large first sync reads both CRMs at the same time when its steps run in their own
processes. The run must still hold the hub's writer lock under the CLI's run id, show progress
(read from the run's event log), keep Dagster's per-step DEBUG lines off the terminal, and leave
the hub exactly as an in-process run does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from sandbox.runner import Sandbox
from tests.assets.test_celery import _tables
from tests.crmhub.cli_support import cli

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


#: The one call that sizes every Salesforce object's first sync.
RECORD_COUNT = "/limits/recordCount"


@pytest.fixture
def running_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Sandbox]]:
    """A seeded sandbox the CLI finds by itself (no credentials), and a Dagster home with the
    project's instance file (pools, run queue) like a user's."""
    for key in list(os.environ):
        if key.startswith(("CRMHUB_", "DAGSTER_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with Sandbox(tmp_path / "home" / "sandbox") as sb:
        sb.seed("tiny", seed=11)
        sb.write_discovery()
        yield tmp_path, sb


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("fresh_forkserver")
def test_multiprocess_sync_reads_both_crms_at_once_and_equals_an_in_process_run(
    running_sandbox: tuple[Path, Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp, sb = running_sandbox
    parallel_db = f"sqlite:///{tmp / 'parallel.db'}"
    monkeypatch.setenv("CRMHUB_DATABASE_URL", parallel_db)
    head = sb.state.ledger_head()
    done = cli("sync", "--dry-run", "--executor", "multiprocess")
    assert done.code == 0, done.text[-3000:]
    # eight Salesforce steps in eight processes, one record-count call (as in one process)
    counted = [r for r in sb.state.ledger(head, crm="salesforce") if RECORD_COUNT in r["path"]]
    assert len(counted) == 1, counted
    assert "dagster - DEBUG" not in done.text  # the step processes' own lines go to the log
    assert "salesforce accounts: done" in done.err and "hubspot contacts: done" in done.err
    assert "Extracted (records incl. deletions, API calls)" in done.out
    (log,) = (tmp / "home" / "logs").glob("*.log")
    assert "STEP_WORKER_STARTED" in log.read_text()

    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(limit=1)
        assert run.run_id == log.stem  # the CLI's run id (it holds the writer lock for it)
        starts, ends, pids = {}, {}, set()
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or not entry.step_key:
                continue
            if event.event_type_value == "STEP_START":
                starts[entry.step_key] = entry.timestamp
                pids.add(event.pid)
            elif event.event_type_value == "STEP_SUCCESS":
                ends[entry.step_key] = entry.timestamp
    assert os.getpid() not in pids and len(pids) == len(starts)  # one process per step
    sf = [(starts[k], ends[k]) for k in starts if k.startswith("salesforce__") and k in ends]
    hs = [(starts[k], ends[k]) for k in starts if k.startswith("hubspot__") and k in ends]
    # a Salesforce step and a HubSpot step ran at the same time
    assert any(a0 < b1 and b0 < a1 for a0, a1 in sf for b0, b1 in hs), (sf, hs)

    inproc_db = f"sqlite:///{tmp / 'inproc.db'}"
    monkeypatch.setenv("CRMHUB_DATABASE_URL", inproc_db)
    head = sb.state.ledger_head()
    again = cli("sync", "--dry-run", "-q")
    assert again.code == 0, again.text[-3000:]
    counted = [r for r in sb.state.ledger(head, crm="salesforce") if RECORD_COUNT in r["path"]]
    assert len(counted) == 1, counted
    parallel, local = _tables(parallel_db), _tables(inproc_db)
    assert parallel.keys() == local.keys()
    assert sum(len(rows) for rows in local.values()) > 500
    for name in local:
        assert len(parallel[name]) == len(local[name]), name
        differing = {
            key
            for a, b in zip(parallel[name], local[name], strict=True)
            for key in a
            if a[key] != b[key]
        }
        assert not differing, f"{name}: columns {sorted(differing)} differ"


@pytest.mark.usefixtures("fresh_forkserver")
def test_multiprocess_sync_starts_the_fork_server_before_its_checks_and_stops_it_on_a_problem(
    running_sandbox: tuple[Path, Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step processes' fork server imports while the CLI checks the configuration and the
    CRMs (not after, when the run forks its first step); a sync stopped by a check leaves none
    behind."""
    from assets import forkserver
    from crmhub import doctor

    tmp, sb = running_sandbox
    monkeypatch.setenv("CRMHUB_DATABASE_URL", f"sqlite:///{tmp / 'hub.db'}")
    # HubSpot configured, and unreachable: the preflight fails on it
    monkeypatch.setenv("CRMHUB_HS_ACCESS_TOKEN", "pat-na1-not-a-real-token")
    monkeypatch.setenv("CRMHUB_HS_BASE_URL", "https://127.0.0.1:9")
    seen: list[bool] = []
    real = doctor.preflight

    def preflight(*args: object, **kwargs: object) -> object:
        seen.append(forkserver.running())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(doctor, "preflight", preflight)
    head = sb.state.ledger_head()
    done = cli("sync", "--executor", "multiprocess")
    assert done.code == 2, done.text
    assert "HubSpot" in done.err and "CRMHUB_HS_BASE_URL" in done.err
    assert seen == [True]  # already importing while the CRMs were checked
    assert not forkserver.running()
    # stopped before extraction: the Salesforce sandbox saw the checks, no query
    assert not [r for r in sb.state.ledger(head) if "/query" in r["path"] or "/jobs/" in r["path"]]
