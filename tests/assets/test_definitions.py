"""The Dagster code location loads with pinned asset and check keys, groups per CRM and stage,
owners, pools and run tags; resources are wired to the CRMHUB_* variables; ``dagster definitions
validate`` and ``dg list defs`` accept the project."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import dagster as dg
import pytest

from assets.definitions import build_resources, defs

SF_KINDS = [
    "accounts",
    "activities",
    "contacts",
    "deal_stages",
    "deals",
    "emails",
    "owners",
    "tickets",
]
HS_KINDS = ["accounts", "activities", "contacts", "deals", "emails", "owners", "tickets"]
EXTRACT_KEYS = [f"salesforce/{k}" for k in SF_KINDS] + [f"hubspot/{k}" for k in HS_KINDS]
ASSET_KEYS = sorted(
    [
        *EXTRACT_KEYS,
        "unified_customers",
        "handover_status",
        "customer_kpis",
        "salesforce/writeback",
        "hubspot/writeback",
    ]
)
CHECK_KEYS = sorted(
    [
        *(
            f"{key}:{name}"
            for key in EXTRACT_KEYS
            for name in ("freshness_check", "newest_record_fresh", "not_stopped_by_quota")
        ),
        *(
            f"{crm}/writeback:{name}"
            for crm in ("salesforce", "hubspot")
            for name in ("hub_fields_provisioned", "no_failed_writes", "no_refused_records")
        ),
        *(
            f"unified_customers:{name}"
            for name in (
                "children_resolved",
                "every_account_linked",
                "no_customer_without_source",
                "one_link_per_record",
            )
        ),
    ]
)


def test_asset_and_check_keys_are_pinned() -> None:
    # Keys are the UI's history: renaming one orphans its materializations and check results.
    graph = defs.get_repository_def().asset_graph
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == ASSET_KEYS
    assert sorted(k.to_user_string() for k in graph.asset_check_keys) == CHECK_KEYS
    repo = defs.get_repository_def()
    assert {j.name for j in repo.get_all_jobs()} >= {
        "sync_job",
        "sync_dry_run_job",
        "reconcile_job",
    }
    assert sorted(s.name for s in repo.schedule_defs) == ["reconcile_schedule", "sync_schedule"]
    assert sorted(s.name for s in repo.sensor_defs) == [
        "crmhub_failed_checks_alert",
        "crmhub_run_failure_alert",
        "last_read_freshness_sensor",
    ]


def test_graph_tells_the_two_crms_apart_and_names_owners_and_pools() -> None:
    graph = defs.get_repository_def().asset_graph
    for key in EXTRACT_KEYS:
        crm = key.split("/")[0]
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.group_name == f"{crm}_extract"
        assert node.pools == {crm}
        assert node.owners == ["team:crm-integration"]
        assert ("Salesforce" if crm == "salesforce" else "HubSpot") in (node.description or "")
    sf, hs = (graph.get(dg.AssetKey([crm, "accounts"])) for crm in ("salesforce", "hubspot"))
    assert "Accounts" in (sf.description or "") and "Companies" in (hs.description or "")
    assert graph.get(dg.AssetKey(["hubspot", "writeback"])).group_name == "hubspot_writeback"
    assert graph.get(dg.AssetKey("unified_customers")).owners == ["team:revops"]


def test_scheduled_jobs_are_multiprocess_tagged_per_hub_and_time_limited() -> None:
    from assets.definitions import HUB_TAG, hub_id

    repo = defs.get_repository_def()
    for name in ("sync_job", "reconcile_job", "sync_dry_run_job"):
        job = repo.get_job(name)
        assert job.executor_def.name == "multiprocess"
        assert job.tags[HUB_TAG] == hub_id()
        assert job.tags["dagster/max_runtime"] == "3600"
    assert repo.get_job("sync_dry_run_job").tags["crmhub/dry_run"] == "true"
    assert repo.get_job("sync_job").tags.get("crmhub/dry_run") is None


def test_resources_read_credentials_from_env_vars(monkeypatch: object) -> None:
    os.environ["CRMHUB_HS_ACCESS_TOKEN"] = "pat-test-value"
    try:
        resources = build_resources()
        hubspot = resources["hubspot"]
        # The resource holds a reference to the variable, not its value.
        assert isinstance(hubspot.access_token, dg.EnvVar)  # type: ignore[attr-defined]
        assert "pat-test-value" not in repr(hubspot)
    finally:
        del os.environ["CRMHUB_HS_ACCESS_TOKEN"]


def test_dagster_definitions_validate() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "assets.definitions"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dg_cli_finds_the_project() -> None:
    # `dg dev` in the README: [tool.dg] in pyproject.toml points dg at assets.definitions
    dg_cli = os.path.join(os.path.dirname(sys.executable), "dg")
    proc = subprocess.run(
        [dg_cli, "list", "defs", "--json"], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "salesforce/accounts" in proc.stdout and "sync_schedule" in proc.stdout


def test_hubspot_archived_check_interval_comes_from_its_variable(monkeypatch: object) -> None:
    # The trade-off between HubSpot delete latency and calls per run is the user's to set.
    os.environ["CRMHUB_HS_ACCESS_TOKEN"] = "pat-test-value"
    os.environ["CRMHUB_HS_ARCHIVED_CHECK_SECONDS"] = "86400"
    try:
        resources = build_resources()
        with dg.build_resources({"hubspot": resources["hubspot"]}) as built:
            connector = built.hubspot.connector()
            assert connector.config.archived_check_interval_seconds == 86400
            connector.close()
        del os.environ["CRMHUB_HS_ARCHIVED_CHECK_SECONDS"]
        with dg.build_resources({"hubspot": build_resources()["hubspot"]}) as built:
            assert built.hubspot.connector().config.archived_check_interval_seconds == 21600
    finally:
        os.environ.pop("CRMHUB_HS_ACCESS_TOKEN", None)
        os.environ.pop("CRMHUB_HS_ARCHIVED_CHECK_SECONDS", None)


def test_hubspot_first_sync_plan_comes_from_its_variable() -> None:
    # Lists by default (faster at HubSpot's limits); search on request.
    os.environ["CRMHUB_HS_ACCESS_TOKEN"] = "pat-test-value"
    try:
        with dg.build_resources({"hubspot": build_resources()["hubspot"]}) as built:
            assert built.hubspot.connector().config.first_sync_plan == "list"
        os.environ["CRMHUB_HS_FIRST_SYNC_PLAN"] = "search"
        with dg.build_resources({"hubspot": build_resources()["hubspot"]}) as built:
            assert built.hubspot.connector().config.first_sync_plan == "search"
    finally:
        os.environ.pop("CRMHUB_HS_ACCESS_TOKEN", None)
        os.environ.pop("CRMHUB_HS_FIRST_SYNC_PLAN", None)


def test_hubspot_burst_limit_comes_from_its_variable() -> None:
    # A Professional or Enterprise portal allows 190 requests per 10 s: the user says so once.
    os.environ["CRMHUB_HS_ACCESS_TOKEN"] = "pat-test-value"
    os.environ["CRMHUB_HS_BURST_LIMIT"] = "190"
    try:
        with dg.build_resources({"hubspot": build_resources()["hubspot"]}) as built:
            connector = built.hubspot.connector()
            assert connector.config.burst_limit == 190
            connector.close()
        del os.environ["CRMHUB_HS_BURST_LIMIT"]
        with dg.build_resources({"hubspot": build_resources()["hubspot"]}) as built:
            connector = built.hubspot.connector()
            assert connector.config.burst_limit == 100
            connector.close()
    finally:
        os.environ.pop("CRMHUB_HS_ACCESS_TOKEN", None)
        os.environ.pop("CRMHUB_HS_BURST_LIMIT", None)


def test_multiprocess_executor_runs_the_configured_number_of_steps(monkeypatch: Any) -> None:
    from assets.definitions import scheduled_executor
    from unified_model import settings

    def slots() -> int:
        mapped = scheduled_executor().apply_config_mapping({})
        assert mapped.success and mapped.value is not None
        return int(mapped.value["config"]["max_concurrent"])

    monkeypatch.delenv("CRMHUB_EXECUTOR", raising=False)
    monkeypatch.delenv("CRMHUB_MAX_CONCURRENT_STEPS", raising=False)
    assert slots() == settings.DEFAULT_MAX_CONCURRENT_STEPS == 4
    monkeypatch.setenv("CRMHUB_MAX_CONCURRENT_STEPS", "6")
    assert slots() == 6
    for bad in ("0", "four", "-1"):
        monkeypatch.setenv("CRMHUB_MAX_CONCURRENT_STEPS", bad)
        with pytest.raises(ValueError, match=r"CRMHUB_MAX_CONCURRENT_STEPS.*positive whole number"):
            scheduled_executor()


def test_each_crm_pool_takes_two_steps_in_the_instance_template() -> None:
    # two per CRM: the incremental steps overlap; the record-count call stays one per run
    # (tests/assets/test_record_counts_shared.py, tests/crmhub/test_sync_multiprocess.py)
    import yaml

    from unified_model.settings import PROJECT_ROOT

    template = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert template["concurrency"]["pools"]["default_limit"] == 2
