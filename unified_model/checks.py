"""Data-quality checks on the unified model: the gate in front of writeback.

Why blocking checks: writeback changes records that sellers and AMs look at every day. If identity
resolution broke (accounts without a customer, one account in two customers), the hub must stop
before it writes a wrong status onto a customer's record, not after.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from unified_model import tables as t
from unified_model.store import HubStore


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    failing: int
    detail: str


def _scalar(store: HubStore, stmt: sa.Select) -> int:  # type: ignore[type-arg]
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def run_checks(store: HubStore) -> dict[str, CheckResult]:
    """Run every check; each result says how many rows fail and what that means."""
    acc = t.SourceAccount.__table__  # type: ignore[attr-defined]
    cust = t.Customer.__table__  # type: ignore[attr-defined]
    link = t.SourceLink.__table__  # type: ignore[attr-defined]
    deal = t.Deal.__table__  # type: ignore[attr-defined]
    ticket = t.Ticket.__table__  # type: ignore[attr-defined]

    # Each query is driven by an index (primary keys, ``customer_id``), never a correlated scan:
    # they run before every writeback, and on ``large`` (145k accounts, 100k customers) the
    # earlier forms (``NOT IN`` lists, a per-deal scan of every account of its CRM) took 31 s of
    # a 39 s nothing-changed sync.
    unlinked = _scalar(
        store,
        sa.select(sa.func.count())
        .select_from(acc)
        .where(acc.c.deleted.is_(False), acc.c.customer_id.is_(None)),
    )
    has_live_account = (
        sa.select(acc.c.source_id)
        .where(acc.c.customer_id == cust.c.id, acc.c.deleted.is_(False))
        .exists()
    )
    orphans = _scalar(
        store, sa.select(sa.func.count()).select_from(cust).where(sa.not_(has_live_account))
    )
    # A record in two customers: the link (which customer identity resolution chose) and the
    # account row (which customer its deals, KPIs and writeback follow) name different ones, or a
    # linked account has no link. The link table's key makes a second link per record
    # impossible, so this is where a split can actually show.
    joined = acc.outerjoin(
        link,
        sa.and_(
            link.c.source == acc.c.source,
            link.c.object_type == "account",
            link.c.source_id == acc.c.source_id,
        ),
    )
    dups = _scalar(
        store,
        sa.select(sa.func.count())
        .select_from(joined)
        .where(
            acc.c.deleted.is_(False),
            acc.c.customer_id.is_not(None),
            sa.or_(link.c.customer_id.is_(None), link.c.customer_id != acc.c.customer_id),
        ),
    )
    unresolved = 0
    for tbl in (deal, ticket):
        known = (
            sa.select(acc.c.source_id)
            .where(
                acc.c.source == tbl.c.source,
                acc.c.source_id == tbl.c.account_source_id,
                acc.c.deleted.is_(False),
                acc.c.customer_id.is_not(None),
            )
            .exists()
        )
        unresolved += _scalar(
            store,
            sa.select(sa.func.count())
            .select_from(tbl)
            .where(tbl.c.deleted.is_(False), tbl.c.customer_id.is_(None), known),
        )
    return {
        "every_account_linked": CheckResult(
            unlinked == 0,
            unlinked,
            "all live accounts are linked"
            if unlinked == 0
            else f"{unlinked} live accounts have no customer: identity resolution did not finish",
        ),
        "no_customer_without_source": CheckResult(
            orphans == 0,
            orphans,
            "every customer has a live account"
            if orphans == 0
            else f"{orphans} customers have no live account left",
        ),
        "one_link_per_record": CheckResult(
            dups == 0,
            dups,
            "no record is in two customers"
            if dups == 0
            else f"{dups} accounts are linked to a different customer than their row names",
        ),
        "children_resolved": CheckResult(
            unresolved == 0,
            unresolved,
            "deals and tickets are attached"
            if unresolved == 0
            else f"{unresolved} deals/tickets of known accounts have no customer",
        ),
    }
