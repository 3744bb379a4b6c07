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
from connectors.records import HUBSPOT, OBJECT_KINDS, SALESFORCE, Crm
from unified_model.operations import load_operations, newest_record_freshness, quota_verdict
from unified_model.sync import extract
from unified_model.writer_lock import hub_mutex

#: Salesforce has a stage-history stream the hub folds into deals; HubSpot has it on the deal.
SF_KINDS = (*OBJECT_KINDS, "deal_stage")
HS_KINDS = OBJECT_KINDS


PLURALS = {"activity": "activities", "deal_stage": "deal_stages"}

CRM_NAMES = {SALESFORCE: "Salesforce", HUBSPOT: "HubSpot"}
#: What each object is, in each CRM's own words, for the asset descriptions in the UI.
OBJECT_NAMES = {
    SALESFORCE: {
        "owner": "Users (record owners: sellers, account managers)",
        "account": "Accounts (the customer companies)",
        "contact": "Contacts and Leads (the people at the customers)",
        "deal": "Opportunities (deals, their stage and amount)",
        "email": "EmailMessages (e-mails logged with customers)",
        "ticket": "Cases (support tickets)",
        "activity": "Tasks and Events (calls, meetings, to-dos)",
        "deal_stage": "Opportunity stage history (when each deal entered each stage)",
    },
    HUBSPOT: {
        "owner": "Owners (record owners: sellers, account managers)",
        "account": "Companies (the customer companies)",
        "contact": "Contacts (the people at the customers)",
        "deal": "Deals (pipeline stage and amount)",
        "email": "Emails (logged and marketing e-mails)",
        "ticket": "Tickets (support)",
        "activity": "Calls, meetings, notes and tasks (engagements with the customers)",
    },
}
#: The check names on every extract asset (pinned in tests/assets/test_definitions.py).
NEWEST_RECORD_CHECK = "newest_record_fresh"
QUOTA_CHECK = "not_stopped_by_quota"


class ExtractConfig(dg.Config):
    """Run options: ``reconcile`` also runs the full id pass that finds hard deletes."""

    reconcile: bool = False
    full_refresh: bool = False


def asset_key(crm: str, kind: str) -> dg.AssetKey:
    return dg.AssetKey([crm, PLURALS.get(kind, f"{kind}s")])


def extract_group(crm: str) -> str:
    """The UI group of one CRM's extract nodes: both CRMs have 'accounts', told apart here."""
    return f"{crm}_extract"


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
        md["quota_left"] = dg.MetadataValue.int(usage.quota_max - (usage.quota_used or 0))  # type: ignore[attr-defined]
    return md


def _make_extract_asset(crm: Crm, kind: str) -> dg.AssetsDefinition:
    resource_key = "salesforce" if crm == SALESFORCE else "hubspot"
    key = asset_key(crm, kind)

    @dg.asset(
        key=key,
        group_name=extract_group(crm),
        kinds={crm},
        owners=list(load_operations().owners.extract),
        pool=crm,
        tags={"crm": crm, "stage": "extract"},
        # the step's tag too: the executor holds a CRM's steps by it (``settings.crm_steps``)
        op_tags={"crm": crm},
        required_resource_keys={resource_key, "hub_store", "hub_config"},
        description=(
            f"{CRM_NAMES[crm]} {OBJECT_NAMES[crm][kind]}, read incrementally (only what changed "
            "since the last sync, checkpointed after every page) into the hub."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                NEWEST_RECORD_CHECK,
                asset=key,
                description=(
                    f"The newest {kind} read from {CRM_NAMES[crm]} is recent enough "
                    "(freshness.newest_record_max_hours): reads that succeed but bring nothing "
                    "new point at lost permissions or a deactivated integration user."
                ),
            ),
            dg.AssetCheckSpec(
                QUOTA_CHECK,
                asset=key,
                description=(
                    f"The read ran to the end; a warning when {CRM_NAMES[crm]}'s API budget "
                    "stopped it early (it resumes from its checkpoint next run)."
                ),
            ),
        ],
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
        _use_run_counts(store, connector, crm, context.run_id)
        started = dt.datetime.now(dt.UTC)
        calls_before = connector.usage().calls
        stats = extract(store, connector, kind, reconcile=config.reconcile)
        seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
        if stats.stopped:
            context.log.warning(f"{crm} {kind}: API budget spent, stopped early; resumes next run")
        usage = connector.usage()
        limits = hub_config.operations().freshness
        fresh = newest_record_freshness(
            store, crm, kind, limits.newest_record_limit(kind), dt.datetime.now(dt.UTC)
        )
        quota = quota_verdict(crm, kind, stats.stopped, stats.notes)
        return dg.MaterializeResult(
            metadata=_metadata(stats, usage, usage.calls - calls_before, seconds),
            check_results=[
                _check(key, NEWEST_RECORD_CHECK, fresh.passed, fresh.detail, fresh.values),
                _check(key, QUOTA_CHECK, quota.passed, quota.detail, quota.values),
            ],
        )

    return _extract


#: ``sync_cursor`` entry holding the Salesforce record counts of the latest run that asked.
RUN_COUNTS = "record_counts"


def _use_run_counts(store: Any, connector: Any, crm: str, run_id: str) -> bool:
    """Give the connector the record counts this run fetched, now or when it first needs them.

    Why: one ``limits/recordCount`` call sizes every object's first sync; under the
    multiprocess executor each step has its own connector and would make it again (124
    Salesforce calls instead of 113 on ``large``). Counts an earlier step kept are used at
    once (progress totals); otherwise the fetch goes through :func:`_run_counts_source`, so of
    several steps starting together (a CRM pool of 2, Celery workers) one makes the call and
    the others take its answer. Counts of another run are never used: they age. Returns
    whether counts were there already.
    """
    use = getattr(connector, "use_record_counts", None)
    if use is None:
        return False
    share = getattr(connector, "share_record_counts", None)
    if share is not None:
        share(_run_counts_source(store, crm, run_id))
    saved = store.get_cursor(crm, RUN_COUNTS)
    if not saved or saved.get("run_id") != run_id:
        return False
    use(dict(saved.get("counts") or {}))
    return True


def _run_counts_source(store: Any, crm: str, run_id: str) -> Any:
    """Record counts once per run across processes: under a hub mutex, the counts a step of
    this run kept, else the caller's own fetch, kept for the others ({} too: the call failed
    and each step sizes by its first page, as in one process)."""

    def source(fetch: Any) -> dict[str, int]:
        with hub_mutex(store, f"{crm}-record-counts"):
            saved = store.get_cursor(crm, RUN_COUNTS)
            if saved and saved.get("run_id") == run_id:
                return dict(saved.get("counts") or {})
            counts: dict[str, int] = fetch()
            store.save_cursor(crm, RUN_COUNTS, {"run_id": run_id, "counts": counts})
            return counts

    return source


def _check(
    key: dg.AssetKey, name: str, passed: bool, detail: str, values: dict[str, Any]
) -> dg.AssetCheckResult:
    """A warning-level check result with its numbers as metadata (the UI plots them)."""
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=detail,
        metadata=values,
    )


extract_assets: list[dg.AssetsDefinition] = [
    *(_make_extract_asset(SALESFORCE, k) for k in SF_KINDS),
    *(_make_extract_asset(HUBSPOT, k) for k in HS_KINDS),
]

__all__ = ["HubSpotResource", "HubStoreResource", "SalesforceResource", "extract_assets"]
