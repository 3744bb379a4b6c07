"""The Dagster code location of crmhub: assets, checks, jobs, schedules, sensors and resources.

Credentials come only from environment variables, through ``dg.EnvVar``: the UI shows which
variable feeds a resource, never its value. Which variables exist is checked here (presence only)
so that optional credentials (one of several Salesforce flows) can stay unset. With no credentials
at all, the location points itself at the sandbox that ``crmhub sandbox serve`` left running under
``CRMHUB_HOME`` (``dg dev`` works from a clean clone), or logs one line saying how to start it.

Execution: ``crmhub sync`` and tests run in-process; the scheduled jobs run on Dagster's
multiprocess executor, with one pool per CRM (``pool=`` on the assets, limit in dagster.yaml) so
parallel steps never exceed a portal's limits, and a run-tag limit (``crmhub/hub``) so the run
queue never runs two syncs against one hub database at once. The HubSpot rate budget is shared across
processes (``connectors/hubspot/limiter.py``).
"""

import datetime as dt
import hashlib
import logging
import os
import warnings
from typing import Any

import dagster as dg

from assets import forkserver
from assets.alerts import alert_sensors
from assets.extract import ExtractConfig, extract_assets
from assets.insights import company_kpis, handover_status
from assets.resources import (
    HubConfigResource,
    HubSpotResource,
    HubStoreResource,
    SalesforceResource,
)
from assets.unify import unified_customers, unify_checks
from assets.writeback import DRY_RUN_TAG, writeback_assets
from unified_model import settings
from unified_model.operations import Operations, load_operations

log = logging.getLogger("crmhub")

#: Run tag naming the hub database a run writes; dagster.yaml limits it to one run per value.
HUB_TAG = "crmhub/hub"
#: Run tag saying what started a run (schedule, sensor, the CLI).
TRIGGER_TAG = "crmhub/trigger"


def _env(name: str) -> dg.EnvVar | None:
    """``EnvVar(name)`` when the variable is set (its value is read only at run time)."""
    return dg.EnvVar(name) if name in os.environ else None


def _env_int(name: str, minimum: int = 0) -> Any:
    """``EnvVar.int(name)`` when the variable is set (a number setting, read at run time), its
    form checked now (``settings.whole_number``)."""
    if settings.whole_number(name, minimum) is None:
        return None
    return dg.EnvVar.int(name)


def _kw(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def build_resources() -> dict[str, Any]:
    """Resources wired to the ``CRMHUB_*`` environment variables (see crmhub/settings.py)."""
    return {
        "hub_store": HubStoreResource(**_kw(database_url=_env("CRMHUB_DATABASE_URL"))),
        "hub_config": HubConfigResource(**_kw(config_dir=_env("CRMHUB_CONFIG_DIR"))),
        "salesforce": SalesforceResource(
            **_kw(
                instance_url=_env("CRMHUB_SF_INSTANCE_URL"),
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
                archived_check_interval_seconds=_env_int(
                    "CRMHUB_HS_ARCHIVED_CHECK_SECONDS",
                    settings.NUMBER_SETTINGS["CRMHUB_HS_ARCHIVED_CHECK_SECONDS"],
                ),
                burst_limit=_env_int(
                    "CRMHUB_HS_BURST_LIMIT", settings.NUMBER_SETTINGS["CRMHUB_HS_BURST_LIMIT"]
                ),
                first_sync_plan=_env("CRMHUB_HS_FIRST_SYNC_PLAN"),
                write_concurrency=_env_int(
                    "CRMHUB_HS_WRITE_CONCURRENCY",
                    settings.NUMBER_SETTINGS["CRMHUB_HS_WRITE_CONCURRENCY"],
                ),
                rate_limit_store=_env("CRMHUB_REDIS_URL"),
            )
        ),
    }


all_assets = [*extract_assets, unified_customers, handover_status, company_kpis, *writeback_assets]


def hub_id() -> str:
    """A short, stable name for the hub database (a hash: the URL may hold a password)."""
    return hashlib.sha256(settings.database_url().encode()).hexdigest()[:12]


def last_read_checks(ops: Operations) -> list[dg.AssetChecksDefinition]:
    """Dagster's freshness check per extract asset: the last successful read is recent enough.

    Why checks and not the newer ``FreshnessPolicy``: a check result lands in the run's event
    log, where the failed-checks alert and the UI's check history see it like any other check.
    """
    warnings.filterwarnings("ignore", message=".*freshness_checks.*superseded")
    return list(
        dg.build_last_update_freshness_checks(
            assets=extract_assets,
            lower_bound_delta=dt.timedelta(minutes=ops.freshness.last_read_max_minutes),
            severity=dg.AssetCheckSeverity.ERROR,
        )
    )


def _job_tags(ops: Operations) -> dict[str, str]:
    return {HUB_TAG: hub_id(), "dagster/max_runtime": str(ops.runs.max_runtime_minutes * 60)}


#: Which executor runs the scheduled jobs' steps: multiprocess (one machine, the default),
#: celery (workers on other machines, broker CRMHUB_CELERY_BROKER) or k8s (one pod per step).
EXECUTOR_ENV = settings.EXECUTOR_ENV


#: What the fork server imports once (see ``assets.forkserver``).
FORKSERVER_PRELOAD = forkserver.FORKSERVER_PRELOAD


def scheduled_executor() -> dg.ExecutorDefinition:
    """The executor of the scheduled jobs (``crmhub sync`` and tests run in-process anyway).

    Dagster's own executors only: the hub has no scheduler, queue or executor of its own.
    """
    kind = settings.executor_kind()
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {
                "broker": {"env": "CRMHUB_CELERY_BROKER"},
                "backend": {"env": "CRMHUB_CELERY_BACKEND"}
                if os.environ.get("CRMHUB_CELERY_BACKEND")
                else "rpc://",
            },
            name="celery",
        )
    if kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor  # type: ignore[import-not-found]
        except ImportError:
            raise settings.SettingsError(
                f"{EXECUTOR_ENV}=k8s needs dagster-k8s in the image: uv add dagster-k8s"
            ) from None
        return k8s_job_executor
    # forkserver with the code location preloaded: a step process starts from a warm fork
    # instead of re-importing Dagster and the hub (10-15 s per step on a busy machine); in a
    # ``dagster api execute_run`` worker the server starts now (``assets.forkserver``)
    forkserver.start_in_run_worker()
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": settings.max_concurrent_steps(),
            # each CRM's steps held in the run, not only by its pool (see ``crm_steps``)
            "tag_concurrency_limits": [
                {
                    "key": "crm",
                    "value": {"applyLimitPerUniqueValue": True},
                    "limit": settings.crm_steps(),
                }
            ],
            "start_method": {"forkserver": {"preload_modules": list(FORKSERVER_PRELOAD)}},
        }
    )


