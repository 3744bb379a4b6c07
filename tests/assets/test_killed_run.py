"""A killed sync does not stay STARTED forever: after ``crmhub sync`` is SIGKILLed mid-extract, its
run in the hub's own Dagster instance ($CRMHUB_HOME/dagster) is still STARTED, and one pass of
Dagster's run monitoring (the daemon's loop, enabled by the project's dagster.yaml) past the run's
maximum runtime (operations.yaml runs.max_runtime_minutes) marks it failed, which the run-failure
alert then posts."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

from sandbox.runner import Sandbox

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_killed_sync_is_marked_failed_by_run_monitoring(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMHUB_", "DAGSTER_"))}
    env |= {
        "CRMHUB_HOME": str(home),
        "CRMHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        # the hub's own crash point: SIGKILL after the first stored page of the first extract
        "CRMHUB_CRASH_AT": "extract.after_store",
    }
    with Sandbox(home / "sandbox") as sb:
        sb.seed("tiny", seed=3)
        sb.write_discovery()  # `crmhub sync` reuses it instead of starting its own
        proc = subprocess.run(
            [sys.executable, "-m", "crmhub.cli", "sync"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr

    dagster_home = home / "dagster"
    assert (dagster_home / "dagster.yaml").exists()  # the instance followed CRMHUB_HOME
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # nobody is left to say otherwise
        assert instance.run_monitoring_enabled
        assert run.tags["dagster/max_runtime"] == "3600"

        def monitor_at(when: dt.datetime) -> dg.DagsterRunStatus:
            with (
                freeze_time(when),
                create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as ctx,
            ):
                list(execute_run_monitoring_iteration(ctx, logging.getLogger("monitoring")))
            return instance.get_run_by_id(run.run_id).status  # type: ignore[union-attr]

        now = dt.datetime.now(dt.UTC)
        assert monitor_at(now + dt.timedelta(minutes=30)) == dg.DagsterRunStatus.STARTED
        assert monitor_at(now + dt.timedelta(minutes=61)) == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        assert failure
        messages = [
            r.event_log_entry.dagster_event.message or ""
            for r in instance.get_records_for_run(run.run_id).records
            if r.event_log_entry.dagster_event is not None
        ]
        assert any("maximum runtime of 3600 seconds" in m for m in messages), messages
