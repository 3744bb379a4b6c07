"""``crmhub doctor`` and the sync's preflight: is everything the hub needs there, before it runs?

Why one module for both: the questions are the same (can the hub reach each CRM, log in, read
every object, find every mapped field, write its own fields; is the hub database there and at the
current schema; can Dagster record the run). ``doctor`` asks all of them and prints a table (or
JSON for a CI job); ``sync`` asks the cheap ones first and stops with one line per problem and
exit code 2 before extracting anything. The CRM checks themselves live in the connectors
(``diagnose``); this module adds the hub's own parts and renders the answers. No check prints a
credential: rows hold host, variable, field and scope names only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connectors.diagnostics import Check
from connectors.errors import ConnectorError
from crmhub import settings
from unified_model.database import redact_url

LABELS = {
    "salesforce": "Salesforce",
    "hubspot": "HubSpot",
    "hub": "hub database",
    "dagster": "Dagster",
}


def crm_checks(
    resources: dict[str, Any], *, deep: bool = True, calls: dict[str, int] | None = None
) -> list[Check]:
    """Each CRM's own diagnosis, through the same resources (and variables) a sync uses.

    ``calls`` receives the API calls each CRM's checks spent (the sync reports them)."""
    checks: list[Check] = []
    hub_config = resources["hub_config"].process_config_and_initialize()
    writeback = hub_config.writeback()
    for crm in ("salesforce", "hubspot"):
        try:
            with resources[crm].process_config_and_initialize_cm() as resource:
                connector = resource.connector(hub_config.mapping(crm), writeback)
                try:
                    checks.extend(connector.diagnose(writeback.specs(), deep=deep))
                finally:
                    if calls is not None:
                        calls[crm] = calls.get(crm, 0) + connector.usage().calls
        except ConnectorError as exc:
            checks.append(Check(crm, "configuration", "fail", type(exc).__name__, str(exc)))
        except Exception as exc:  # a resource that cannot even be built: name the variable
            checks.append(_resource_failure(crm, exc))
    return checks


def _resource_failure(crm: str, exc: Exception) -> Check:
    text = str(exc)
    prefix = "CRMHUB_SF_" if crm == "salesforce" else "CRMHUB_HS_"
    named = [
        word.strip("'\".,:()") for word in text.split() if word.strip("'\".,:()").startswith(prefix)
    ]
    fix = f"check {', '.join(dict.fromkeys(named))}" if named else f"check the {prefix}* variables"
    return Check(crm, "configuration", "fail", type(exc).__name__, fix)


