"""The summary ``crmhub sync`` prints: what a run extracted, unified, decided and wrote.

Read from the run's own materialization metadata, so the terminal and the Dagster UI always agree.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


def _value(md: dict[str, Any], key: str, default: Any = 0) -> Any:
    entry = md.get(key)
    if entry is None:
        return default
    return getattr(entry, "value", entry)


def collect(result: Any) -> dict[tuple[str, ...], dict[str, Any]]:
    """Asset key path -> metadata of its materialization in this run."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[tuple(mat.asset_key.path)] = dict(mat.metadata)
    return out


def print_sync_summary(
    result: Any,
    *,
    dry_run: bool = False,
    quiet: bool = False,
    file: TextIO | None = None,
    preflight: dict[str, int] | None = None,
) -> int:
    """The run's summary; with ``quiet`` only its failures. Exit code 1 when a step failed."""
    mats = collect(result)

    def p(*args: Any) -> None:
        if not quiet:
            print(*args, file=file or sys.stdout, flush=True)

    p("")
    p("Extracted (records incl. deletions, API calls)")
    calls: dict[str, int] = {}
    for crm in ("salesforce", "hubspot"):
        rows = [
            (k[1], md)
            for k, md in sorted(mats.items())
            if len(k) == 2 and k[0] == crm and k[1] != "writeback"
        ]
        for name, md in rows:
            n_calls = int(_value(md, "api_calls"))
            calls[crm] = calls.get(crm, 0) + n_calls
            note = (
                " (API budget spent: stopped early)"
                if _value(md, "stopped_early", "no") != "no"
                else ""
            )
            # ``records`` holds upserts and tombstones read from the CRM; hard deletes found by
            # the --reconcile id pass are only in ``tombstones``: count them too
            records, upserted = int(_value(md, "records")), int(_value(md, "upserted"))
            deletions = int(_value(md, "tombstones"))
            total = records + max(deletions - (records - upserted), 0)
            gone = f", {deletions} deletions" if deletions else ""
            p(f"  {crm:<10} {name:<12} {total:>8} records  {n_calls:>5} calls{gone}{note}")
    unified = mats.get(("unified_customers",))
    if unified:
        p("")
        p(
            f"Customers: {_value(unified, 'customers')} unified — "
            f"{_value(unified, 'in_both_crms')} matched across both CRMs, "
            f"{_value(unified, 'salesforce_only')} Salesforce only, "
            f"{_value(unified, 'hubspot_only')} HubSpot only "
            f"(pending match reviews: {_value(unified, 'pending_reviews')})"
        )
    handover = mats.get(("handover_status",))
    if handover:
        statuses = {
            k.removeprefix("status_"): _value(handover, k)
            for k in handover
            if k.startswith("status_")
        }
        p("Handover status: " + ", ".join(f"{k} {v}" for k, v in statuses.items()))
        if "evaluated" in handover:  # what the incremental run recomputed
            evaluated, changed = (
                int(_value(handover, "evaluated")),
                int(_value(handover, "changed")),
            )
            why = (
                "all customers (first run, new business day or rules changed)"
                if _value(handover, "full_recompute", False)
                else "customers whose data changed"
            )
            p(f"Re-evaluated: {evaluated} {why}; {changed} with new values")
    p("")
    p("Written back" + (" (dry run: nothing sent)" if dry_run else ""))
    for crm in ("salesforce", "hubspot"):
        wb = mats.get((crm, "writeback"))
        if wb is None:
            p(f"  {crm:<10} not run")
            continue
        n_calls = int(_value(wb, "api_calls"))
        calls[crm] = calls.get(crm, 0) + n_calls
        p(
            f"  {crm:<10} {int(_value(wb, 'records_changed'))} records changed, "
            f"{int(_value(wb, 'fields_changed'))} fields; ok {int(_value(wb, 'written_ok'))}, "
            f"failed {int(_value(wb, 'failed'))}, skipped {int(_value(wb, 'skipped'))}; "
            f"{int(_value(wb, 'write_calls'))} write calls"
        )
        if "contacts_changed" in wb:  # HubSpot: the marketing suppression on contacts
            p(
                f"  {'':<10} {int(_value(wb, 'contacts_changed'))} contacts changed (marketing "
                f"suppression); ok {int(_value(wb, 'contacts_written_ok'))}, failed "
                f"{int(_value(wb, 'contacts_failed'))}; "
                f"{int(_value(wb, 'contact_write_calls'))} write calls"
            )
    p("")
    checked = preflight or {}
    for crm, n in checked.items():
        calls[crm] = calls.get(crm, 0) + n
    note = ""
    if any(checked.values()):
        note = (
            " (incl. preflight checks: " + ", ".join(f"{c} {n}" for c, n in checked.items()) + ")"
        )
    p("API calls this run: " + ", ".join(f"{crm} {n}" for crm, n in calls.items()) + note)
    if not result.success:
        # one line per distinct cause: six steps failing on the same bad token are one problem
        causes: dict[str, list[str]] = {}
        for event in result.all_events:
            if event.is_step_failure:
                text = failure_line(event.event_specific_data.error)
                causes.setdefault(text, []).append(event.step_key.replace("__", " "))
        err = sys.stderr
        print("", file=err)
        print("Some steps failed (details: crmhub ui, or -v):", file=err)
        for text, steps in causes.items():
            where = steps[0] if len(steps) == 1 else f"{steps[0]} and {len(steps) - 1} more steps"
            print(f"  {where}: {text}", file=err, flush=True)
        skipped = _skipped_steps(result)
        if skipped:
            print(f"  not run because of that: {skipped}", file=err, flush=True)
        return 1
    return 0


