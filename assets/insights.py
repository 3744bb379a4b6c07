"""Insight assets: handover status per customer, per-customer KPIs and signals, company KPIs.

Per-customer values end up on the CRM records (writeback); the company-wide and per-owner KPIs
are shown here, as a markdown table per run and numeric metadata the Dagster UI plots over time.
"""

import datetime as dt

import dagster as dg

from assets.unify import UNIFIED
from unified_model.insights import compute_customer_insights, refresh_company_kpis
from unified_model.operations import load_operations

OWNERS = list(load_operations().owners.insights)

HANDOVER = dg.AssetKey("handover_status")
CUSTOMER_KPIS = dg.AssetKey("customer_kpis")


@dg.asset(
    key=HANDOVER,
    deps=[UNIFIED],
    group_name="insights",
    owners=OWNERS,
    tags={"stage": "insights"},
    required_resource_keys={"hub_store", "hub_config"},
    description=(
        "Each customer's handover status (new sales → onboarding → account management, or at "
        "risk) by the rules in rules.yaml, with the reasons a customer is not handed over yet."
    ),
)
def handover_status(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    store = context.resources.hub_store.store()
    rules = context.resources.hub_config.rules()
    stats = compute_customer_insights(store, rules, now=dt.datetime.now(dt.UTC))
    metadata: dict[str, dg.RawMetadataValue] = {
        f"status_{status}": dg.MetadataValue.int(n) for status, n in stats.by_status.items()
    }
    # incremental: only customers whose data changed are evaluated (all on a rules change or
    # the first run of a business day); "changed" of them got a new decision or new values
    metadata["evaluated"] = dg.MetadataValue.int(stats.evaluated)
    metadata["changed"] = dg.MetadataValue.int(stats.changed)
    metadata["full_recompute"] = dg.MetadataValue.bool(stats.full)
    # CRMHUB_HUB_WORKERS processes on large full evaluations (1: the step's own)
    metadata["worker_processes"] = dg.MetadataValue.int(stats.workers)
    # False: the totals below are the last run's moved by the customers evaluated now
    metadata["totals_recounted"] = dg.MetadataValue.bool(stats.recounted)
    metadata["transitions"] = dg.MetadataValue.int(stats.transitions)
    metadata["customers"] = dg.MetadataValue.int(stats.customers)
    metadata["negotiation_flags"] = dg.MetadataValue.int(stats.negotiation_flags)
    metadata["top_blockers"] = dg.MetadataValue.md(stats.blockers_markdown())
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=CUSTOMER_KPIS,
    # Only unify's output is read (source rows with their customers, the golden owners): not
    # the handover. So the company KPIs run beside the handover and the writebacks under the
    # multiprocess executor instead of in front of them.
    deps=[UNIFIED],
    group_name="insights",
    owners=OWNERS,
    tags={"stage": "insights"},
    required_resource_keys={"hub_store", "hub_config"},
    description=(
        "Company-wide and per-owner KPIs per period (new leads, quotes, win rate, cost of sale, "
        "first-response time, contact coverage) and each customer's health score."
    ),
)
def company_kpis(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    store = context.resources.hub_store.store()
    rules = context.resources.hub_config.rules()
    report, recomputed = refresh_company_kpis(store, rules, now=dt.datetime.now(dt.UTC))
    metadata: dict[str, dg.RawMetadataValue] = {
        "company_kpis": dg.MetadataValue.md(report.company_markdown()),
        "owner_kpis": dg.MetadataValue.md(report.owner_markdown()),
        # False: nothing the KPIs read changed since the last run today; these are its figures
        "recomputed": dg.MetadataValue.bool(recomputed),
    }
    for key, value in report.latest_numeric().items():
        metadata[key] = dg.MetadataValue.float(float(value))
    return dg.MaterializeResult(metadata=metadata)
