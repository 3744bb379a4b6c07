"""Moving pages from a connector into the store, checkpoint by checkpoint.

Why this lives next to the store: it is the store's contract with the connectors — save a page's
records, then its cursor, in that order, so that a run killed between two pages resumes after the
last saved page and never skips a record. The connector does the HTTP; this loop only persists.
A spent API quota ends this CRM's extraction for the run (the checkpoint stays), without failing
the other CRM or the rest of the graph.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.errors import QuotaExhausted
from unified_model.failpoints import crash_point
from unified_model.store import HubStore

log = logging.getLogger(__name__)
#: One DEBUG record per stored page, with ``extra={"progress": {...}}`` (crm, kind, records,
#: pages): whoever runs the graph may attach a handler to show progress (the CLI does; it stays
#: silent otherwise). Plain logging, so the graph never imports the CLI.
progress_log = logging.getLogger("crmhub.progress")


class _Reader(Protocol):
    crm: str

    def read(self, kind: Any, cursor: dict[str, Any] | None) -> Any: ...


@dataclass
class ExtractStats:
    """What one extraction of one CRM object kind did."""

    crm: str
    kind: str
    pages: int = 0
    upserted: int = 0
    tombstoned: int = 0
    suppressed: int = 0
    hard_deleted: int = 0
    first_sync: bool = False
    stopped: str | None = None  # "quota" when the budget ended the run early
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.upserted + self.tombstoned


def cursor_key(kind: str) -> str:
    return kind


def extract(
    store: HubStore, connector: _Reader, kind: str, *, reconcile: bool = False
) -> ExtractStats:
    """Read one kind incrementally from its stored cursor and persist every page.

    With ``reconcile`` the connector's full id pass (``reconcile_ids``) runs afterwards and live
    rows the CRM no longer has are tombstoned (hard deletes that leave no trace in the CRM).
    """
    stats = ExtractStats(crm=connector.crm, kind=kind)
    cursor = store.get_cursor(connector.crm, cursor_key(kind))
    stats.first_sync = cursor is None
    try:
        for page in connector.read(kind, cursor):
            crash_point("extract.after_fetch")
            counts = store.upsert_records(kind, page.records) if page.records else {}
            stats.upserted += counts.get("upserted", 0)
            stats.tombstoned += counts.get("tombstoned", 0)
            stats.suppressed += counts.get("suppressed", 0)
            crash_point("extract.after_store")
            store.save_cursor(connector.crm, cursor_key(kind), page.cursor)
            stats.pages += 1
            _report(stats, getattr(page, "total", None))
        if reconcile and hasattr(connector, "reconcile_ids"):
            for page in connector.reconcile_ids(kind):
                if page.full_pass_complete and page.seen_ids is not None:
                    stats.hard_deleted += store.mark_missing_deleted(
                        kind, connector.crm, page.seen_ids
                    )
    except QuotaExhausted as exc:
        stats.stopped = "quota"
        stats.notes.append(str(exc))
        log.warning("%s %s: stopped early, API budget spent; resumes next run", connector.crm, kind)
    return stats


def _report(stats: ExtractStats, total: int | None) -> None:
    if progress_log.isEnabledFor(logging.DEBUG):
        progress_log.debug(
            "%s %s: %d records, %d pages",
            stats.crm,
            stats.kind,
            stats.records,
            stats.pages,
            extra={
                "progress": {
                    "crm": stats.crm,
                    "kind": stats.kind,
                    "records": stats.records,
                    "pages": stats.pages,
                    "total": total,
                }
            },
        )
