"""The ``crmhub`` command: run a sync, open the UI, drive the sandbox, look at customers.

Why a CLI next to Dagster: the first thing a new user does is ``uv run crmhub sync`` and reads
what happened; RevOps wants one-line answers ("show me this customer", "what did the hub write");
and the sandbox must be started before Dagster's resources can point at it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crmhub import settings
from crmhub.runtime import (
    SYNC_TRIGGER_TAG,
    _check_config_files,
    _crm_environment,
    _dagster_instance,
    _definitions,
    release_dead_syncs,
)


def _print(*args: Any) -> None:
    print(*args, flush=True)


# --------------------------------------------------------------------------------------------
# sandbox plumbing
# --------------------------------------------------------------------------------------------


def _check_connectors(resources: dict[str, Any]) -> None:
    """Build both connectors once without calling the CRMs: refuses hub field names outside the
    allow-list (``writeback.salesforce_names: {handover_status: Name}``) and unknown credentials
    before the run reads or writes anything."""
    hub_config = resources["hub_config"].process_config_and_initialize()
    writeback = hub_config.writeback()
    for crm in ("salesforce", "hubspot"):
        # the _cm form: the CRM resources close their connectors on teardown
        with resources[crm].process_config_and_initialize_cm() as resource:
            resource.connector(hub_config.mapping(crm), writeback)


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace) -> int:
    from dagster._core.utils import make_new_run_id

    from unified_model.database import connect_store, prepare
    from unified_model.writer_lock import hub_writer

    _check_config_files()
    # The writer lock keeps a second sync off this hub for the whole run; under it the database
    # is checked (and migrated) once, before any CRM call: a problem is one line, no step runs.
    store = connect_store(settings.database_url())
    run_id = make_new_run_id()
    try:
        with hub_writer(store, run_id):
            prepare(store)
            return _sync_locked(args, run_id)
    finally:
        store.dispose()


def _sync_locked(args: argparse.Namespace, run_id: str) -> int:
    from crmhub import doctor, progress
    from crmhub.report import print_dry_run_diff, print_sync_summary

    quiet, verbose = args.quiet, args.verbose
    with _crm_environment(args.profile, args.seed) as where:
        if not quiet:  # stdout carries only the diff with --format json|csv
            head = sys.stderr if args.dry_run and args.format != "table" else sys.stdout
            print(f"crmhub sync — {where}", file=head, flush=True)
            print(f"Hub database: {_redact_url(settings.database_url())}", file=head, flush=True)
        from assets.extract import extract_assets

        shown = progress.SyncProgress(enabled=not quiet)
        parallel = getattr(args, "executor", "in-process") == "multiprocess"
        step_log = None if verbose else settings.hub_home() / "logs" / f"{run_id}.log"
        if parallel:  # importing in its own process while the checks below run
            from crmhub.runtime import _fresh_forkserver

            _fresh_forkserver(step_log)
        # step processes rebuild the job themselves: they get Dagster's own loggers only, and
        # the progress comes from the run's event log (progress.watch_run)
        defs = _definitions(None if parallel else progress.run_loggers(shown, verbose=verbose))
        _check_connectors(defs.resources)
        checked: dict[str, int] = {}
        problems = doctor.preflight(defs.resources, checked)
        if problems:  # one line each, nothing extracted
            if parallel:
                from crmhub.runtime import stop_forkserver

                stop_forkserver()
            for check in problems:
                print(f"crmhub: {doctor.problem_line(check)}", file=sys.stderr, flush=True)
            return EXIT_CONFIG

        # Dagster's own step-by-step log goes to the run's event log (the UI); the terminal
        # shows progress and the summary below (and Dagster's console log with -v).
        run_config: dict[str, Any] = {
            "ops": {},
            "loggers": progress.loggers_config(verbose, steps_in_processes=parallel),
        }
        if args.dry_run or args.full_refresh or args.reconcile:
            for asset in extract_assets:
                run_config["ops"][asset.node_def.name] = {
                    "config": {"reconcile": args.reconcile, "full_refresh": args.full_refresh}
                }
        if args.dry_run:
            for name in ("salesforce__writeback", "hubspot__writeback"):
                run_config["ops"][name] = {"config": {"dry_run": True}}
        job = defs.resolve_job_def("sync_job")
        tags = dict([SYNC_TRIGGER_TAG])
        if args.full_refresh or args.reconcile:
            from assets.unify import FULL_RECOMPUTE_TAG

            tags[FULL_RECOMPUTE_TAG] = "true"  # unify, handover, KPIs, writeback plan: all
        if args.dry_run:
            tags["crmhub/dry_run"] = "true"
        with _dagster_instance() as instance, shown:
            for dead in release_dead_syncs(instance):
                print(
                    f"crmhub: an earlier sync (run {dead.run_id[:8]}…) died mid-run; marked "
                    "failed and its CRM pool slot freed",
                    file=sys.stderr,
                    flush=True,
                )
            if parallel:
                from crmhub.runtime import execute_multiprocess

                with progress.watch_run(shown, instance, run_id):
                    result = execute_multiprocess(
                        instance, job, run_config, tags, run_id, step_log=step_log
                    )
            else:
                result = job.execute_in_process(
                    instance=instance,
                    run_config=run_config,
                    raise_on_error=False,
                    run_id=run_id,
                    tags=tags,
                )
        if args.dry_run and args.format != "table":
            code = print_sync_summary(result, dry_run=True, file=sys.stderr, preflight=checked)
            print_dry_run_diff(args.format)
            return code
        code = print_sync_summary(result, dry_run=args.dry_run, quiet=quiet, preflight=checked)
        if args.dry_run:
            print_dry_run_diff("table")
        return code


def _redact_url(url: str) -> str:
    """A database URL without its password, for printing."""
    from unified_model.database import redact_url

    return redact_url(url)


def cmd_ui(args: argparse.Namespace) -> int:
    """Open the Dagster UI; without CRM credentials, serve the sandbox next to it."""
    import subprocess

    home = settings.ensure_dagster_home()
    # the webserver runs from the project folder: pin the hub's folder to this one
    os.environ["CRMHUB_HOME"] = str(settings.hub_home())
    with _crm_environment(args.profile, args.seed) as where:
        _print(f"crmhub ui — {where}")
        _print(f"Dagster instance: {home}")
        if settings.on_sandbox():
            _print("Schedules and alert sensors start running against the sandbox.")
        # `dg dev` (dagster-dg-cli) reads the project from pyproject.toml's [tool.dg]
        dg_cli = Path(sys.executable).with_name("dg")
        cmd = [str(dg_cli), "dev", "-p", str(args.port)]
        return subprocess.call(cmd, cwd=settings.PROJECT_ROOT)


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from crmhub.errors import UsageError
    from sandbox.runner import DEFAULT_HS_PORT, DEFAULT_SF_PORT, Sandbox

    sf_port, hs_port = args.sf_port or DEFAULT_SF_PORT, args.hs_port or DEFAULT_HS_PORT
    sandbox = Sandbox(settings.sandbox_home(), sf_port=sf_port, hs_port=hs_port)
    try:
        info = sandbox.start()
    except OSError as exc:
        sandbox.stop()
        raise UsageError(
            f"port {sf_port} or {hs_port} is already in use ({exc.strerror or exc}); pick free "
            "ones with --sf-port and --hs-port, or stop the other sandbox (crmhub sync and ui "
            "reuse a running one)"
        ) from None
    if args.reset or not sandbox.is_seeded():
        _print(f"Seeding '{args.profile}' (seed {args.seed})…")
        stats = sandbox.seed(profile=args.profile, seed=args.seed)
        _print(_counts_table(stats))
    sandbox.write_discovery()
    _print(f"Salesforce emulator: {info.salesforce_url}")
    _print(f"HubSpot emulator:    {info.hubspot_url}")
    _print(f"CA certificate:      {info.ca_bundle}")
    _print(f"State:               {info.state_path}")
    # The sandbox's credentials are generated for this local emulator, not real secrets: shown
    # so that a user can export them (e.g. to run `dg dev` by hand against the sandbox).
    _print(
        "crmhub sync/ui and `dg dev` (same CRMHUB_HOME) find it by themselves; other tools can "
        "use these variables (sandbox-only credentials, they open nothing else):"
    )
    for key, value in settings.sandbox_environment(info).items():
        _print(f"  export {key}={value}")
    _print(
        "Control API: POST /__sandbox/seed|mutate|reset|faults|clock on either port. Ctrl-C stops."
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


def cmd_sandbox_seed(args: argparse.Namespace) -> int:
    from sandbox.generator import generate
    from sandbox.state import SandboxState

    settings.sandbox_home().mkdir(parents=True, exist_ok=True)
    state = SandboxState(settings.sandbox_home() / "sandbox.db")
    from crmhub.progress import working

    with working(f"generating the '{args.profile}' profile"):
        stats = generate(state, profile=args.profile, seed=args.seed)
    _print(_counts_table(stats))
    return 0


def _counts_table(counts: dict[str, Any]) -> str:
    """``{"salesforce/Account/updated": 3, "truth": 40}`` as a short table, one CRM object a row."""
    rows: dict[str, dict[str, Any]] = {}
    other: list[str] = []
    for key, value in counts.items():
        parts = key.split("/")
        if len(parts) == 3:
            rows.setdefault(f"{parts[0]} {parts[1]}", {})[parts[2]] = value
        elif len(parts) == 2:
            rows.setdefault(f"{parts[0]} {parts[1]}", {})["records"] = value
        else:
            other.append(f"{key}: {value}")
    width = max((len(k) for k in rows), default=0)
    lines = [
        f"  {name:<{width}}  " + ", ".join(f"{k}: {v}" for k, v in sorted(values.items()))
        for name, values in sorted(rows.items())
    ]
    if other:
        lines.append("  " + ", ".join(other))
    return "\n".join(lines)


def cmd_sandbox_mutate(args: argparse.Namespace) -> int:
    from crmhub.errors import UsageError
    from sandbox.mutate import mutate
    from sandbox.state import SandboxState

    path = settings.sandbox_home() / "sandbox.db"
    if not path.exists():
        raise UsageError(
            f"no sandbox data in {settings.sandbox_home()}; run `crmhub sandbox seed` (or a first "
            "`crmhub sync`) before mutating"
        )
    state = SandboxState(path)
    try:
        if state.count("salesforce", "Account") + state.count("hubspot", "companies") == 0:
            raise UsageError(
                "the sandbox holds no data; run `crmhub sandbox seed` (or a first `crmhub sync`) "
                "before mutating"
            )
        from crmhub.progress import working

        with working(f"editing {args.share:.0%} of the records"):
            changes = mutate(state, seed=args.seed, share=args.share)
    finally:
        state.close()
    _print(_counts_table(changes))
    return 0


EXIT_OK, EXIT_RUN_FAILED, EXIT_CONFIG, EXIT_SYNC_RUNNING = 0, 1, 2, 75

EPILOG = """exit codes: 0 ok; 1 the run or command failed (see the lines above); 2 configuration or
usage error (nothing was changed); 75 another sync holds the hub database (try again later).
-v shows details and tracebacks. Settings: environment variables or a .env file
(crmhub init writes a commented starter)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crmhub")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """-v/-q on the top level and on every subcommand (``crmhub sync -v`` and ``crmhub -v sync``)."""
    default: Any = False if top else argparse.SUPPRESS
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="show details: Dagster's step log, tracebacks of failures",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="print only problems (no progress, no summary)",
    )


def _profile(p: argparse.ArgumentParser, what: str = "first run") -> None:
    p.add_argument(
        "--profile",
        default="demo",
        choices=["tiny", "demo", "large"],
        help=f"sandbox data profile for the {what} (default: demo; tiny is fastest)",
    )
    p.add_argument("--seed", type=int, default=42, help="sandbox data seed (default: 42)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmhub",
        description="Salesforce + HubSpot integration hub: sync, unify, hand over, write back.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crmhub {_version()}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kw)
        _common(p)
        return p

    p = add("sync", "run the whole sync once (sandbox when no credentials)", epilog=EPILOG)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read and compute, then print the exact changes instead of writing them",
    )
    p.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="format of the --dry-run diff (json/csv go to stdout, the summary to stderr)",
    )
    p.add_argument(
        "--full-refresh",
        action="store_true",
        help="forget the cursors, re-read every object and recompute every customer",
    )
    p.add_argument(
        "--reconcile",
        action="store_true",
        help="also run the full id pass that finds hard deletes (and recompute every customer)",
    )
    p.add_argument(
        "--executor",
        choices=["in-process", "multiprocess"],
        default=os.environ.get("CRMHUB_SYNC_EXECUTOR", "in-process"),
        help="in-process (default: least overhead, best for incremental syncs) or multiprocess "
        "(Dagster's executor the schedules use: both CRMs' objects read at the same time, for "
        "large first syncs on machines with cores to spare); env CRMHUB_SYNC_EXECUTOR",
    )
    _profile(p)
    p.set_defaults(func=cmd_sync)

    from crmhub.doctor import cmd_doctor

    p = add("doctor", "check CRM connections, permissions, mapped fields, database and Dagster")
    p.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="table for people, json for CI (exit code 1 when a check fails)",
    )
    p.set_defaults(func=cmd_doctor)

    from crmhub.starter import cmd_init

    p = add("init", "write a commented starter .env and config/ files (never overwrites)")
    p.add_argument(
        "--dir", default=".", help="folder to write .env into (default: the current folder)"
    )
    p.set_defaults(func=cmd_init)

    p = add("ui", "open the Dagster UI on the hub's asset graph")
    p.add_argument("--port", type=int, default=3000, help="web UI port (default: 3000)")
    _profile(p)
    p.set_defaults(func=cmd_ui)

    sb = add("sandbox", "the built-in Salesforce and HubSpot emulators")
    sbs = sb.add_subparsers(dest="sandbox_command", required=True, metavar="SUBCOMMAND")

    def add_sb(name: str, help_text: str) -> argparse.ArgumentParser:
        q = sbs.add_parser(name, help=help_text, description=help_text)
        _common(q)
        return q

    p = add_sb("serve", "serve both emulators on fixed ports until Ctrl-C")
    _profile(p, "seeding")
    p.add_argument("--reset", action="store_true", help="re-seed even if data exists")
    p.add_argument("--sf-port", type=int, default=0, help="Salesforce emulator port (default 8443)")
    p.add_argument("--hs-port", type=int, default=0, help="HubSpot emulator port (default 8444)")
    p.set_defaults(func=cmd_sandbox_serve)
    p = add_sb("seed", "replace the sandbox data with a generated profile")
    _profile(p, "data")
    p.set_defaults(func=cmd_sandbox_seed)
    p = add_sb("mutate", "simulate users editing records in both CRMs")
    p.add_argument(
        "--share",
        type=float,
        default=0.01,
        help="share of records to change, 0-1 (default: 0.01)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed of the edits (default: 1)")
    p.set_defaults(func=cmd_sandbox_mutate)

    from crmhub.commands import register

    register(sub, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = bool(getattr(args, "verbose", False))
    args.quiet = bool(getattr(args, "quiet", False)) and not args.verbose
    from crmhub.env import load_dotenv_file

    load_dotenv_file()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `crmhub kpis --format csv | head`: the reader has what it wanted
        # Python's documented recipe: point stdout at devnull so the flush at exit stays quiet
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # one line: the hub's own message, or the kind of failure
        if args.verbose:
            import traceback

            traceback.print_exc()
        from crmhub.errors import explain

        message, code = explain(exc)
        print(f"crmhub: {one_line(message)}", file=sys.stderr)
        return code


def one_line(message: str) -> str:
    """A possibly multi-line error message as one terminal line (problems joined by "; ")."""
    parts = [" ".join(line.strip().lstrip("-").split()) for line in message.splitlines()]
    parts = [p for p in parts if p]
    text = parts[0] if parts else ""
    for part in parts[1:]:
        text = f"{text} {part}" if text.endswith(":") else f"{text}; {part}"
    return text


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["EXIT_SYNC_RUNNING", "Path", "build_parser", "main"]
