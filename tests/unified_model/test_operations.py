"""The operator's settings and check values: operations.yaml loads with its documented defaults,
environment variables override the schedules, a bad key or value is refused in one line naming
it, and the freshness, quota and writeback verdicts computed over the store say what failed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from unified_model import tables as t
from unified_model.operations import (
    Operations,
    OperationsError,
    load_operations,
    newest_record_freshness,
    quota_verdict,
    write_problems,
    write_problems_markdown,
    writeback_verdicts,
)
from unified_model.store import HubStore

REPO_FILE = Path(__file__).resolve().parents[2] / "config" / "operations.yaml"
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def test_the_shipped_file_equals_the_built_in_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CRMHUB_SYNC_CRON", "CRMHUB_RECONCILE_CRON", "CRMHUB_SCHEDULE_TIMEZONE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CRMHUB_SCHEDULES", raising=False)
    assert load_operations(REPO_FILE) == Operations()
    assert Operations().schedules.sync_cron == "*/15 * * * *"


def test_environment_overrides_the_schedules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_SYNC_CRON", "*/5 * * * *")
    monkeypatch.setenv("CRMHUB_SCHEDULE_TIMEZONE", "America/New_York")
    monkeypatch.setenv("CRMHUB_SCHEDULES", "stopped")
    ops = load_operations(tmp_path / "missing.yaml")
    assert ops.schedules.sync_cron == "*/5 * * * *"
    assert ops.schedules.timezone == "America/New_York"
    assert ops.schedules_running(on_sandbox=True) is False


@pytest.mark.parametrize(
    ("start", "sandbox", "running"),
    [
        ("auto", True, True),
        ("auto", False, False),
        ("running", False, True),
        ("stopped", True, False),
    ],
)
def test_schedules_run_out_of_the_box_only_against_the_sandbox(
    start: str, sandbox: bool, running: bool
) -> None:
    ops = Operations.model_validate({"schedules": {"start": start}})
    assert ops.schedules_running(on_sandbox=sandbox) is running


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("schedules:\n  sync_crn: '* * * * *'\n", {}, "schedules.sync_crn: unknown key"),
        ("schedules:\n  timezone: Mars/Olympus\n", {}, "'Mars/Olympus' is not an IANA time zone"),
        ("runs:\n  max_runtime_minutes: 0\n", {}, "runs.max_runtime_minutes"),
        ("", {"CRMHUB_SYNC_CRON": "every 15 minutes"}, "CRMHUB_SYNC_CRON: 'every 15 minutes' is"),
        ("schedules: [1\n", {}, "not valid YAML"),
    ],
)
def test_a_bad_setting_is_refused_in_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str], expected: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "operations.yaml"
    path.write_text(text)
    with pytest.raises(OperationsError) as info:
        load_operations(path)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_newest_record_freshness_per_kind(sqlite_store: HubStore) -> None:
    store = sqlite_store
    ops = Operations()
    assert newest_record_freshness(store, "salesforce", "account", None, NOW).passed
    store.upsert_rows(
        t.SourceAccount,
        [
            {
                "source": "salesforce",
                "source_id": "001A",
                "modified_at": NOW - dt.timedelta(days=9),
            },
            {
                "source": "salesforce",
                "source_id": "001B",
                "modified_at": NOW - dt.timedelta(days=8),
            },
            {"source": "hubspot", "source_id": "9", "modified_at": NOW - dt.timedelta(hours=1)},
        ],
    )
    stale = newest_record_freshness(
        store, "salesforce", "account", ops.freshness.newest_record_limit("account"), NOW
    )
    assert not stale.passed
    assert stale.values == {"newest_record_age_hours": 192.0, "limit_hours": 168.0}
    assert "salesforce is 192.0 h old, above 168.0 h" in stale.detail
    fresh = newest_record_freshness(
        store, "hubspot", "account", ops.freshness.newest_record_limit("account"), NOW
    )
    assert fresh.passed and fresh.values["newest_record_age_hours"] == 1.0
    assert ops.freshness.newest_record_limit("owner") is None  # owners rarely change


def test_quota_stop_is_a_failed_verdict_that_says_it_resumes() -> None:
    assert quota_verdict("hubspot", "contact", None, []).passed
    stopped = quota_verdict("hubspot", "contact", "quota", ["DAILY limit reached"])
    assert not stopped.passed and stopped.values == {"stopped_early": 1}
    assert "DAILY limit reached" in stopped.detail and "resumes" in stopped.detail


def test_write_problems_name_the_customer_and_the_reason(sqlite_store: HubStore) -> None:
    store = sqlite_store
    with store.session() as s:
        s.add(t.Customer(id="HUB-1", name="Acme | GmbH"))
        for key in ("handover_status", "health_score"):
            s.add(
                t.WriteAudit(
                    run_id="r1",
                    source="salesforce",
                    source_id="001A",
                    customer_id="HUB-1",
                    field_key=key,
                    outcome="failed",
                    reason="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                )
            )
        s.add(
            t.WriteAudit(
                run_id="r1",
                source="salesforce",
                source_id="001B",
                field_key="health_score",
                outcome="skipped",
                reason="record no longer exists",
            )
        )
        s.add(
            t.WriteAudit(
                run_id="r1",
                source="salesforce",
                source_id="001C",
                field_key="health_score",
                outcome="ok",
            )
        )
        s.add(
            t.WriteAudit(
                run_id="r2",
                source="salesforce",
                source_id="001D",
                field_key="health_score",
                outcome="failed",
                reason="other run",
            )
        )
        s.commit()
    problems = write_problems(store, "r1", "salesforce")
    assert [(p.customer, p.source_id, p.fields, p.outcome) for p in problems] == [
        ("Acme | GmbH", "001A", "handover_status +1", "failed"),
        ("-", "001B", "health_score", "refused (record gone)"),
    ]
    table = write_problems_markdown(problems)
    assert "| Acme / GmbH | 001A | handover_status +1 | failed | FIELD_CUSTOM_VALIDATION" in table
    assert write_problems_markdown([]) == "Every record was written."


def test_writeback_verdicts() -> None:
    ok = writeback_verdicts("hubspot", failed=0, skipped=0, provisioning_notes=[])
    assert all(v.passed for v in ok.values())
    bad = writeback_verdicts(
        "hubspot", failed=2, skipped=1, provisioning_notes=["crmhub_health_score: read-only"]
    )
    assert {k: v.passed for k, v in bad.items()} == {
        "no_failed_writes": False,
        "no_refused_records": False,
        "hub_fields_provisioned": False,
    }
    assert bad["no_failed_writes"].values == {"records_failed": 2}
    assert "crmhub fields ensure" in bad["hub_fields_provisioned"].detail
