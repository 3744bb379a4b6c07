"""What changed since a phase last ran: the bookkeeping of the incremental phases after extraction.

Why: extraction is incremental (cursors per CRM object), but unify, handover, the KPIs and the
writeback plan used to recompute all customers on every run: on ``large`` a sync with nothing
changed spent ten minutes after its 19 API calls. Each of those phases now keeps a **watermark**
(a hub time, in ``sync_cursor`` under source ``hub``) and a **fingerprint** of what else decides
its output (rules, configuration, the business day for time-based rules, the hub's version). A
phase

- does nothing when no row changed since its watermark and its fingerprint is the same;
- recomputes only the customers whose rows changed (``changed_at``, set by the store only when a
  stored value really changes), whose golden record changed, or that lost a row to another
  customer (``dirty_customer``, noted by unify and erasure);
- recomputes everything when it has no watermark or its fingerprint changed (a rules edit, the
  first run of a business day for the time-based rules, an upgrade).

The watermarks are hub times taken under the writer lock (one sync per hub at a time), so no
row can be written between a phase's reads and its watermark by anyone but the run itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from unified_model import tables as t

#: ``sync_cursor.source`` of the phases' watermarks
HUB = "hub"
#: the phases after unify, each with its watermark
HANDOVER = "handover"
COMPANY_KPIS = "company_kpis"


def writeback_phase(crm: str) -> str:
    return f"writeback:{crm}"


DOWNSTREAM = (
    HANDOVER,
    COMPANY_KPIS,
    writeback_phase("salesforce"),
    writeback_phase("hubspot"),
    writeback_phase("hubspot_contact"),
)
#: source tables whose rows carry a ``customer_id``
CUSTOMER_ROWS: tuple[type[Any], ...] = (
    t.SourceAccount,
    t.Contact,
    t.Deal,
    t.Email,
    t.Ticket,
    t.Activity,
)
#: every table whose ``changed_at`` means "the inputs of the hub's work changed"
CHANGE_TABLES: tuple[type[Any], ...] = (*CUSTOMER_ROWS, t.Owner, t.DealStageEvent)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of what, besides the rows, decides a phase's output."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def hub_version() -> str:
    """The installed hub's version: an upgrade may compute differently, so it recomputes."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crmhub")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Watermark:
    """Where a phase stopped: the hub time it read up to and the fingerprint it ran with."""

    at: dt.datetime
    fingerprint: str
    extra: dict[str, Any]


def load(store: Any, phase: str) -> Watermark | None:
    cursor = store.get_cursor(HUB, phase)
    if not cursor or "at" not in cursor:
        return None
    return Watermark(
        at=dt.datetime.fromisoformat(cursor["at"]),
        fingerprint=str(cursor.get("fingerprint", "")),
        extra={k: v for k, v in cursor.items() if k not in ("at", "fingerprint")},
    )


def save(store: Any, phase: str, at: dt.datetime, fp: str, **extra: Any) -> None:
    store.save_cursor(HUB, phase, {"at": at.isoformat(), "fingerprint": fp, **extra})


def forget(store: Any, *phases: str) -> None:
    """Drop watermarks: the phases recompute everything on their next run."""
    for phase in phases:
        store.reset_cursor(HUB, phase)


def _changed_after(store: Any, since: dt.datetime, tables: Iterable[tuple[type[Any], str]]) -> bool:
    """Does any of these (table, time column) pairs hold a row later than ``since``? One index
    lookup per table, stopping at the first hit."""
    with store.engine.connect() as conn:
        for model, column in tables:
            tbl = t.table_of(model)
            hit = conn.execute(sa.select(sa.literal(1)).where(tbl.c[column] > since).limit(1))
            if hit.first() is not None:
                return True
    return False


#: decisions made in the hub rather than read from a CRM, with the column that dates them
_HUB_DECISIONS: tuple[tuple[type[Any], str], ...] = (
    (t.MatchReview, "decided_at"),
    (t.ErasureAudit, "erased_at"),
)


def anything_changed(store: Any, since: dt.datetime) -> bool:
    """Has any source row, review decision or erasure changed since ``since``? (index lookups)"""
    rows = [(model, "changed_at") for model in CHANGE_TABLES]
    return _changed_after(store, since, [*rows, *_HUB_DECISIONS, (t.DirtyCustomer, "marked_at")])


#: the source tables the company KPIs read (deals with their folded stage history, tickets,
#: emails, contacts for the new leads, activities, owners); not the accounts
KPI_TABLES: tuple[type[Any], ...] = (
    t.Deal,
    t.DealStageEvent,
    t.Ticket,
    t.Email,
    t.Contact,
    t.Activity,
    t.Owner,
)


