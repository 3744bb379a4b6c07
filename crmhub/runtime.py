"""What every crmhub command that runs the hub shares: the CRMs it talks to (real or the
sandbox), the Dagster instance and code location, and the configuration check.

Why a module of its own: ``sync``, ``doctor`` and ``fields ensure`` all need these, and keeping
them out of ``crmhub/cli.py`` keeps the command modules free of import circles (the CLI imports
the commands, never the other way round).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crmhub import settings


def _print(*args: Any) -> None:
    print(*args, flush=True)


@contextlib.contextmanager
def _crm_environment(profile: str, seed: int, *, seed_empty: bool = True) -> Iterator[str]:
    """Point the hub at real CRMs (credentials set) or at a sandbox (started or reused).

    The sandbox's variables are set only for the duration of the command and removed again:
    left behind, they would make a later command in the same process (tests, a notebook) take
    the stopped sandbox for configured CRMs.
    """
    mode = settings.detect_mode()
    if not mode.uses_sandbox:
        yield mode.describe()
        return
    from sandbox.runner import Sandbox, find_running

    running = find_running(settings.sandbox_home())
    if running is not None:
        with _environ(_sandbox_env_for(mode, running)):
            yield (
                f"{mode.describe()} (reusing the sandbox at {running.salesforce_url}, "
                f"{running.hubspot_url})"
            )
        return
    sandbox = Sandbox(settings.sandbox_home())
    sandbox.start()
    try:
        if seed_empty and not sandbox.is_seeded():
            from crmhub.progress import working

            _print(f"Seeding the sandbox CRMs with the '{profile}' data profile (first run)…")
            with working(f"seeding '{profile}'"):
                sandbox.seed(profile=profile, seed=seed)
        with _environ(_sandbox_env_for(mode, sandbox.info)):
            yield f"{mode.describe()} (sandbox started for this run)"
    finally:
        sandbox.stop()


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block, then restore what was there before."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _sandbox_env_for(mode: settings.Mode, info: Any) -> dict[str, str]:
    # CRMHUB_SANDBOX: the code location starts its schedules running against the sandbox
    env = {**settings.sandbox_environment(info), "CRMHUB_SANDBOX": "1"}
    if mode.salesforce_configured:
        env = {k: v for k, v in env.items() if not k.startswith("CRMHUB_SF_")}
    if mode.hubspot_configured:
        env = {k: v for k, v in env.items() if not k.startswith("CRMHUB_HS_")}
    return env


def _dagster_instance() -> Any:
    """The hub's persistent Dagster instance: ``$CRMHUB_HOME/dagster`` unless DAGSTER_HOME says.

    Created under a file lock: two syncs started together on a fresh folder would otherwise both
    create Dagster's run storage and its Alembic stamp at once (a ``UniqueViolation`` and a
    storage with two heads that breaks every later run). The second waits until the first has
    initialised it, then opens the finished storage.
    """
    import dagster as dg
    from filelock import FileLock

    home = settings.hub_home()
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / "dagster-init.lock"), timeout=120):
        settings.ensure_dagster_home()
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)  # touches (and so initialises) the run storage under the lock
    return instance


#: The run tag of runs ``crmhub sync`` starts (it holds the hub's writer lock for the whole run).
SYNC_TRIGGER_TAG = ("crmhub/trigger", "crmhub sync")


def release_dead_syncs(instance: Any) -> list[Any]:
    """Mark earlier ``crmhub sync`` runs that died mid-run as failed and free their pool slots.

    Why: a sync killed mid-step (SIGKILL, power loss) stays ``STARTED`` in Dagster's run storage
    and keeps the concurrency slot of its CRM pool, so the next sync waited for it forever (no
    run monitor runs next to an in-process ``crmhub sync``). Called under the hub's writer lock,
    which every ``crmhub sync`` holds for its whole run: any other sync still "started" is dead.
    Runs launched by the Dagster daemon are left to Dagster's run monitoring.
    """
    import dagster as dg

    key, value = SYNC_TRIGGER_TAG
    stale = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={key: value},
        )
    )
    for run in stale:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(
            run, message="crmhub sync: the process died mid-run (found by the next sync)"
        )
    return list(stale)


def _definitions(loggers: dict[str, Any] | None = None) -> Any:
    """The code location with resources built from the environment as it is *now*.

    Why not ``assets.definitions.defs``: that object is built once, at first import, and its
    resources remember which optional variables (database URL, config folder, sandbox
    credentials) existed then; a command must see the ones ``_crm_environment`` just set.
    """
    from assets.definitions import build_definitions

    return build_definitions(discover_sandbox=False, loggers=loggers)


def sync_job_for_steps() -> Any:
    """The sync job as the multiprocess executor's step processes rebuild it (module level, so
    ``dg.reconstructable`` can point at it): the same definitions, built from the environment
    the CLI set up (sandbox or CRM credentials), which the step processes inherit."""
    return _definitions().resolve_job_def("sync_job")


def stop_forkserver() -> None:
    """Stop this process's multiprocess fork server, if it runs one (``assets.forkserver``)."""
    from assets import forkserver

    forkserver.stop()


