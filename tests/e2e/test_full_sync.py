"""The whole Dagster graph against the sandbox CRMs, with the real client libraries: one sync
extracts both CRMs, unifies them, decides handover statuses and writes the hub's fields back —
which we then read from the CRMs through their own APIs — and a second sync with no source change
makes zero write calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
from simple_salesforce import Salesforce

from sandbox.runner import Sandbox
from tests.e2e.hub_support import sandbox_hub
from unified_model import tables as t
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e

WRITE_PATHS = ("/composite/sobjects", "/batch/update", "/jobs/ingest")


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A seeded sandbox, the hub pointed at it through the CRMHUB_* variables, a fresh hub db."""
    with sandbox_hub(tmp_path, monkeypatch, "tiny", 7) as env:
        yield env


def _definitions() -> dg.Definitions:
    from assets.definitions import all_assets, build_resources, sync_job
    from assets.unify import unify_checks

    return dg.Definitions(
        assets=all_assets, asset_checks=unify_checks, jobs=[sync_job], resources=build_resources()
    )


def _run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = _definitions().resolve_job_def("sync_job")
    return job.execute_in_process(instance=instance, raise_on_error=False)


def _writes(sb: Sandbox, since: int) -> list[dict[str, Any]]:
    return [
        r
        for r in sb.state.ledger(since)
        if r["method"] in ("POST", "PATCH", "PUT")
        and any(p in r["path"] for p in WRITE_PATHS)
        and "/batch/read" not in r["path"]
    ]


def test_full_sync_writes_back_and_second_run_is_a_no_op(hub_env: dict[str, Any]) -> None:
    sb: Sandbox = hub_env["sandbox"]
    instance = dg.DagsterInstance.ephemeral()
    result = _run(instance)
    failures = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, failures

    store = HubStore(hub_env["db_url"])
    customers = store.all(t.Customer)
    states = {h.customer_id: h for h in store.all(t.HandoverState)}
    assert customers and len(states) == len(customers)
    truth = sb.state.truth()
    both = [p for p in truth if p["sf_account_id"] and p["hs_company_id"]]
    accounts = {(a.source, a.source_id): a for a in store.live(t.SourceAccount)}
    matched = sum(
        1
        for p in both
        if accounts[("salesforce", p["sf_account_id"])].customer_id
        == accounts[("hubspot", p["hs_company_id"])].customer_id
    )
    assert matched >= 0.8 * len(both)

    # What the CRMs now show, read through their own APIs.
    info = sb.info
    session = requests.Session()
    session.verify = info.ca_bundle
    session.trust_env = False
    token = session.post(
        f"{info.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info.sf_client_id,
            "client_secret": info.sf_client_secret,
        },
    ).json()["access_token"]
    sf = Salesforce(instance_url=info.salesforce_url, session_id=token, session=session)
    rows = sf.query_all("SELECT Id, Hub_Customer_Id__c, Hub_Handover_Status__c FROM Account")
    sf_written = {r["Id"]: r for r in rows["records"]}
    for (source, sid), account in accounts.items():
        if source != "salesforce" or account.customer_id is None:
            continue
        assert sf_written[sid]["Hub_Customer_Id__c"] == account.customer_id
        assert sf_written[sid]["Hub_Handover_Status__c"] == states[account.customer_id].status

    from sandbox.hubspot.client import sandbox_client

    hs = sandbox_client(info)
    hs_ids = [sid for (source, sid), a in accounts.items() if source == "hubspot" and a.customer_id]
    from hubspot.crm.companies import BatchReadInputSimplePublicObjectId

    batch = hs.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in hs_ids[:100]],
            properties=["crmhub_customer_id", "crmhub_handover_status"],
        )
    )
    for company in batch.results:
        account = accounts[("hubspot", company.id)]
        assert company.properties["crmhub_customer_id"] == account.customer_id
        assert company.properties["crmhub_handover_status"] == states[account.customer_id].status

    # Second run, nothing changed in the CRMs: no write call at all.
    head = sb.state.ledger_head()
    again = _run(instance)
    assert again.success
    assert _writes(sb, head) == []
