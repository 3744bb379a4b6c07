"""Writeback assets: push the hub's fields onto Salesforce Accounts and HubSpot companies.

Each run provisions the hub's fields if missing, diffs desired values against the ledger and
sends only what changed (``unified_model.writeback``); ``dry_run`` shows the diff without writing.
They depend on the insights, which depend on the unified model and its blocking checks: when a
check fails, no writeback happens in that run.
"""

import datetime as dt

import dagster as dg

from assets.insights import CUSTOMER_KPIS, HANDOVER
from connectors.records import HUBSPOT, SALESFORCE
from unified_model.writeback import run_writeback


class WritebackRunConfig(dg.Config):
    """``dry_run``: compute and show the changes, write nothing."""

    dry_run: bool = False


def _make_writeback_asset(crm: str) -> dg.AssetsDefinition:
    resource_key = "salesforce" if crm == SALESFORCE else "hubspot"

    @dg.asset(
        key=dg.AssetKey([crm, "writeback"]),
        deps=[HANDOVER, CUSTOMER_KPIS],
        group_name="writeback",
        kinds={crm},
        required_resource_keys={resource_key, "hub_store", "hub_config"},
        description=f"Hub-owned fields written to {crm}, changed values only.",
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
        return dg.MaterializeResult(
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
            }
        )

    return _writeback


writeback_assets = [_make_writeback_asset(SALESFORCE), _make_writeback_asset(HUBSPOT)]