def database_checks(url: str) -> list[Check]:
    """Reachable, at the current schema revision, writable; nothing is changed."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from unified_model.migrations import alembic_config

    shown = redact_url(url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            folder = path.parent if path.parent.exists() else None
            if folder is not None and os.access(folder, os.W_OK):
                return [
                    Check(
                        "hub",
                        "database",
                        "warn",
                        f"{shown} does not exist yet",
                        "the first sync creates it",
                    )
                ]
            return [
                Check(
                    "hub",
                    "database",
                    "fail",
                    f"cannot create {path}",
                    "set CRMHUB_HOME or CRMHUB_DATABASE_URL to a writable place",
                )
            ]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            checks = [
                Check("hub", "database", "pass", f"{shown} reachable ({engine.dialect.name})")
            ]
            if current == head:
                checks.append(Check("hub", "schema", "pass", f"revision {current} (current)"))
            else:
                checks.append(
                    Check(
                        "hub",
                        "schema",
                        "warn",
                        f"revision {current or 'none'}, this version needs {head}",
                        "the next sync upgrades it (data is kept)",
                    )
                )
            if current is not None:
                conn.rollback()  # end the read; the write probe is rolled back too
                try:
                    conn.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
                    checks.append(
                        Check("hub", "writable", "pass", "write access confirmed (rolled back)")
                    )
                except sa.exc.DBAPIError as exc:
                    checks.append(
                        Check(
                            "hub",
                            "writable",
                            "fail",
                            f"cannot write ({type(exc.orig).__name__})",
                            "grant the hub's database user write access (or fix file permissions)",
                        )
                    )
                finally:
                    conn.rollback()
            return checks
    except sa.exc.DBAPIError as exc:
        return [
            Check(
                "hub",
                "database",
                "fail",
                f"{shown} unreachable ({type(exc.orig).__name__})",
                "check CRMHUB_DATABASE_URL and that the database server runs",
            )
        ]
    finally:
        engine.dispose()


def dagster_checks() -> list[Check]:
    """The Dagster instance the CLI records runs in opens and answers: the one ``crmhub sync``
    uses (``DAGSTER_HOME``, else ``$CRMHUB_HOME/dagster``), not a default of its own (it used
    to check, and create, an instance in the repository folder)."""
    from crmhub.runtime import _dagster_instance

    home = str(settings.dagster_home())
    try:
        with _dagster_instance() as instance:  # as sync opens it (under its init lock)
            instance.get_runs(limit=1)
            storage = type(instance.run_storage).__name__
    except Exception as exc:
        return [
            Check(
                "dagster",
                "instance",
                "fail",
                f"{home}: {type(exc).__name__}",
                "check DAGSTER_HOME and its dagster.yaml (storage settings)",
            )
        ]
    return [Check("dagster", "instance", "pass", f"{home} ({storage})")]


def preflight(resources: dict[str, Any], calls: dict[str, int] | None = None) -> list[Check]:
    """The failures a sync must not start with: host, login, object access, mapped fields.

    Costs about four Salesforce calls (login, describe of the objects with mapped fields) and
    five HubSpot calls (the properties of each object); the hub fields and the budget are left to
    the run (it provisions fields and stops at the budget by itself).
    """
    return [c for c in crm_checks(resources, deep=False, calls=calls) if c.status == "fail"]


def problem_line(check: Check) -> str:
    """One terminal line for a failed check: which CRM, what, and the fix."""
    label = LABELS.get(check.crm, check.crm)
    if check.detail and check.fix and check.detail[0].isupper() and " " not in check.detail:
        return f"{label}: {check.fix}"  # detail is just an error type; the fix says it all
    text = f"{label} {check.name}: {check.detail}" if check.detail else f"{label} {check.name}"
    return f"{text}; {check.fix}" if check.fix else text


def render(checks: Sequence[Check], fmt: str) -> str:
    """The report as JSON (for CI) or as a table (plain text unless ``stdout`` is a terminal)."""
    if fmt == "json":
        return json.dumps(
            {
                "ok": not any(c.status == "fail" for c in checks),
                "checks": [c.as_dict() for c in checks],
            },
            indent=2,
        )
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(pad_edge=False, box=None, header_style="bold")
    for column in ("", "check", "", "result", "fix"):
        table.add_column(column, overflow="fold")
    marks = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}
    for c in checks:
        table.add_row(LABELS.get(c.crm, c.crm), c.name, marks[c.status], c.detail, c.fix)
    tty = sys.stdout.isatty()
    console = Console(width=None if tty else 160, force_terminal=tty, highlight=False)
    with console.capture() as captured:
        console.print(table)
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("pass", "warn", "fail")}
    lines = [line.rstrip() for line in captured.get().rstrip().splitlines()]
    summary = f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed"
    return "\n".join([*lines, "", summary])


def cmd_doctor(args: Any) -> int:
    """Every check, as a table or JSON; exit 1 when one fails (usable in the customer's CI)."""
    import sys

    from crmhub.runtime import _check_config_files, _crm_environment, _definitions

    checks: list[Check] = []
    try:
        _check_config_files()
        checks.append(Check("hub", "config files", "pass", str(settings.config_dir())))
    except Exception as exc:
        from crmhub.errors import explain

        checks.append(Check("hub", "config files", "fail", type(exc).__name__, explain(exc)[0]))
    with _crm_environment("demo", 42, seed_empty=False) as where:
        if args.format != "json":
            print(f"crmhub doctor — {where}", file=sys.stderr, flush=True)
        if not any(c.status == "fail" for c in checks):
            checks.extend(crm_checks(_definitions().resources))
        checks.extend(database_checks(settings.database_url()))
        checks.extend(dagster_checks())
    print(render(checks, args.format))
    return 1 if any(c.status == "fail" for c in checks) else 0
