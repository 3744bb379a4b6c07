"""The multiprocess executor's fork server, started before the run asks for its first step.

Why: every step process of a multiprocess run is forked from one server process that imported
the code location, Dagster's storage and the CRM SDKs once (``FORKSERVER_PRELOAD``). Dagster
starts that server when it forks the first step, so the run's first steps waited for those
imports: 3.7 s between "Launching subprocess" and "Executing step" on ``large`` (every later
step process starts in about 0.2 s). Started while the process that will run the job is still
getting ready (the CLI's configuration and connection checks), the imports overlap that work
instead of following it.

Runs the daemon launches get little of this: the default run launcher starts each run in a
process the code server spawns, which loads the code location a fraction of a second before
the executor forks its first step (a tiny run launched through ``dagster-daemon``: 3.85 s
between launching the first step processes and their executing, as before). A run worker started as ``dagster api execute_run`` (the
container run launchers) starts the server when it loads the code location, which is as early
as the hub's code runs in that process.

Dagster sets its own preload list when the executor starts; a server already running keeps
the one it was started with, so the list here is exactly the executor's (``PRELOAD``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import sys
from collections.abc import Sequence
from pathlib import Path

#: What the forkserver imports once, so that no step process imports it again.
#: - ``__main__``: the program that started the run (``crmhub``, ``dagster``, a benchmark).
#:   Without it every step process re-runs that script (multiprocessing's spawn preparation)
#:   and imports whatever it imports that the code location does not: about 1.6 s per step.
#: - the instance's storage classes, which a step imports when it opens the instance
#:   (SQLite and PostgreSQL; a module that is not installed is skipped): about 1 s per step.
#: - the CRM connectors and their SDKs (simple-salesforce with zeep, hubspot-api-client's
#:   generated models), which the resources import when a step first builds a connector (they
#:   stay out of ``assets.definitions`` so the CLI's quick commands start fast): about 1.5 s
#:   per Salesforce step and 1 s per HubSpot step, 44 of the 75 CPU-seconds of a settled
#:   ``large`` run's processes (py-spy, ninth round).
#: - ``assets.alembic_scripts``: Alembic's revision scripts, executed once here instead of in
#:   each of the four schema checks a step process makes as it opens the instance.
#: On ``large`` a 1 % run starts 27 step processes on 2 cores: together about 70 s of CPU.
FORKSERVER_PRELOAD = (
    "__main__",
    "assets.definitions",
    "assets.connector_factory",
    "assets.alembic_scripts",
    "dagster._core.storage.base_storage",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log",
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.secrets.env_file",
    "dagster_postgres",
    "upath",
    "upath.core",
)

#: the list Dagster's multiprocess executor hands the server (it puts its own module first)
PRELOAD = ("dagster._core.executor.multiprocess", *FORKSERVER_PRELOAD)

#: the commands a Dagster run worker runs as (``dagster api execute_run <args>``): what the
#: container run launchers (Docker, Kubernetes) start for each run
_RUN_WORKER_COMMANDS = (["api", "execute_run"], ["api", "resume_run"])


def running() -> bool:
    """Does this process have a live fork server?"""
    pid = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    if pid is None:
        return False
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def stop() -> None:
    """Stop this process's fork server, if it runs one.

    Why: step processes inherit *its* environment and stderr, not this process's current ones;
    a server left from an earlier run in the same process (a test session, a notebook) would hand
    the steps that run's CRM endpoints and credentials."""
    stop_ = getattr(multiprocessing.forkserver._forkserver, "_stop", None)  # type: ignore[attr-defined]
    if stop_ is not None:
        stop_()


def start(log: Path | None = None, *, fresh: bool = True) -> None:
    """Start the fork server now, with the executor's preload list; returns at once (the server
    imports in its own process, and the first fork waits for it).

    ``fresh``: stop one left running first (see ``stop``). ``log``: the server's stderr (and so
    the step processes' own terminal output); None keeps this process's.
    """
    if fresh:
        stop()
    elif running():
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
    if log is None:
        multiprocessing.forkserver.ensure_running()
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    try:
        with log.open("ab") as out:
            os.dup2(out.fileno(), 2)
            multiprocessing.forkserver.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def is_run_worker(argv: Sequence[str] | None = None) -> bool:
    """Is this process a Dagster run worker started as ``dagster api execute_run``?"""
    args = list(sys.argv if argv is None else argv)
    return args[1:3] in _RUN_WORKER_COMMANDS


def start_in_run_worker(argv: Sequence[str] | None = None) -> bool:
    """In a run worker, start the fork server while the worker is still loading the code
    location (the run's executor forks its first step a second or two later). Anywhere else
    (the webserver, the daemon, the CLI, a step process) do nothing: those either run no steps
    or start the server themselves. Returns whether it started one."""
    if not is_run_worker(argv) or running():
        return False
    start(fresh=False)
    return True
