"""A satisfaction survey score (NPS) held in a custom CRM field: mapped in ``mapping.yaml``
(``salesforce.read.nps_score`` / ``hubspot.read.nps_score``), read into the golden record, kept
per customer and written back as a hub field; a customer without a score gets nothing written.
Built through the sandbox's APIs (a Tooling API custom field, a HubSpot property) and run
through the real Dagster sync job."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from hubspot.crm.properties import PropertyCreate

from crmhub import settings
from sandbox.hubspot.client import sandbox_client as hubspot_client
from sandbox.hubspot.testing import seed
from sandbox.runner import Sandbox
from sandbox.salesforce.testing import sandbox_client
from unified_model import tables as t
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def _run() -> None:
    from assets.definitions import all_assets, build_resources, sync_job
    from assets.unify import unify_checks

    defs = dg.Definitions(
        assets=all_assets, asset_checks=unify_checks, jobs=[sync_job], resources=build_resources()
    )
    result = defs.resolve_job_def("sync_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("nps")
    saved = {k: v for k, v in os.environ.items() if k.startswith("CRMHUB_")}
    for key in saved:
        del os.environ[key]
    config = tmp / "config"
    config.mkdir()
    mapping = (REPO_CONFIG / "mapping.yaml").read_text()
    # the commented examples of the shipped file, switched on
    mapping = mapping.replace("# nps_score: NPS__c", "nps_score: NPS__c").replace(
        "# nps_score: nps", "nps_score: nps"
    )
    assert mapping.count("\n    nps_score:") == 2
    (config / "mapping.yaml").write_text(mapping)
    shutil.copy(REPO_CONFIG / "rules.yaml", config / "rules.yaml")
    with Sandbox(tmp / "sandbox") as sb:
        os.environ.update(settings.sandbox_environment(sb.info))
        db_url = f"sqlite:///{tmp / 'hub.db'}"
        os.environ["CRMHUB_DATABASE_URL"] = db_url
        os.environ["CRMHUB_HOME"] = str(tmp / "home")
        os.environ["CRMHUB_CONFIG_DIR"] = str(config)
        sf = sandbox_client(sb.info)
        # the org's own survey field (an admin added it), and the portal's own property
        sf.toolingexecute(
            "sobjects/CustomField",
            method="POST",
            data={
                "FullName": "Account.NPS__c",
                "Metadata": {"label": "NPS", "type": "Number", "precision": 3, "scale": 0},
            },
        )
        hs = hubspot_client(sb.info)
        hs.crm.properties.core_api.create(
            "companies",
            PropertyCreate(
                name="nps",
                label="NPS",
                type="number",
                field_type="number",
                group_name="companyinformation",
            ),
        )
        ids = {
            "survey": sf.Account.create(
                {"Name": "Survey GmbH", "Website": "https://survey.example", "NPS__c": 45}
            )["id"],
            "silent": sf.Account.create(
                {"Name": "Silent GmbH", "Website": "https://silent.example"}
            )["id"],
            # seeded an hour old: HubSpot's search index lags, and the hub reads behind it
            "poll": seed(
                sb.state,
                "companies",
                {"name": "Poll AG", "domain": "poll.example", "nps": "-20"},
                created=sb.state.now() - dt.timedelta(hours=1),
            ),
        }
        _run()
        yield {"sf": sf, "hs": hs, "ids": ids, "db_url": db_url}
    for key in [k for k in os.environ if k.startswith("CRMHUB_")]:
        del os.environ[key]
    os.environ.update(saved)


def test_a_mapped_survey_score_is_read_kept_per_customer_and_written_back(
    world: dict[str, Any],
) -> None:
    sf, hs, ids = world["sf"], world["hs"], world["ids"]
    # Salesforce: the Account's NPS__c comes back on the hub's own field
    assert sf.Account.get(ids["survey"])["Hub_Nps_Score__c"] == 45
    # HubSpot: the company's nps property, negative scores included
    company = hs.crm.companies.basic_api.get_by_id(ids["poll"], properties=["crmhub_nps_score"])
    assert company.properties["crmhub_nps_score"] == "-20"
    # in the model: the golden record and the customer's values
    store = HubStore(world["db_url"])
    accounts = {a.source_id: a.customer_id for a in store.live(t.SourceAccount)}
    customers = {c.id: c for c in store.all(t.Customer)}
    metrics = {m.customer_id: m.values for m in store.all(t.CustomerMetrics)}
    ledger = {(r.source_id, r.field_key): r.value for r in store.all(t.WritebackLedger)}
    store.dispose()
    survey, poll, silent = (accounts[ids[k]] for k in ("survey", "poll", "silent"))
    assert (customers[survey].nps_score, metrics[survey]["nps_score"]) == (45, 45)
    assert (customers[poll].nps_score, metrics[poll]["nps_score"]) == (-20, -20)
    # no score in the CRM: nothing to say, nothing written
    assert metrics[silent]["nps_score"] is None
    assert sf.Account.get(ids["silent"])["Hub_Nps_Score__c"] is None
    assert (ids["silent"], "nps_score") not in ledger
