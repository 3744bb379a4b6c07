"""Writeback assets: push the hub's fields onto Salesforce Accounts and HubSpot companies.

Each run provisions the hub's fields if missing, diffs desired values against the ledger and
sends only what changed (``unified_model.writeback``); ``dry_run`` shows the diff without writing.
They depend on the insights, which depend on the unified model and its blocking checks: when a
check fails, no writeback happens in that run.
"""

import datetime as dt

import dagster as dg

from assets.insights import HANDOVER
from connectors.records import HUBSPOT, SALESFORCE
from unified_model.operations import (
    load_operations,
    write_problems,
    write_problems_markdown,
    writeback_verdicts,
)
from unified_model.writeback import run_writeback

CRM_NAMES: dict[str, str] = {SALESFORCE: "Salesforce", HUBSPOT: "HubSpot"}
RECORDS: dict[str, str] = {SALESFORCE: "Accounts", HUBSPOT: "companies"}
#: Run tag of a dry run: the Runs page shows it, and a filter on it lists every dry run.
DRY_RUN_TAG = "crmhub/dry_run"
#: The writeback checks (pinned in tests/assets/test_definitions.py) and what each means.
WRITEBACK_CHECKS = {
    "no_failed_writes": "Every changed record was accepted by the CRM (failed ones are listed "
    "in the failed-record table and sent again next run).",
    "no_refused_records": "No write hit a record deleted in the CRM meanwhile (the hub marks "
    "such records deleted and stops writing them).",
    "hub_fields_provisioned": "The hub's own fields exist in the CRM and the integration user "
    "may write them.",
}


class WritebackRunConfig(dg.Config):
    """``dry_run``: compute and show the changes, write nothing."""

    dry_run: bool = False


def _make_writeback_asset(crm: str) -> dg.AssetsDefinition:
    resource_key = "salesforce" if crm == SALESFORCE else "hubspot"
    key = dg.AssetKey([crm, "writeback"])

    @dg.asset(
        key=key,
        # the handover step stores every per-customer value written back; the company KPIs are
        # shown in Dagster only, so a writeback neither waits for them nor fails with them
        deps=[HANDOVER],
        group_name=f"{crm}_writeback",
        kinds={crm},
        owners=list(load_operations().owners.writeback),
        pool=crm,
        tags={"crm": crm, "stage": "writeback"},
        # the step's tag too: the executor holds a CRM's steps by it (``settings.crm_steps``)
        op_tags={"crm": crm},
        required_resource_keys={resource_key, "hub_store", "hub_config"},
        description=(
            f"Handover status, health score and KPIs written onto {CRM_NAMES[crm]} "
            f"{RECORDS[crm]} as the hub's own fields: only values that changed since the last "
            "confirmed write. Never runs behind a failed blocking check."
        ),
        check_specs=[
            dg.AssetCheckSpec(name, asset=key, description=text)
            for name, text in WRITEBACK_CHECKS.items()
        ],
    )
    def _writeback(
        context: dg.AssetExecutionContext, config: WritebackRunConfig
    ) -> dg.MaterializeResult:
        store = context.resources.hub_store.store()
        hub_config = context.resources.hub_config
        wb_config = hub_config.writeback()
        connector = getattr(context.resources, resource_key).connector(
            hub_config.mapping(crm),
            wb_config,
            hub_fields_provisioned=store.get_cursor(crm, "hub_fields") is not None,
        )
        calls_before = connector.usage().calls
        report = run_writeback(
            store,
            connector,
            crm,
            wb_config,
            run_id=context.run_id,
            now=dt.datetime.now(dt.UTC),
            dry_run=config.dry_run,
        )
        for line in report.provisioning_notes:
            context.log.warning(line)
        if config.dry_run:
            # visible as a dry run in the Runs list, whoever launched it and however
            context.instance.add_run_tags(context.run_id, {DRY_RUN_TAG: "true"})
        problems = write_problems(store, context.run_id, crm)
        contacts = report.contacts
        if contacts is not None:
            problems += write_problems(store, context.run_id, contacts.crm)
            for line in contacts.provisioning_notes:
                context.log.warning(line)
        verdicts = writeback_verdicts(
            crm,
            failed=report.failed + (contacts.failed if contacts else 0),
            skipped=report.skipped + (contacts.skipped if contacts else 0),
            provisioning_notes=report.provisioning_notes
            + (contacts.provisioning_notes if contacts else []),
        )
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name=name,
                    passed=v.passed,
                    severity=dg.AssetCheckSeverity.WARN
                    if name == "no_refused_records"
                    else dg.AssetCheckSeverity.ERROR,
                    description=v.detail,
                    metadata=v.values,
                )
                for name, v in verdicts.items()
            ],
            metadata={
                "records_changed": dg.MetadataValue.int(report.records_changed),
                "fields_changed": dg.MetadataValue.int(report.fields_changed),
                "written_ok": dg.MetadataValue.int(report.ok),
                "failed": dg.MetadataValue.int(report.failed),
                "skipped": dg.MetadataValue.int(report.skipped),
                "write_calls": dg.MetadataValue.int(report.write_calls),
                "api_calls": dg.MetadataValue.int(connector.usage().calls - calls_before),
                "dry_run": dg.MetadataValue.bool(config.dry_run),
                "preview": dg.MetadataValue.md(report.preview_markdown()),
                "failed_records": dg.MetadataValue.md(write_problems_markdown(problems)),
                **(
                    {
                        # HubSpot: the marketing suppression on the contacts of the customers
                        "contacts_changed": dg.MetadataValue.int(contacts.records_changed),
                        "contacts_written_ok": dg.MetadataValue.int(contacts.ok),
                        "contacts_failed": dg.MetadataValue.int(contacts.failed),
                        "contact_write_calls": dg.MetadataValue.int(contacts.write_calls),
                        "contacts_preview": dg.MetadataValue.md(contacts.preview_markdown()),
                    }
                    if contacts is not None
                    else {}
                ),
            },
        )

    return _writeback


writeback_assets = [_make_writeback_asset(SALESFORCE), _make_writeback_asset(HUBSPOT)]
