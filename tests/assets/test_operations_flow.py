"""Schedules and alerts evaluated through Dagster's test APIs on real runs: a schedule tick asks for
exactly one run with a key stable for that tick; schedules start running against the sandbox and
stopped against real CRMs; a failed run (no CRM configured) and a run that ends with failing checks
are posted to the operator's channel (a local HTTP receiver standing in for the webhook), and with
no channel configured the alert is logged in one clear line; a dry run is tagged as one."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets import alerts
from assets.definitions import build_definitions
from assets.extract import extract_assets
from crmhub import settings
from sandbox.runner import Sandbox

pytestmark = pytest.mark.e2e

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def receiver() -> Iterator[dict[str, Any]]:
    """A webhook on a loopback ephemeral port that keeps every JSON body posted to it."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"json://127.0.0.1:{server.server_address[1]}/hook", "received": received}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No CRM credentials, a fresh hub folder and database, no sandbox running."""
    for key in list(os.environ):
        if key.startswith("CRMHUB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    return tmp_path


@pytest.fixture
def sandbox_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A seeded sandbox (tiny) serving under CRMHUB_HOME, found through its discovery file."""
    with Sandbox(settings.sandbox_home()) as sb:
        sb.seed("tiny", seed=7)
        sb.write_discovery()
        yield sb


@pytest.fixture
def stale_sandbox_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """``sandbox_env`` seeded as of two days ago: its newest record is more than a day old at
    any time of day (seeded today, a record can be half an hour old just after midnight)."""
    with Sandbox(settings.sandbox_home()) as sb:
        sb.state.set_clock(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        sb.seed("tiny", seed=7)
        sb.write_discovery()
        yield sb


def _schedule(defs: dg.Definitions, name: str) -> dg.ScheduleDefinition:
    return defs.get_repository_def().get_schedule_def(name)


def test_a_tick_asks_for_one_run_with_a_stable_key(clean_env: Path) -> None:
    defs = build_definitions()
    schedule = _schedule(defs, "sync_schedule")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    tick = dt.datetime(2026, 12, 5, 9, 15, tzinfo=dt.UTC)
    with dg.DagsterInstance.ephemeral() as instance:
        requests = [
            schedule.evaluate_tick(
                dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
            ).run_requests
            for _ in range(2)
        ]
        later = schedule.evaluate_tick(
            dg.build_schedule_context(
                instance=instance, scheduled_execution_time=tick + dt.timedelta(minutes=15)
            )
        ).run_requests
    assert [len(r or []) for r in requests] == [1, 1]
    first, again = requests[0][0], requests[1][0]  # type: ignore[index]
    assert first.run_key == again.run_key == f"sync_schedule:{tick.isoformat()}"
    assert later and later[0].run_key != first.run_key
    assert first.tags["crmhub/trigger"] == "sync_schedule"


def test_schedules_start_stopped_against_real_crms(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("CRMHUB_HS_ACCESS_TOKEN", "pat-test-value")
    defs = build_definitions()
    for name in ("sync_schedule", "reconcile_schedule"):
        assert _schedule(defs, name).default_status == dg.DefaultScheduleStatus.STOPPED
    # the alert sensors run out of the box in every mode
    for sensor in defs.get_repository_def().sensor_defs:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_schedules_run_and_resources_find_the_running_sandbox(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_SYNC_CRON", "*/5 * * * *")
    defs = build_definitions()
    assert os.environ["CRMHUB_SF_INSTANCE_URL"] == sandbox_env.info.salesforce_url
    schedule = _schedule(defs, "sync_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "*/5 * * * *"


def test_failed_run_is_posted_to_the_channel(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, receiver: dict[str, Any]
) -> None:
    # no credentials and no sandbox: every CRM step fails with the one-line hint
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("sync_job").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    monkeypatch.setenv(alerts.ALERT_URL_ENV, receiver["url"])
    context = dg.build_run_status_sensor_context(
        sensor_name="crmhub_run_failure_alert",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    alerts.run_failure_alert(context)
    assert len(receiver["received"]) == 1
    posted = receiver["received"][0]
    assert posted["title"] == "crmhub: sync_job failed"
    assert result.run_id in posted["message"]
    assert (
        "step salesforce__accounts failed: AuthenticationError: Salesforce is not configured"
        in posted["message"]
    )
    assert "crmhub sandbox serve" in posted["message"]
    # the alert is recorded on the run, where the Runs page shows it
    assert instance.get_run_by_id(result.run_id).tags["crmhub/alert"] == "sent"  # type: ignore[union-attr]


def test_without_a_channel_the_alert_is_logged_in_one_line(
    clean_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Log:
        lines: list[str] = []

        def warning(self, line: str) -> None:
            self.lines.append(line)

    log = Log()
    sent = alerts.send(alerts.Alert("crmhub: sync_job failed", "sync_job", "r-1", ["x"]), log)
    assert sent is False
    assert len(log.lines) == 1
    assert log.lines[0].startswith("crmhub alerts: no channel configured")
    assert "CRMHUB_ALERT_URL" in log.lines[0] and "sync_job failed" in log.lines[0]


def test_run_with_failing_checks_is_posted_and_dry_run_is_tagged(
    stale_sandbox_env: Sandbox,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: dict[str, Any],
) -> None:
    # a freshness limit the seeded data cannot meet: the warning checks fail, the run succeeds
    config = clean_env / "config"
    shutil.copytree(REPO_CONFIG, config)
    (config / "operations.yaml").write_text(
        "freshness:\n  newest_record_max_hours: 1\n  newest_record_max_hours_per_kind: {}\n"
    )
    monkeypatch.setenv("CRMHUB_CONFIG_DIR", str(config))
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("sync_dry_run_job").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert result.success
    assert instance.get_run_by_id(result.run_id).tags["crmhub/dry_run"] == "true"  # type: ignore[union-attr]
    failed = {
        (e.asset_key.to_user_string(), e.check_name)
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }
    assert ("salesforce/accounts", "newest_record_fresh") in failed
    assert all(name == "newest_record_fresh" for _, name in failed)

    success = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
    monkeypatch.setenv(alerts.ALERT_URL_ENV, receiver["url"])
    context = dg.build_run_status_sensor_context(
        sensor_name="crmhub_failed_checks_alert",
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )
    alerts.failed_checks_alert(context)
    assert len(receiver["received"]) == 1
    message = receiver["received"][0]["message"]
    assert (
        receiver["received"][0]["title"] == "crmhub: sync_dry_run_job finished with failing checks"
    )
    assert "check salesforce/accounts:newest_record_fresh failed (WARN)" in message
    # every extract asset, no more
    assert message.count("\n- check ") == len(failed) == len(extract_assets)
