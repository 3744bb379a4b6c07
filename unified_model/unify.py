"""Build the unified model from the source rows: who is the same customer, and its golden record.

Why one pass over everything: identity resolution is global (a new explicit id can split an old
merge, a confirmed review joins two clusters), so each run re-resolves all live accounts with the
previous links as the memory that keeps hub ids stable. The expensive part, fuzzy matching, is
blocked (see ``identity``), so this stays fast at 100,000 customers. Children (contacts, deals,
tickets, emails, activities) then follow their accounts with set-based updates.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from unified_model import tables as t
from unified_model.identity import MatchConfig, link_contacts, resolve_customers
from unified_model.store import HubStore
from unified_model.survivorship import SurvivorshipPolicy, survive


@dataclass
class UnifyStats:
    customers: int = 0
    matched_across: int = 0
    salesforce_only: int = 0
    hubspot_only: int = 0
    pending_reviews: int = 0
    retired_ids: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    @property
    def match_rate(self) -> float:
        """Share of customers known to both CRMs."""
        return self.matched_across / self.customers if self.customers else 0.0


def unify(
    store: HubStore,
    *,
    now: dt.datetime,
    match_config: MatchConfig | None = None,
    policy: SurvivorshipPolicy | None = None,
) -> UnifyStats:
    """Resolve identities, write links and golden records, attach every child row."""
    with store.session() as s:
        accounts = list(
            s.exec(select(t.SourceAccount).where(col(t.SourceAccount.deleted).is_(False)))
        )
        contacts = list(s.exec(select(t.Contact).where(col(t.Contact.deleted).is_(False))))
        links = list(s.exec(select(t.SourceLink)))
        decisions = list(s.exec(select(t.MatchReview).where(t.MatchReview.status != "pending")))
        owners = {(o.source, o.source_id): o for o in s.exec(select(t.Owner))}
        existing_customers = {c.id: c for c in s.exec(select(t.Customer))}

    resolution = resolve_customers(
        accounts, contacts, existing_links=links, decisions=decisions, config=match_config, now=now
    )

    # --- identity links and account ownership ------------------------------------------------
    link_rows = [lnk.model_dump() for lnk in resolution.links(now)]
    with store.engine.begin() as conn:
        conn.execute(
            sa.delete(t.table_of(t.SourceLink)).where(
                t.table_of(t.SourceLink).c.object_type == "account"
            )
        )  # type: ignore[attr-defined]
    store.upsert_rows(t.SourceLink, link_rows, newer_only=False)
    assignment = resolution.account_assignment
    store.bulk_set(
        t.SourceAccount,
        [
            {
                "source": a.source,
                "source_id": a.source_id,
                "customer_id": assignment.get((a.source, a.source_id)),
            }
            for a in accounts
        ],
        ["customer_id"],
    )
    # deleted accounts leave their customer
    with store.engine.begin() as conn:
        acc = t.table_of(t.SourceAccount)
        conn.execute(acc.update().where(acc.c.deleted.is_(True)).values(customer_id=None))

    # --- golden records -----------------------------------------------------------------------
    policy = policy or SurvivorshipPolicy()
    by_customer: dict[str, list[t.SourceAccount]] = defaultdict(list)
    for a in accounts:
        cid = assignment.get((a.source, a.source_id))
        if cid:
            by_customer[cid].append(a)
    golden: list[dict[str, Any]] = []
    for cid, members in by_customer.items():
        # recency = when the business content changed, not when the hub last wrote its fields
        content_view = [
            m.model_copy(update={"modified_at": m.content_modified_at or m.modified_at})
            for m in members
        ]
        customer = survive(cid, content_view, owners, policy, now)
        previous = existing_customers.get(cid)
        row = customer.model_dump()
        row["created_at"] = previous.created_at if previous and previous.created_at else now
        row["updated_at"] = now
        golden.append(row)
    store.upsert_rows(t.Customer, golden, newer_only=False)
    gone = set(existing_customers) - set(by_customer)
    if gone:
        with store.engine.begin() as conn:
            for table in (t.Customer, t.HandoverState, t.CustomerMetrics):
                tbl = t.table_of(table)
                key = tbl.c.id if table is t.Customer else tbl.c.customer_id
                conn.execute(tbl.delete().where(key.in_(sorted(gone))))

    # --- reviews: new pending pairs; decided ones stay as they are -----------------------------
    review_rows = [
        {k: v for k, v in r.model_dump().items() if k != "id"} for r in resolution.reviews
    ]
    if review_rows:
        _insert_reviews(store, review_rows)

    # --- children follow their accounts --------------------------------------------------------
    contact_customer = link_contacts(contacts, assignment, accounts=accounts)
    store.bulk_set(
        t.Contact,
        [
            {
                "source": c.source,
                "source_id": c.source_id,
                "customer_id": contact_customer.get((c.source, c.source_id)),
            }
            for c in contacts
        ],
        ["customer_id"],
    )
    _attach_by_account(store)
    _attach_emails(store)
    _fold_stage_events(store)

    # --- stats ---------------------------------------------------------------------------------
    stats = UnifyStats(customers=len(by_customer), retired_ids=len(gone))
    for members in by_customer.values():
        sources = {m.source for m in members}
        if len(sources) > 1:
            stats.matched_across += 1
        elif "salesforce" in sources:
            stats.salesforce_only += 1
        else:
            stats.hubspot_only += 1
    stats.by_method = dict(Counter(a.method for a in resolution.assignments.values()))
    with store.session() as s:
        stats.pending_reviews = len(
            list(s.exec(select(t.MatchReview.id).where(t.MatchReview.status == "pending")))
        )
    return stats


def _insert_reviews(store: HubStore, rows: list[dict[str, Any]]) -> None:
    table = t.table_of(t.MatchReview)
    with store.engine.begin() as conn:
        for row in rows:
            stmt = (
                store._insert(table)
                .values(row)
                .on_conflict_do_nothing(
                    index_elements=["left_source", "left_id", "right_source", "right_id"]
                )
            )
            conn.execute(stmt)


def _attach_by_account(store: HubStore) -> None:
    """Deals, tickets and activities take the customer of their account (same CRM)."""
    acc = t.table_of(t.SourceAccount)
    with store.engine.begin() as conn:
        for model in (t.Deal, t.Ticket, t.Activity):
            tbl = t.table_of(model)
            sub = (
                sa.select(acc.c.customer_id)
                .where(acc.c.source == tbl.c.source, acc.c.source_id == tbl.c.account_source_id)
                .scalar_subquery()
            )
            conn.execute(tbl.update().values(customer_id=sub))


def _attach_emails(store: HubStore) -> None:
    """An email belongs to the customer of its account, else of its contact, else of its deal."""
    with store.session() as s:
        account_customer = {
            (a.source, a.source_id): a.customer_id for a in s.exec(select(t.SourceAccount))
        }
        contact_customer = {
            (c.source, c.source_id): c.customer_id for c in s.exec(select(t.Contact))
        }
        deal_customer = {(d.source, d.source_id): d.customer_id for d in s.exec(select(t.Deal))}
        emails = s.exec(
            select(  # type: ignore[call-overload]
                t.Email.source,
                t.Email.source_id,
                t.Email.account_source_ids,
                t.Email.contact_source_ids,
                t.Email.deal_source_ids,
                t.Email.customer_id,
            )
        ).all()
    updates: list[dict[str, Any]] = []
    for source, sid, acc_ids, contact_ids, deal_ids, current in emails:
        cid = None
        for lookup, ids in (
            (account_customer, acc_ids),
            (contact_customer, contact_ids),
            (deal_customer, deal_ids),
        ):
            cid = next((lookup[(source, i)] for i in ids or [] if lookup.get((source, i))), None)
            if cid:
                break
        if cid != current:
            updates.append({"source": source, "source_id": sid, "customer_id": cid})
    store.bulk_set(t.Email, updates, ["customer_id"])


def _fold_stage_events(store: HubStore) -> None:
    """Salesforce stage history → ``Deal.stage_entered_at`` (first entry per stage)."""
    with store.session() as s:
        events = s.exec(
            select(t.DealStageEvent).where(col(t.DealStageEvent.deleted).is_(False))
        ).all()
        if not events:
            return
        entered: dict[tuple[str, str], dict[str, dt.datetime]] = defaultdict(dict)
        for e in events:
            if not e.stage or e.entered_at is None:
                continue
            stages = entered[(e.source, e.deal_source_id)]
            if e.stage not in stages or e.entered_at < stages[e.stage]:
                stages[e.stage] = e.entered_at
        deals = s.exec(select(t.Deal.source, t.Deal.source_id, t.Deal.stage_entered_at)).all()
    updates = []
    for source, sid, current in deals:
        found = entered.get((source, sid))
        if not found:
            continue
        stages = found
        merged = {**(current or {}), **{k: v.isoformat() for k, v in stages.items()}}
        if merged != (current or {}):
            updates.append({"source": source, "source_id": sid, "stage_entered_at": merged})
    store.bulk_set(t.Deal, updates, ["stage_entered_at"])