def _fresh_forkserver(log: Path | None) -> None:
    """(Re)start the multiprocess executor's fork server for this run, its stderr on ``log``.

    Why a fresh one: every step process is forked from it and inherits *its* environment and
    stderr, not this process's current ones. A fork server left from an earlier run in the same
    process (a test session, a notebook) would hand the steps that run's CRM endpoints and
    credentials. Why the log: Dagster's context-free logger prints a DEBUG line per step before
    the run's own (quiet) loggers take over; the terminal shows the CLI's progress and summary,
    the processes' own output (a crash's traceback included) goes to the file, and every event
    to Dagster's event log. ``log`` None (``-v``): this terminal. Started as soon as the CRMs'
    environment is set: it imports while the CLI checks the configuration and the connections.
    """
    from assets import forkserver

    forkserver.start(log)


def execute_multiprocess(
    instance: Any,
    job: Any,
    run_config: dict[str, Any],
    tags: dict[str, str],
    run_id: str,
    *,
    step_log: Path | None = None,
) -> Any:
    """Run ``sync_job`` through Dagster's multiprocess executor under the CLI's run id.

    Why the run id: the CLI already holds the hub's writer lock for ``run_id`` (and checked the
    database under it); the step processes see their run holds it and go on. ``dg.execute_job``
    picks its own id, so the run is created here the way it creates one. ``step_log``: where
    the step processes' own terminal output goes (None: this terminal, as with ``-v``).
    """
    import dagster as dg
    from dagster._core.execution.api import execute_run

    from assets import forkserver
    from assets.definitions import EXECUTOR_ENV

    os.environ[EXECUTOR_ENV] = "multiprocess"  # not the scheduled runs' Celery or k8s
    # the caller started it early (``_fresh_forkserver``); here only if it did not
    forkserver.start(step_log, fresh=False)
    recon = dg.reconstructable(sync_job_for_steps)
    run = instance.create_run_for_job(
        job_def=job,
        run_id=run_id,
        run_config=run_config,
        tags=tags,
        job_code_origin=recon.get_python_origin(),
    )
    return execute_run(recon, run, instance, raise_on_error=False)


def _check_config_files() -> None:
    """Load ``rules.yaml``, ``mapping.yaml`` and the ``CRMHUB_*`` settings before anything starts.

    Why: a typo in a rules or mapping key would otherwise surface as a failed Dagster step in
    the middle of the run, after API calls were spent. Raised errors are the hub's own
    configuration errors, which ``main`` prints as one line naming the key (exit code 2).
    """
    from unified_model.rules import load_rules
    from unified_model.writeback import load_writeback_config

    settings.check_settings()  # the environment's settings, before the sandbox starts
    folder = settings.config_dir()
    rules = folder / "rules.yaml"
    load_rules(rules if rules.exists() else None)
    load_writeback_config(folder / "mapping.yaml")
    from crmhub.mapping import load_field_map

    for crm in ("salesforce", "hubspot"):
        load_field_map(folder / "mapping.yaml", crm)