def kpi_inputs_changed(store: Any, since: dt.datetime) -> bool:
    """Has any row the company KPIs read changed since ``since``? Their rows (a row that moves
    to another customer is re-attached, which dates it) and erasures. Not the accounts: a
    changed account's revenue or the echo of a writeback leaves every company KPI as it was.
    (The one golden field they read, the owner, is compared by the KPIs themselves.)"""
    return bool(kpi_tables_changed(store, since))


def kpi_tables_changed(store: Any, since: dt.datetime) -> set[type[Any]]:
    """``kpi_inputs_changed`` table by table: the KPI tables with a row changed since
    ``since``, and ``ErasureAudit`` when an erasure ran (one index lookup each)."""
    dated: list[tuple[type[Any], str]] = [(m, "changed_at") for m in KPI_TABLES]
    dated.append((t.ErasureAudit, "erased_at"))
    return {model for model, column in dated if _changed_after(store, since, [(model, column)])}


#: the tables whose rows decide who is the same customer and its golden record (accounts and
#: their owners; contacts by their email domains and links)
RESOLUTION_TABLES: tuple[type[Any], ...] = (t.SourceAccount, t.Contact, t.Owner)


def resolution_inputs_changed(store: Any, since: dt.datetime) -> bool:
    """Has anything that identity resolution reads changed since ``since``? Accounts,
    contacts, owners, review decisions, erasures (deals, emails, tickets and activities only
    follow their accounts and contacts)."""
    rows = [(model, "changed_at") for model in RESOLUTION_TABLES]
    return _changed_after(store, since, [*rows, *_HUB_DECISIONS])


def rows_changed(store: Any, since: dt.datetime, model: type[Any]) -> bool:
    """Did any row of this source table change since ``since``? (one index lookup)"""
    return _changed_after(store, since, [(model, "changed_at")])


def erasures_since(store: Any, since: dt.datetime) -> bool:
    """Did a person's erasure run since ``since``? (It rewrites rows outside the extraction.)"""
    return _changed_after(store, since, [(t.ErasureAudit, "erased_at")])


def owners_changed(store: Any, since: dt.datetime) -> bool:
    """An owner's team or address changed: who is an account manager may change for many."""
    tbl = t.table_of(t.Owner)
    with store.engine.connect() as conn:
        hit = conn.execute(sa.select(sa.literal(1)).where(tbl.c.changed_at > since).limit(1))
        return hit.first() is not None


def changed_customers(store: Any, since: dt.datetime) -> set[str]:
    """Customers whose inputs changed since ``since``: rows, golden record, or rows lost."""
    out: set[str] = set()
    with store.engine.connect() as conn:
        out.update(customers_of_changed_rows(conn, since))
        cust = t.table_of(t.Customer)
        out.update(conn.execute(sa.select(cust.c.id).where(cust.c.updated_at > since)).scalars())
        dirty = t.table_of(t.DirtyCustomer)
        out.update(conn.execute(sa.select(dirty.c.customer_id)).scalars())
    return out


def clear_dirty(store: Any, upto: dt.datetime) -> None:
    """Forget the dirty marks a recomputation has seen (marks made later stay)."""
    dirty = t.table_of(t.DirtyCustomer)
    with store.engine.begin() as conn:
        conn.execute(dirty.delete().where(dirty.c.marked_at <= upto))


def customers_of_changed_rows(conn: Any, since: dt.datetime) -> Iterable[str]:
    """The customers that rows changed since ``since`` belong to *now* (before unify re-links
    them): when a deal or contact moves to another customer, the one it leaves changes too."""
    for model in CUSTOMER_ROWS:
        yield from customers_changed_in(conn, t.table_of(model), since)


def customers_changed_in(conn: Any, tbl: sa.Table, since: dt.datetime) -> set[str]:
    """The customers of ``tbl``'s rows changed since ``since``, each once.

    Why no ``DISTINCT`` in SQL: asked for distinct customers, SQLite walks the ``customer_id``
    index (it returns them in order, without a temporary B-tree) and tests every row's
    ``changed_at``: a scan of the whole table instead of a range of the ``changed_at`` index.
    After a 1 % round on ``large``: 0.88 s for the 1.1 million activities, 1.08 s over the six
    tables, once in unify and once in the handover; read from the range and made distinct
    here, 0.07 s (the same 21,472 customers). PostgreSQL takes the range either way.
    """
    return set(
        conn.execute(
            sa.select(tbl.c.customer_id).where(
                tbl.c.changed_at > since, tbl.c.customer_id.is_not(None)
            )
        ).scalars()
    )