def _skipped_steps(result: Any) -> str:
    names = [
        e.step_key.replace("__", " ")
        for e in result.all_events
        if e.event_type_value == "STEP_SKIPPED" and e.step_key
    ]
    return ", ".join(names)


def failure_line(error: Any) -> str:
    """What went wrong in a failed step, as one line: the innermost cause, not Dagster's wrapper.

    Dagster wraps an asset's exception in "Error occurred while executing op …"; the reader
    needs the hub's own message under it (which names the key, field or limit to fix).
    """
    if error is None:
        return "failed"
    while getattr(error, "cause", None) is not None:
        error = error.cause
    text = " ".join(line.strip() for line in str(error.message).splitlines() if line.strip())
    kind, sep, rest = text.partition(": ")
    if sep and " " not in kind:  # "package.module.SomeError: message" -> "SomeError: message"
        text = f"{kind.rsplit('.', 1)[-1]}: {rest}"
    return text


def dry_run_rows() -> list[dict[str, Any]]:
    """Every change the dry run found, one row per record and field, from the hub database.

    Why recomputed here instead of read from the run's metadata: the metadata keeps a short
    preview (Dagster's event log is no place for thousands of values). A dry run writes no
    ledger, so the same diff over the same store is exactly what the run previewed; only
    ``last_sync`` shows the current time instead of the time of a real write.
    """
    import datetime as dt

    from sqlmodel import select

    from crmhub import settings
    from unified_model import tables as t
    from unified_model.store import HubStore
    from unified_model.writeback import (
        HUBSPOT_CONTACT,
        load_writeback_config,
        plan_contact_writeback,
        plan_writeback,
    )

    config = load_writeback_config(settings.config_dir() / "mapping.yaml")
    store = HubStore(settings.database_url())
    rows: list[dict[str, Any]] = []
    try:
        with store.session() as session:
            names = {c.id: c.name for c in session.exec(select(t.Customer)).all()}
            now = dt.datetime.now(dt.UTC)
            plans = [
                (crm, plan)
                for crm in ("salesforce", "hubspot")
                for plan in plan_writeback(session, crm, config, now)
            ]
            # the HubSpot contacts' suppression fields (``crm``: the audit's source name)
            plans += [(HUBSPOT_CONTACT, p) for p in plan_contact_writeback(session, config)]
            for crm, plan in plans:
                for key, (old, new) in plan.changes.items():
                    rows.append(
                        {
                            "crm": crm,
                            "record": plan.source_id,
                            "customer": names.get(plan.customer_id) or plan.customer_id,
                            "field": key,
                            "old": old,
                            "new": new,
                        }
                    )
    finally:
        store.dispose()
    return rows


def hubspot_read_until() -> str | None:
    """The HubSpot clock time up to which the last run read every object (oldest window end).

    Why the dry run prints it: HubSpot's search index lags, so each run reads only up to the
    portal's time minus a margin (30 s). Edits made in HubSpot after that instant are not in a
    diff computed now; the next run reads them and may write more than this preview. Measured:
    a dry run right after ``sandbox mutate --share 0.1`` previewed 10/4 records, the same dry run
    35 s later 14/13, and the real sync after it wrote exactly 14/13.
    """
    from crmhub import settings
    from unified_model.store import HubStore

    store = HubStore(settings.database_url())
    try:
        uppers = [
            str((store.get_cursor("hubspot", kind) or {}).get("upper") or "")
            for kind in ("account", "contact", "deal", "ticket", "email")
        ]
    finally:
        store.dispose()
    known = sorted(u for u in uppers if u)
    return known[0].replace("T", " ")[:19] + " UTC" if known else None


def print_dry_run_diff(fmt: str) -> None:
    """The dry run's diff on stdout: a table per CRM, or JSON / CSV for a review tool."""
    import csv
    import json

    rows = dry_run_rows()
    until = hubspot_read_until()
    if until:
        print(
            f"HubSpot was read up to {until} (its search index lags, so the hub reads 30 s "
            "behind): edits made after that are not in this diff; the next run reads them.",
            file=sys.stderr if fmt != "table" else sys.stdout,
            flush=True,
        )
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    if fmt == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=["crm", "record", "customer", "field", "old", "new"]
        )
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.console import Console
    from rich.table import Table

    tty = sys.stdout.isatty()
    console = Console(width=None if tty else 200, force_terminal=tty, highlight=False)
    for crm in ("salesforce", "hubspot", "hubspot_contact"):
        mine = [r for r in rows if r["crm"] == crm]
        if crm == "hubspot_contact" and not mine:
            continue
        records = len({r["record"] for r in mine})
        where = "HubSpot contacts" if crm == "hubspot_contact" else crm
        print(f"\nWould change in {where}: {records} records, {len(mine)} fields")
        if not mine:
            continue
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("record", "customer", "field", "old", "", "new"):
            table.add_column(column, overflow="fold")
        last = None
        for r in mine:
            same = r["record"] == last
            table.add_row(
                "" if same else r["record"],
                "" if same else str(r["customer"] or ""),
                r["field"],
                _cell(r["old"]),
                "→",
                _cell(r["new"]),
            )
            last = r["record"]
        with console.capture() as captured:
            console.print(table)
        print("\n".join(line.rstrip() for line in captured.get().rstrip().splitlines()))


def _cell(value: str | None, width: int = 60) -> str:
    if value is None:
        return "(empty)"
    text = " ".join(value.split())
    return text if len(text) <= width else text[: width - 1] + "…"
