"""Extract assets: one per CRM and object kind, so operations see freshness per object.

Each asset reads its kind incrementally from the stored cursor and lands the records in the hub
store (``unified_model.sync.extract``); the metadata says how many records, tombstones and API
calls it took, and whether the API budget stopped it early.
"""

import datetime as dt
from typing import Any

import dagster as dg

from assets.resources import (
    HubConfigResource,
    HubSpotResource,
    HubStoreResource,
    SalesforceResource,
)
from connectors.records import HUBSPOT, OBJECT_KINDS, SALESFORCE
from unified_model.sync import extract

#: Salesforce has a stage-history stream the hub folds into deals; HubSpot has it on the deal.
SF_KINDS = (*OBJECT_KINDS, "deal_stage")
HS_KINDS = OBJECT_KINDS


PLURALS = {"activity": "activities", "deal_stage": "deal_stages"}


class ExtractConfig(dg.Config):
    """Run options: ``reconcile`` also runs the full id pass that finds hard deletes."""

    reconcile: bool = False
    full_refresh: bool = False


def asset_key(crm: str, kind: str) -> dg.AssetKey:
    return dg.AssetKey([crm, PLURALS.get(kind, f"{kind}s")])


def _metadata(stats: object, usage: object, calls: int, seconds: float) -> dict[str, Any]:
    md = {
        "records": dg.MetadataValue.int(stats.records),  # type: ignore[attr-defined]
        "upserted": dg.MetadataValue.int(stats.upserted),  # type: ignore[attr-defined]
        "tombstones": dg.MetadataValue.int(stats.tombstoned + stats.hard_deleted),  # type: ignore[attr-defined]
        "pages": dg.MetadataValue.int(stats.pages),  # type: ignore[attr-defined]
        "first_sync": dg.MetadataValue.bool(stats.first_sync),  # type: ignore[attr-defined]
        "api_calls": dg.MetadataValue.int(calls),
        "seconds": dg.MetadataValue.float(round(seconds, 2)),
        "stopped_early": dg.MetadataValue.text(stats.stopped or "no"),  # type: ignore[attr-defined]
    }
    if usage.quota_max:  # type: ignore[attr-defined]
        md["daily_quota_used"] = dg.MetadataValue.int(usage.quota_used or 0)  # type: ignore[attr-defined]
        md["daily_quota_max"] = dg.MetadataValue.int(usage.quota_max)  # type: ignore[attr-defined]
    return md


def _make_extract_asset(crm: str, kind: str) -> dg.AssetsDefinition:
    resource_key = "salesforce" if crm == SALESFORCE else "hubspot"

    @dg.asset(
        key=asset_key(crm, kind),
        group_name="extract",
        kinds={crm},
        required_resource_keys={resource_key, "hub_store", "hub_config"},
        description=f"{kind} records read incrementally from {crm} into the hub store.",
    )
    def _extract(context: dg.AssetExecutionContext, config: ExtractConfig) -> dg.MaterializeResult:
        resource = getattr(context.resources, resource_key)
        hub_config: HubConfigResource = context.resources.hub_config
        store = context.resources.hub_store.store()
        if config.full_refresh:
            store.reset_cursor(crm, kind)
        connector = resource.connector(
            hub_config.mapping(crm),
            hub_config.writeback(),
            hub_fields_provisioned=store.get_cursor(crm, "hub_fields") is not None,
        )
        started = dt.datetime.now(dt.UTC)
        calls_before = connector.usage().calls
        stats = extract(store, connector, kind, reconcile=config.reconcile)
        seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
        if stats.stopped:
            context.log.warning(f"{crm} {kind}: API budget spent, stopped early; resumes next run")
        usage = connector.usage()
        return dg.MaterializeResult(
            metadata=_metadata(stats, usage, usage.calls - calls_before, seconds)
        )

    return _extract


extract_assets: list[dg.AssetsDefinition] = [
    *(_make_extract_asset(SALESFORCE, k) for k in SF_KINDS),
    *(_make_extract_asset(HUBSPOT, k) for k in HS_KINDS),
]

__all__ = ["HubSpotResource", "HubStoreResource", "SalesforceResource", "extract_assets"]
