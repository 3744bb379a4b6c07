"""The Dagster code location loads: every asset, check, job and schedule resolves, resources are
wired to the CRMHUB_* variables, and ``dagster definitions validate`` accepts the project."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg

from assets.definitions import build_resources, defs


def test_definitions_resolve() -> None:
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {
        "salesforce/accounts",
        "hubspot/accounts",
        "salesforce/activities",
        "hubspot/activities",
        "unified_customers",
        "handover_status",
        "customer_kpis",
        "salesforce/writeback",
        "hubspot/writeback",
    } <= keys
    assert {j.name for j in repo.get_all_jobs()} >= {"sync_job", "reconcile_job"}
    checks = {c.name for c in repo.asset_graph.asset_check_keys}
    assert "every_account_linked" in checks


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
