"""The summary ``crmhub sync`` prints: what a run extracted, unified, decided and wrote.

Read from the run's own materialization metadata, so the terminal and the Dagster UI always agree.
"""

from __future__ import annotations

from typing import Any


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


def print_sync_summary(result: Any, *, dry_run: bool = False) -> int:
    mats = collect(result)
    p = print
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
            p(
                f"  {crm:<10} {name:<12} {int(_value(md, 'records')):>8} records  "
                f"{n_calls:>5} calls{note}"
            )
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
    p("")
    p("API calls this run: " + ", ".join(f"{crm} {n}" for crm, n in calls.items()))
    if not result.success:
        p("")
        p("Some steps failed:")
        for event in result.all_events:
            if event.is_step_failure:
                p(f"  {event.step_key}: {failure_line(event.event_specific_data.error)}")
        return 1
    return 0


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
