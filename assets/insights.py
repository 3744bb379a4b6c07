"""Insight assets: handover status per customer, per-customer KPIs and signals, company KPIs.

Per-customer values end up on the CRM records (writeback); the company-wide and per-owner KPIs
are shown here, as a markdown table per run and numeric metadata the Dagster UI plots over time.
"""

import datetime as dt

import dagster as dg

from assets.unify import UNIFIED
from unified_model.insights import compute_company_kpis, compute_customer_insights

HANDOVER = dg.AssetKey("handover_status")
CUSTOMER_KPIS = dg.AssetKey("customer_kpis")


@dg.asset(
    key=HANDOVER,
    deps=[UNIFIED],
    group_name="insights",
    required_resource_keys={"hub_store", "hub_config"},
    description="Each customer's handover status (new sales → account management) with reasons.",
)
def handover_status(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    store = context.resources.hub_store.store()
    rules = context.resources.hub_config.rules()
    stats = compute_customer_insights(store, rules, now=dt.datetime.now(dt.UTC))
    metadata: dict[str, dg.RawMetadataValue] = {
        f"status_{status}": dg.MetadataValue.int(n) for status, n in stats.by_status.items()
    }
    metadata["transitions"] = dg.MetadataValue.int(stats.transitions)
    metadata["customers"] = dg.MetadataValue.int(stats.customers)
    metadata["negotiation_flags"] = dg.MetadataValue.int(stats.negotiation_flags)
    metadata["top_blockers"] = dg.MetadataValue.md(stats.blockers_markdown())
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=CUSTOMER_KPIS,
    deps=[HANDOVER],
    group_name="insights",
    required_resource_keys={"hub_store", "hub_config"},
    description="Company-wide and per-owner KPIs and behaviour indicators per period.",
)
def company_kpis(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    store = context.resources.hub_store.store()
    rules = context.resources.hub_config.rules()
    report = compute_company_kpis(store, rules, now=dt.datetime.now(dt.UTC))
    metadata: dict[str, dg.RawMetadataValue] = {
        "company_kpis": dg.MetadataValue.md(report.company_markdown()),
        "owner_kpis": dg.MetadataValue.md(report.owner_markdown()),
    }
    for key, value in report.latest_numeric().items():
        metadata[key] = dg.MetadataValue.float(float(value))
    return dg.MaterializeResult(metadata=metadata)