def build_jobs(ops: Operations) -> dict[str, Any]:
    """The sync (scheduled: multiprocess), its dry run, and the nightly reconcile."""
    executor = scheduled_executor()
    extract_ops = {a.node_def.name: ExtractConfig(reconcile=True) for a in extract_assets}
    return {
        "sync_job": dg.define_asset_job(
            "sync_job",
            selection=dg.AssetSelection.all(),
            executor_def=executor,
            tags=_job_tags(ops),
            description="Incremental hub sync: read what changed in both CRMs, unify, decide "
            "handover and KPIs, write the hub's fields back.",
        ),
        "sync_dry_run_job": dg.define_asset_job(
            "sync_dry_run_job",
            selection=dg.AssetSelection.all(),
            executor_def=executor,
            tags={**_job_tags(ops), DRY_RUN_TAG: "true"},
            config=dg.RunConfig(
                ops={a.node_def.name: {"config": {"dry_run": True}} for a in writeback_assets}
            ),
            description="DRY RUN: the whole sync, but the writeback only shows what it would "
            "change; nothing is written to the CRMs.",
        ),
        "reconcile_job": dg.define_asset_job(
            "reconcile_job",
            selection=dg.AssetSelection.assets(*extract_assets),
            executor_def=executor,
            tags=_job_tags(ops),
            config=dg.RunConfig(ops=extract_ops),
            description="Nightly full id pass over every CRM object to find hard deletes.",
        ),
    }


def _schedule(
    name: str, job: Any, cron: str, ops: Operations, description: str
) -> dg.ScheduleDefinition:
    """One run per tick, keyed by the tick's time: a re-evaluated tick never starts a second."""
    running = ops.schedules_running(on_sandbox=settings.on_sandbox())

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=ops.schedules.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING
        if running
        else dg.DefaultScheduleStatus.STOPPED,
        description=description,
    )
    def _tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        when = context.scheduled_execution_time.isoformat()
        return dg.RunRequest(
            run_key=f"{name}:{when}",
            tags={TRIGGER_TAG: name, "crmhub/scheduled_for": when},
        )

    return _tick


def build_schedules(ops: Operations, jobs: dict[str, Any]) -> list[dg.ScheduleDefinition]:
    where = f"({ops.schedules.timezone}; operations.yaml schedules.*)"
    return [
        _schedule(
            "sync_schedule",
            jobs["sync_job"],
            ops.schedules.sync_cron,
            ops,
            f"Incremental sync of both CRMs, {ops.schedules.sync_cron} {where}.",
        ),
        _schedule(
            "reconcile_schedule",
            jobs["reconcile_job"],
            ops.schedules.reconcile_cron,
            ops,
            f"Nightly hard-delete reconcile, {ops.schedules.reconcile_cron} {where}.",
        ),
    ]


def build_definitions(
    *, discover_sandbox: bool = True, loggers: dict[str, Any] | None = None
) -> dg.Definitions:
    """The whole code location, built from the environment and config/ as they are now.

    ``discover_sandbox``: with no CRM credentials set, use the sandbox that ``crmhub sandbox
    serve`` left running (the CLI sets the sandbox's variables itself and passes False).
    """
    if discover_sandbox:
        line = settings.use_running_sandbox()
        (log.warning if line.startswith("crmhub:") else log.info)(line)
    ops = load_operations()
    jobs = build_jobs(ops)
    freshness = last_read_checks(ops)
    settings.hub_workers()  # read in the handover step: a bad value fails here, before any call
    return dg.Definitions(
        assets=all_assets,
        asset_checks=[*unify_checks, *freshness],
        jobs=list(jobs.values()),
        schedules=build_schedules(ops, jobs),
        sensors=[
            *alert_sensors,
            dg.build_sensor_for_freshness_checks(  # superseded warning silenced above
                freshness_checks=freshness,
                name="last_read_freshness_sensor",
                default_status=dg.DefaultSensorStatus.RUNNING,
            ),
        ],
        resources=build_resources(),
        loggers=loggers,
    )


defs = build_definitions()
#: The jobs as built at import (tests and scripts that assemble their own Definitions use them).
_jobs = {job.name: job for job in defs.jobs or []}
sync_job = _jobs["sync_job"]
sync_dry_run_job = _jobs["sync_dry_run_job"]
reconcile_job = _jobs["reconcile_job"]
