"""The Dagster code location of crmhub: assets, checks, jobs, schedules and resources.

Credentials come only from environment variables, through ``dg.EnvVar``: the UI shows which
variable feeds a resource, never its value. Which variables exist is checked here (presence only)
so that optional credentials (one of several Salesforce flows) can stay unset.

Jobs run in-process because SQLite (the default store) prefers one writer. (The HubSpot rate
budget no longer needs it: it is shared across processes, see ``connectors/hubspot/limiter.py``.)
"""

import os
from typing import Any

import dagster as dg

from assets.extract import ExtractConfig, extract_assets
from assets.insights import company_kpis, handover_status
from assets.resources import (
    HubConfigResource,
    HubSpotResource,
    HubStoreResource,
    SalesforceResource,
)
from assets.unify import unified_customers, unify_checks
from assets.writeback import writeback_assets


def _env(name: str) -> dg.EnvVar | None:
    """``EnvVar(name)`` when the variable is set (its value is read only at run time)."""
    return dg.EnvVar(name) if name in os.environ else None


def _env_int(name: str) -> Any:
    """``EnvVar.int(name)`` when the variable is set (a number setting, read at run time)."""
    return dg.EnvVar.int(name) if name in os.environ else None


def _kw(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def build_resources() -> dict[str, Any]:
    """Resources wired to the ``CRMHUB_*`` environment variables (see crmhub/settings.py)."""
    return {
        "hub_store": HubStoreResource(**_kw(database_url=_env("CRMHUB_DATABASE_URL"))),
        "hub_config": HubConfigResource(**_kw(config_dir=_env("CRMHUB_CONFIG_DIR"))),
        "salesforce": SalesforceResource(
            instance_url=dg.EnvVar("CRMHUB_SF_INSTANCE_URL"),
            **_kw(
                token_url=_env("CRMHUB_SF_TOKEN_URL"),
                client_id=_env("CRMHUB_SF_CLIENT_ID"),
                client_secret=_env("CRMHUB_SF_CLIENT_SECRET"),
                refresh_token=_env("CRMHUB_SF_REFRESH_TOKEN"),
                username=_env("CRMHUB_SF_USERNAME"),
                password=_env("CRMHUB_SF_PASSWORD"),
                security_token=_env("CRMHUB_SF_SECURITY_TOKEN"),
                jwt_key_file=_env("CRMHUB_SF_JWT_KEY_FILE"),
                session_id=_env("CRMHUB_SF_SESSION_ID"),
                ca_bundle=_env("CRMHUB_SF_CA_BUNDLE"),
            ),
        ),
        "hubspot": HubSpotResource(
            **_kw(
                base_url=_env("CRMHUB_HS_BASE_URL"),
                access_token=_env("CRMHUB_HS_ACCESS_TOKEN"),
                client_id=_env("CRMHUB_HS_CLIENT_ID"),
                client_secret=_env("CRMHUB_HS_CLIENT_SECRET"),
                refresh_token=_env("CRMHUB_HS_REFRESH_TOKEN"),
                ca_bundle=_env("CRMHUB_HS_CA_BUNDLE"),
                archived_check_interval_seconds=_env_int("CRMHUB_HS_ARCHIVED_CHECK_SECONDS"),
                rate_limit_store=_env("CRMHUB_REDIS_URL"),
            )
        ),
    }


all_assets = [*extract_assets, unified_customers, handover_status, company_kpis, *writeback_assets]

sync_job = dg.define_asset_job(
    "sync_job",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Full hub sync: extract both CRMs, unify, compute insights, write back.",
)

reconcile_job = dg.define_asset_job(
    "reconcile_job",
    selection=dg.AssetSelection.groups("extract"),
    executor_def=dg.in_process_executor,
    config=dg.RunConfig(
        ops={a.node_def.name: ExtractConfig(reconcile=True) for a in extract_assets}
    ),
    description="Full id pass over every CRM object to find hard deletes (run daily).",
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=unify_checks,
    jobs=[sync_job, reconcile_job],
    schedules=[
        dg.ScheduleDefinition(
            job=sync_job,
            cron_schedule="*/30 * * * *",
            default_status=dg.DefaultScheduleStatus.STOPPED,
        ),
        dg.ScheduleDefinition(
            job=reconcile_job,
            cron_schedule="15 3 * * *",
            default_status=dg.DefaultScheduleStatus.STOPPED,
        ),
    ],
    resources=build_resources(),
)
