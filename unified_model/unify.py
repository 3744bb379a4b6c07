"""Build the unified model from the source rows: who is the same customer, and its golden record.

Why one pass over everything: identity resolution is global (a new explicit id can split an old
merge, a confirmed review joins two clusters), so each run re-resolves all live accounts with the
previous links as the memory that keeps hub ids stable. The expensive part, fuzzy matching, is
blocked (see ``identity``), so this stays fast at 100,000 customers.

Why it streams: at that scale the source rows do not fit comfortably in memory as ORM objects
(780,000 contacts as SQLModel rows took 5.8 GB). So resolution holds only light ``AccountFacts``
(one per account: what matching reads); contacts are read in keyset pages, twice (to match, then
to link), and only those without an account are held while linking;
golden records are survived one page of customers at a time; emails, deals, tickets and
activities follow their accounts with set-based SQL. Memory grows with the number of accounts,
not with contacts or activity. Every write touches only rows whose value changed, so a run with
nothing new writes (almost) nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter, defaultdict, namedtuple
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from unified_model import incremental as changes
from unified_model import tables as t
from unified_model.domains import contact_work_domain, host_work_domain
from unified_model.gc_pause import gc_paused
from unified_model.identity import (
    AccountFacts,
    ContactFacts,
    MatchConfig,
    RecordKey,
    Resolution,
    iter_contact_links,
    relink_contacts,
    resolution_digest,
    resolve_customers,
)
from unified_model.store import HubStore, utcnow
from unified_model.survivorship import SurvivorshipPolicy, survive_row

#: rows per read page and per write batch
PAGE = 5000
#: version of the per-contact link state (``Contact.linked_via``) a run may trust, kept in
#: unify's watermark: absent (a hub before it, a run that skipped the linking without it),
#: the next linking reads every contact and writes it
CONTACT_LINKS = 1
#: above this share of the accounts moved (and more than ``RELINK_MIN`` of them), linking
#: reads every contact anyway: the contacts of the moved accounts would be most of them (the
#: echo of a first writeback re-reads every account)
RELINK_SHARE = 0.2
RELINK_MIN = 1000
#: a full linking that places at least this many contacts still without a customer (a first
#: sync's: every one) drops the voters' index and builds it again afterwards: kept up row by
#: row it made a first linking of ``large``'s 780,000 contacts take 25 s instead of 15
REINDEX_FROM = 50_000
#: golden-record columns that say when, not what: a change there alone is not a change
_BOOKKEEPING = {"created_at", "updated_at"}


@dataclass
class UnifyStats:
    customers: int = 0
    matched_across: int = 0
    salesforce_only: int = 0
    hubspot_only: int = 0
    pending_reviews: int = 0
    retired_ids: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    #: rows written per table (changed ones only): what a re-run with nothing new should keep ~0
    written: dict[str, int] = field(default_factory=dict)
    #: seconds per phase, for the run's metadata and the scale benchmark
    seconds: dict[str, float] = field(default_factory=dict)
    #: nothing changed since the last unify: nothing was resolved, the figures are the last run's
    skipped: bool = False
    #: only child rows changed: they were attached, nothing was resolved (``_attach_children``)
    resolution_skipped: bool = False
    #: golden records survived again (all customers, or those whose accounts changed)
    survived: int = 0
    #: accounts or contacts changed, but nothing resolution reads: the last one was kept
    resolution_reused: bool = False
    #: ``identity.resolution_digest`` of this run's inputs (kept with the watermark)
    resolution_digest: str | None = None
    #: every contact's stored link (``Contact.linked_via``) is this run's (kept with the
    #: watermark: the next run may relink only the contacts that may have moved)
    contact_links: bool = False
    #: contacts relinked from the stored links (None: every contact was read; 0: no linking)
    contacts_relinked: int | None = 0

    def summary(self) -> dict[str, Any]:
        """The figures a skipped run reports again (kept with the watermark)."""
        return {
            "customers": self.customers,
            "matched_across": self.matched_across,
            "salesforce_only": self.salesforce_only,
            "hubspot_only": self.hubspot_only,
            "pending_reviews": self.pending_reviews,
            "by_method": self.by_method,
        }

    @property
    def match_rate(self) -> float:
        """Share of customers known to both CRMs."""
        return self.matched_across / self.customers if self.customers else 0.0


class _ContactStream:
    """The live contacts as ``ContactFacts``, re-read page by page on every iteration."""

    def __init__(self, store: HubStore) -> None:
        self.store = store
        #: the last ``linked_to`` answer: the digest and the resolution ask for the same accounts
        self._linked: tuple[list[RecordKey], list[ContactFacts]] | None = None

    def __iter__(self) -> Iterator[ContactFacts]:
        # the account ids as stored text, not the decoded list: see ``_id_list``
        con = t.table_of(t.Contact)
        yield from _contact_facts(self.store, _contact_columns(), con.c.deleted.is_(False))

    def linked_to(self, accounts: Collection[RecordKey]) -> list[ContactFacts]:
        """The live contacts linked to any of ``accounts`` (same CRM), in primary-key order like
        the full stream (see ``identity.ContactSource``).

        Why: the contact-domain rung only counts the contacts of accounts without a domain, a
        few percent of them; selecting those in SQL (the id list joined against a temporary
        table) spares streaming all 780,000 contacts on ``large`` through Python.
        """
        if not accounts:
            return []
        wanted = sorted(set(accounts))
        if self._linked is not None and self._linked[0] == wanted:
            return list(self._linked[1])
        with self.store.engine.connect() as conn:
            conn.execute(sa.text(_WANTED_TABLE))
            conn.execute(sa.text("DELETE FROM unify_wanted"))  # whatever a connection kept
            conn.execute(
                sa.text("INSERT INTO unify_wanted (source, source_id) VALUES (:source, :sid)"),
                [{"source": source, "sid": sid} for source, sid in wanted],
            )
            rows = conn.execute(sa.text(_LINKED_CONTACTS[self.store.dialect])).all()
            conn.rollback()  # the temporary table goes with the transaction
        found = [
            ContactFacts(r[0], r[1], r[2], r[3], r[4], _id_list(r[5]), False, r[6]) for r in rows
        ]
        self._linked = (wanted, found)
        return list(found)


#: a temporary table of account keys (one per connection, gone with the transaction)
_WANTED_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS unify_wanted "
    "(source VARCHAR NOT NULL, source_id VARCHAR NOT NULL, PRIMARY KEY (source, source_id))"
)
#: live contacts whose JSON list of account ids names a wanted account: one dialect each.
#: ``CROSS JOIN`` makes SQLite walk each contact's ids and look each up in the key table (its
#: primary key); left to choose, it scanned the key table for every contact (minutes on
#: ``large``). PostgreSQL plans it as a join either way.
_LINKED_CONTACTS = {
    dialect: f"""SELECT c.source, c.source_id, c.customer_id, c.email, c.email_normalized,
            c.account_source_ids, c.linked_via FROM contact AS c
        WHERE NOT c.deleted AND EXISTS (SELECT 1 FROM {ids} CROSS JOIN unify_wanted AS w
            WHERE w.source = c.source AND w.source_id = j.value)
        ORDER BY c.source, c.source_id"""
    for dialect, ids in (
        ("sqlite", "json_each(c.account_source_ids) AS j"),
        (
            "postgresql",
            "json_array_elements_text(CASE WHEN json_typeof(c.account_source_ids) = 'array' "
            "THEN c.account_source_ids ELSE '[]'::json END) AS j(value)",
        ),
    )
}


def _id_list(raw: Any) -> list[str]:
    """A stored JSON list of CRM ids, decoded.

    Why not the JSON type's decoder: the contact stream decodes one list per contact, twice per
    unify (780,000 contacts on ``large``: 7 s of ``json.loads``). CRM ids are plain letters and
    digits, and the store writes ``json.dumps`` text (``["a", "b"]``), so the common forms split
    on the separator; anything else (an escape, other spacing) goes through ``json``.
    PostgreSQL's driver hands over the list already decoded.
    """
    if raw is None:
        return []
    if not isinstance(raw, str):
        return list(raw)
    if raw == "[]":
        return []
    if raw.startswith('["') and raw.endswith('"]') and "\\" not in raw:
        inner = raw[2:-2]
        if '"' not in inner:
            return [inner]
        parts = inner.split('", "')
        if all('"' not in part for part in parts):
            return parts
    return list(json.loads(raw) or [])


def _contact_facts(
    store: HubStore, columns: list[Any], where: sa.ColumnElement[bool]
) -> Iterator[ContactFacts]:
    """Contacts as ``ContactFacts`` (the columns of ``_ContactStream``), page by page."""
    con = t.table_of(t.Contact)
    for rows in store.iter_pages(con, columns, where=where, size=PAGE, plain=True):
        for r in rows:
            yield ContactFacts(r[0], r[1], r[2], r[3], r[4], _id_list(r[5]), False, r[6])


def _contact_columns() -> list[Any]:
    con = t.table_of(t.Contact)
    return [
        con.c.source,
        con.c.source_id,
        con.c.customer_id,
        con.c.email,
        con.c.email_normalized,
        sa.type_coerce(con.c.account_source_ids, sa.String).label("account_source_ids"),
        con.c.linked_via,
    ]


def unify(
    store: HubStore,
    *,
    now: dt.datetime,
    match_config: MatchConfig | None = None,
    policy: SurvivorshipPolicy | None = None,
    incremental: bool = True,
) -> UnifyStats:
    """Resolve identities, write links and golden records, attach every child row.

    With ``incremental`` (the default) a run whose inputs did not change since the last one
    (no source row, review decision or erasure; same matching and survivorship settings and hub
    version) resolves nothing and reports the last run's figures: resolution is global, so any
    change re-resolves all accounts, but a sync with nothing new no longer pays for it. Customers
    that lose a row to another customer are noted (``dirty_customer``) for the incremental
    handover and KPIs.
    """
    fp = changes.fingerprint(
        changes.hub_version(),
        match_config.canonical() if match_config is not None else None,
        repr(policy),
    )
    mark = changes.load(store, _PHASE)
    if incremental and mark is not None and mark.fingerprint == fp:
        if not changes.anything_changed(store, mark.at):
            return _skipped(mark.extra.get("stats", {}))
        if not changes.resolution_inputs_changed(store, mark.at):
            stats = _attach_children(store, mark.at, mark.extra.get("stats", {}))
            # after the writes, as below: its own re-attachments are no change for the next run
            changes.save(
                store,
                _PHASE,
                utcnow(),
                fp,
                stats=stats.summary(),
                resolution=mark.extra.get("resolution"),  # its inputs did not change
                contact_links=mark.extra.get("contact_links"),  # no contact changed either
            )
            return stats
    same = mark is not None and mark.fingerprint == fp
    with gc_paused():  # 145,000 accounts and their features held for the run (``gc_pause``)
        stats = _unify(
            store,
            now,
            match_config,
            policy,
            mark.at if same and mark is not None else None,
            # not incremental: resolve again even when the inputs are the same
            previous=mark.extra if same and incremental and mark is not None else None,
        )
    changes.save(
        store,
        _PHASE,
        utcnow(),
        fp,
        stats=stats.summary(),
        resolution=stats.resolution_digest,
        contact_links=CONTACT_LINKS if stats.contact_links else None,
    )
    return stats


_PHASE = "unify"


def forget_unify(store: HubStore) -> None:
    """The next unify re-resolves everything, and the phases after it recompute everything."""
    changes.forget(store, _PHASE, *changes.DOWNSTREAM)


def _attach_children(store: HubStore, since: dt.datetime, summary: dict[str, Any]) -> UnifyStats:
    """Only deals, emails, tickets, activities or stage history changed since ``since``: who
    is the same customer cannot have changed (no account, contact, owner, review or erasure did),
    so the links and golden records stand and only the changed children are attached.

    Why: new emails, activities and deals arrive between most syncs while accounts and contacts
    rarely change; re-resolving 145,000 accounts and streaming 780,000 contacts for them was
    40-50 s on ``large``.
    """
    start = time.perf_counter()
    stats = _skipped(summary)
    stats.skipped = False
    stats.resolution_skipped = True
    with store.engine.begin() as conn:
        # a child that moves leaves its customer: that one's figures change too
        store.mark_dirty(conn, list(changes.customers_of_changed_rows(conn, since)))
    for name, written in _attach_by_account(store, since).items():
        stats.written[name] = written
    stats.written["email"] = _attach_emails(store, since)
    stats.written["deal_stage_history"] = _fold_stage_events(store, since)
    stats.seconds["children"] = round(time.perf_counter() - start, 2)
    return stats


def _skipped(summary: dict[str, Any]) -> UnifyStats:
    stats = UnifyStats(skipped=True)
    for key, value in summary.items():
        setattr(stats, key, value)
    stats.written = {}
    return stats


def _unify(
    store: HubStore,
    now: dt.datetime,
    match_config: MatchConfig | None,
    policy: SurvivorshipPolicy | None,
    since: dt.datetime | None,
    previous: dict[str, Any] | None = None,
) -> UnifyStats:
    """One run over every account. ``previous`` (the last run's watermark extras, with
    ``since``): when nothing resolution reads changed (``identity.resolution_digest``), the last
    resolution is kept and only what follows it (golden records, contacts, children) runs."""
    stats = UnifyStats()
    # customers noted dirty before this run (an erasure, a run killed after it re-linked
    # accounts): read before this run's own marks overwrite their times, see
    # ``_changed_account_customers``
    with store.engine.connect() as conn:
        dirty = t.table_of(t.DirtyCustomer)
        noted_before = set(conn.execute(sa.select(dirty.c.customer_id)).scalars())
    # the stored per-contact links are the last linking's (see ``CONTACT_LINKS``)
    links_kept = since is not None and (previous or {}).get("contact_links") == CONTACT_LINKS
    if since is None:
        # no memory of what changed: the phases after this one recompute everything
        changes.forget(store, *changes.DOWNSTREAM)
    else:
        # rows that changed may move to another customer below: the one they leave changes too
        with store.engine.begin() as conn:
            store.mark_dirty(conn, list(changes.customers_of_changed_rows(conn, since)))

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:  # a phase timed in two parts adds up
            spent = stats.seconds.get(name, 0.0) + time.perf_counter() - start
            stats.seconds[name] = round(spent, 2)

    with timed("load"):
        accounts = _account_facts(store)
        with store.session() as s:
            decisions = list(s.exec(select(t.MatchReview).where(t.MatchReview.status != "pending")))
    contacts = _ContactStream(store)
    with timed("digest"):
        stats.resolution_digest = resolution_digest(accounts, contacts, decisions, match_config)
    resolution: Resolution | None = None
    #: accounts whose customer may differ from the one their contacts were linked through
    moved: set[RecordKey] = set()
    if _can_reuse(store, since, previous, stats.resolution_digest, accounts):
        # the stored links are the last resolution's, and its inputs are the same
        stats.resolution_reused = True
        assignment = {(a.source, a.source_id): a.customer_id or "" for a in accounts}
        stats.written["source_link"] = stats.written["source_account"] = 0
    else:
        with timed("load"):
            links = _previous_links(store)
        with timed("resolve"):
            resolution = resolve_customers(
                accounts,
                contacts,
                existing_links=links,
                decisions=decisions,
                config=match_config,
                now=now,
            )
        assignment = resolution.account_assignment
        with timed("links"):
            stats.written["source_link"] = _write_links(
                store, resolution.link_rows(now, links), links
            )
            del links
            changed = [
                {"source": a.source, "source_id": a.source_id, "customer_id": cid}
                for a in accounts
                if (cid := assignment.get((a.source, a.source_id))) != a.customer_id
            ]
            store.bulk_set(t.SourceAccount, changed, ["customer_id"])
            stats.written["source_account"] = len(changed)
            moved.update((str(r["source"]), str(r["source_id"])) for r in changed)

    # deleted accounts leave their customer
    with timed("links"), store.engine.begin() as conn:
        acc = t.table_of(t.SourceAccount)
        leaving = acc.c.deleted.is_(True), acc.c.customer_id.is_not(None)
        gone = conn.execute(
            sa.select(acc.c.source, acc.c.source_id, acc.c.customer_id).where(*leaving)
        ).all()
        left = [r[2] for r in gone]
        moved.update((str(r[0]), str(r[1])) for r in gone)
        if since is not None:  # re-linked by an earlier run cut short, or changed in the CRM
            moved.update(
                (r[0], r[1])
                for r in conn.execute(
                    sa.select(acc.c.source, acc.c.source_id).where(acc.c.changed_at > since)
                )
            )
        # customers that lost an account (deleted or moved): their golden record changes
        lost_account = {
            *left,
            *(
                a.customer_id
                for a in accounts
                if a.customer_id and assignment.get((a.source, a.source_id)) != a.customer_id
            ),
        }
        store.mark_dirty(conn, lost_account)
        conn.execute(acc.update().where(*leaving).values(customer_id=None, changed_at=utcnow()))

    with timed("golden records"):
        customers = set(assignment.values())
        only = (
            _changed_account_customers(store, since, noted_before | lost_account)
            if since is not None
            else None
        )
        stats.survived = len(customers) if only is None else len(only & customers)
        stats.written["customer"], stats.retired_ids = _write_golden(
            store, customers, policy or SurvivorshipPolicy(), now, only
        )

    review_rows = [
        {k: v for k, v in r.model_dump().items() if k != "id"}
        for r in (resolution.reviews if resolution is not None else [])
    ]
    if review_rows:
        _insert_reviews(store, review_rows)

    if (
        stats.resolution_reused
        and since is not None
        and not changes.rows_changed(store, since, t.Contact)
    ):
        # the same customers from the same accounts, and no contact changed: every contact's
        # customer (by its account, else by the domains learnt from both) is what it was
        stats.written["contact"] = 0
        stats.contact_links = links_kept
    else:
        with timed("contacts"):
            stats.written["contact"], stats.contacts_relinked = _link_contacts(
                store,
                contacts,
                assignment,
                accounts,
                since=since if links_kept else None,
                moved=moved,
            )
        stats.contact_links = True
    del accounts
    with timed("children"):
        for name, written in _attach_by_account(store, since).items():
            stats.written[name] = written
        stats.written["email"] = _attach_emails(store, since)
        stats.written["deal_stage_history"] = _fold_stage_events(store, since)

    # --- stats ---------------------------------------------------------------------------------
    sources: dict[str, set[str]] = defaultdict(set)
    for (source, _), cid in assignment.items():
        sources[cid].add(source)
    stats.customers = len(sources)
    for crms in sources.values():
        if len(crms) > 1:
            stats.matched_across += 1
        elif "salesforce" in crms:
            stats.salesforce_only += 1
        else:
            stats.hubspot_only += 1
    if resolution is not None:
        stats.by_method = dict(Counter(a.method for a in resolution.assignments.values()))
    else:  # the kept resolution's
        stats.by_method = dict((previous or {}).get("stats", {}).get("by_method", {}))
    with store.session() as s:
        stats.pending_reviews = int(
            s.exec(
                select(sa.func.count())
                .select_from(t.MatchReview)
                .where(t.MatchReview.status == "pending")
            ).one()
        )
    return stats


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


def _can_reuse(
    store: HubStore,
    since: dt.datetime | None,
    previous: dict[str, Any] | None,
    digest: str | None,
    accounts: list[AccountFacts],
) -> bool:
    """May this run keep the last resolution? Only when its inputs hash the same, every live
    account still carries the customer that resolution gave it, and no erasure ran since (an
    erasure rewrites rows outside the extraction's bookkeeping)."""
    if since is None or previous is None or digest is None:
        return False
    if previous.get("resolution") != digest:
        return False
    if any(not a.customer_id for a in accounts):
        return False
    return not changes.erasures_since(store, since)


def _account_facts(store: HubStore) -> list[AccountFacts]:
    acc = t.table_of(t.SourceAccount)
    columns = [
        acc.c.source,
        acc.c.source_id,
        acc.c.customer_id,
        acc.c.name,
        acc.c.website,
        acc.c.domain,
        acc.c.city,
        acc.c.country,
        acc.c.cross_crm_id,
        acc.c.modified_at,
    ]
    facts: list[AccountFacts] = []
    live = acc.c.deleted.is_(False)
    for rows in store.iter_pages(acc, columns, where=live, size=PAGE, plain=True):
        facts.extend(AccountFacts(*r) for r in rows)
    return facts


@dataclass(slots=True)
class _Link:
    source: str
    object_type: str
    source_id: str
    customer_id: str
    match_method: str
    matched_at: dt.datetime | None
    confidence: float


def _previous_links(store: HubStore) -> list[_Link]:
    lnk = t.table_of(t.SourceLink)
    columns = [
        lnk.c.source,
        lnk.c.object_type,
        lnk.c.source_id,
        lnk.c.customer_id,
        lnk.c.match_method,
        lnk.c.matched_at,
        lnk.c.confidence,
    ]
    pages = store.iter_pages(lnk, columns, size=PAGE, plain=True)
    return [_Link(*r) for rows in pages for r in rows]


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _write_links(store: HubStore, rows: Iterator[dict[str, Any]], previous: list[_Link]) -> int:
    """Upsert the account links that changed; drop those of accounts no longer live."""
    before = {(p.source, p.source_id): p for p in previous if p.object_type == "account"}
    batch: list[dict[str, Any]] = []
    written = 0
    for row in rows:
        old = before.pop((row["source"], row["source_id"]), None)
        if old is not None and (
            old.customer_id,
            old.match_method,
            old.matched_at,
            round(old.confidence, 6),
        ) == (
            row["customer_id"],
            row["match_method"],
            row["matched_at"],
            round(row["confidence"], 6),
        ):
            continue
        batch.append(row)
        if len(batch) >= PAGE:
            written += store.upsert_rows(t.SourceLink, batch, newer_only=False)
            batch = []
    written += store.upsert_rows(t.SourceLink, batch, newer_only=False)
    stale = sorted(before)
    if stale:
        lnk = t.table_of(t.SourceLink)
        with store.engine.begin() as conn:
            for start in range(0, len(stale), 500):
                conn.execute(
                    lnk.delete().where(
                        lnk.c.object_type == "account",
                        sa.tuple_(lnk.c.source, lnk.c.source_id).in_(stale[start : start + 500]),
                    )
                )
        written += len(stale)
    return written


def _customer_pages(
    store: HubStore, only: set[str] | None = None
) -> Iterator[list[tuple[str, list[Any]]]]:
    """The live accounts grouped by customer, a page of whole customers at a time (``only``:
    just these customers, in pages of ids), as read-only rows with the accounts' columns.

    Why rows, not table models: survivorship only reads the accounts, and an ORM object per
    account (its instance state, its instrumented attributes) was a fifth of writing 100,000
    golden records on ``large``.
    """
    acc = t.table_of(t.SourceAccount)
    make = namedtuple("AccountRow", [c.name for c in acc.columns])._make  # type: ignore[misc,attr-defined]
    order = (acc.c.customer_id, acc.c.source, acc.c.source_id)
    live = (acc.c.deleted.is_(False), acc.c.customer_id.is_not(None))

    def read(*where: Any, limit: int | None = None) -> list[Any]:
        query = sa.select(acc).where(*live, *where).order_by(*order)
        if limit is not None:
            query = query.limit(limit)
        with store.engine.connect() as conn:
            return [make(r) for r in conn.execute(query)]

    def grouped(rows: list[Any]) -> list[tuple[str, list[Any]]]:
        groups: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            groups[r.customer_id].append(r)
        return list(groups.items())

    if only is not None:
        ids = sorted(only)
        step = max(1, PAGE // 4)
        for start in range(0, len(ids), step):
            rows = read(acc.c.customer_id.in_(ids[start : start + step]))
            if rows:
                yield grouped(rows)
        return
    after: str | None = None
    while True:
        rows = read(*(() if after is None else (acc.c.customer_id > after,)), limit=PAGE)
        full = len(rows) == PAGE
        if full:
            last_id = rows[-1].customer_id
            if rows[0].customer_id == last_id:
                # one customer with a page of accounts or more: take it whole
                rows = read(acc.c.customer_id == last_id)
            else:
                # the page may end inside the last customer: leave it to the next page
                rows = [r for r in rows if r.customer_id != last_id]
        if not rows:
            return
        yield grouped(rows)
        if not full:
            return
        after = rows[-1].customer_id


def _write_golden(
    store: HubStore,
    customers: set[str],
    policy: SurvivorshipPolicy,
    now: dt.datetime,
    only: set[str] | None = None,
) -> tuple[int, int]:
    """Survive each customer's golden record; write the changed ones, retire the gone ones.

    ``only``: survive just these customers (the others' accounts did not change).
    Returns (golden records written, customer ids retired).
    """
    with store.session() as s:
        owners = {(o.source, o.source_id): o for o in s.exec(select(t.Owner))}
        existing_ids = set(s.exec(select(t.Customer.id)).all())
    cust = t.table_of(t.Customer)
    written = 0
    for page in _customer_pages(store, only):
        ids = [cid for cid, _ in page]
        with store.engine.connect() as conn:
            stored = {
                r["id"]: dict(r)
                for r in conn.execute(cust.select().where(cust.c.id.in_(ids))).mappings()
            }
        rows: list[dict[str, Any]] = []
        for cid, members in page:
            # recency = when the business content changed, not when the hub last wrote its fields
            content_view = [
                m._replace(modified_at=m.content_modified_at or m.modified_at) for m in members
            ]
            row = survive_row(cid, content_view, owners, policy, now)
            previous = stored.get(cid)
            if previous is not None and all(
                previous.get(k) == v for k, v in row.items() if k not in _BOOKKEEPING
            ):
                continue
            row["created_at"] = (
                previous["created_at"] if previous and previous["created_at"] else now
            )
            row["updated_at"] = now
            rows.append(row)
        written += store.upsert_rows(t.Customer, rows, newer_only=False)
    gone = sorted(existing_ids - customers)
    if gone:
        with store.engine.begin() as conn:
            for table in (t.Customer, t.HandoverState, t.CustomerMetrics):
                tbl = t.table_of(table)
                key = tbl.c.id if table is t.Customer else tbl.c.customer_id
                for start in range(0, len(gone), 500):
                    conn.execute(tbl.delete().where(key.in_(gone[start : start + 500])))
    return written, len(gone)


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


def _link_contacts(
    store: HubStore,
    contacts: _ContactStream,
    assignment: dict[RecordKey, str],
    accounts: list[AccountFacts],
    *,
    since: dt.datetime | None = None,
    moved: Collection[RecordKey] = (),
) -> tuple[int, int | None]:
    """Set each live contact's customer (see ``identity.iter_contact_links``), changed only.

    With ``since`` (the stored links are the last linking's, see ``CONTACT_LINKS``) only the
    contacts that may have moved are read and relinked (``_relink``); else every contact.
    Returns (contacts whose customer changed, contacts relinked or None for all).

    Why: linking read all 780,000 contacts of ``large`` in every run that changed an account or
    a contact (5.5 s of a 1 % run's unify), to move a few hundred.
    """
    relinked: int | None = None
    links: Iterable[tuple[ContactFacts, str | None, str | None]]
    if since is not None and len(moved) <= max(RELINK_SHARE * len(accounts), RELINK_MIN):
        changed, held, votes = _relink_inputs(store, contacts, since, moved)
        relinked = len(changed)
        links = relink_contacts(changed, held, votes, assignment, accounts=accounts)
    else:
        links = iter_contact_links(contacts, assignment, accounts=accounts)
        if _unplaced(store) >= REINDEX_FROM:
            _votes_index(store, build=False)
    try:
        return _store_contact_links(store, links), relinked
    finally:  # also builds it when a run was cut short while it was dropped
        _votes_index(store, build=True)


def _unplaced(store: HubStore) -> int:
    """Live contacts without a customer (through the ``customer_id`` index)."""
    con = t.table_of(t.Contact)
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(con)
                .where(con.c.customer_id.is_(None), con.c.deleted.is_(False))
            ).scalar()
            or 0
        )


def _votes_index(store: HubStore, *, build: bool) -> None:
    """Drop the voters' partial index, or build it when it is missing (``tables.VOTES_INDEX``)."""
    ddl = t.VOTES_INDEX_DDL[store.dialect] if build else f"DROP INDEX IF EXISTS {t.VOTES_INDEX}"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(ddl)


def _store_contact_links(
    store: HubStore, links: Iterable[tuple[ContactFacts, str | None, str | None]]
) -> int:
    """Store each contact's new customer and how it was placed; returns contacts moved."""
    moved_rows: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    left: set[str] = set()  # customers a contact leaves: their figures change too
    written = 0
    for contact, cid, via in links:
        key = {"source": contact.source, "source_id": contact.source_id}
        if cid != contact.customer_id:
            if contact.customer_id:
                left.add(contact.customer_id)
            moved_rows.append({**key, "customer_id": cid, "linked_via": via})
        elif via != contact.linked_via:  # the same customer, found another way: bookkeeping
            marks.append({**key, "linked_via": via})
        if len(moved_rows) >= PAGE:
            written += store.bulk_set(t.Contact, moved_rows, ["customer_id", "linked_via"])
            moved_rows = []
        if len(marks) >= PAGE:
            store.bulk_set(t.Contact, marks, ["linked_via"], dated=False)
            marks = []
    written += store.bulk_set(t.Contact, moved_rows, ["customer_id", "linked_via"])
    store.bulk_set(t.Contact, marks, ["linked_via"], dated=False)
    with store.engine.begin() as conn:
        store.mark_dirty(conn, left)
    return written


def _relink_inputs(
    store: HubStore, contacts: _ContactStream, since: dt.datetime, moved: Collection[RecordKey]
) -> tuple[list[ContactFacts], list[ContactFacts], list[tuple[str | None, str, int]]]:
    """What ``identity.relink_contacts`` reads: the live contacts changed since ``since`` or
    linked to a ``moved`` account; the other contacts the last linking placed by domain or
    left alone; and the votes of those it placed through an account, counted in SQL."""
    con = t.table_of(t.Contact)
    live = con.c.deleted.is_(False)
    changed: dict[RecordKey, ContactFacts] = {
        (c.source, c.source_id): c
        for c in _contact_facts(store, _contact_columns(), sa.and_(live, con.c.changed_at > since))
    }
    for c in contacts.linked_to(list(moved)):
        changed.setdefault((c.source, c.source_id), c)
    held = [
        c
        for c in _contact_facts(
            store, _contact_columns(), sa.and_(live, con.c.linked_via.isnot(None))
        )
        if (c.source, c.source_id) not in changed
    ]
    return list(changed.values()), held, _stored_votes(store)


def _voters(con: sa.Table) -> tuple[tuple[sa.ColumnElement[bool], ...], sa.ColumnElement[bool]]:
    """The live contacts the last linking placed through an account, and "has a normalised
    address": the terms of the partial index ``ix_contact_votes`` (migration 0009)."""
    voters = (
        con.c.deleted.is_(False),
        con.c.linked_via.is_(None),
        con.c.customer_id.is_not(None),
    )
    return voters, sa.and_(con.c.email_normalized.is_not(None), con.c.email_normalized != "")


def votes_by_host(dialect: str) -> sa.Select[Any]:
    """(address host, customer, contacts) over the voters with a normalised address: read in
    the order of ``ix_contact_votes`` on SQLite, so the grouping needs no sort."""
    con = t.table_of(t.Contact)
    host: sa.ColumnElement[str] = sa.literal_column(t.EMAIL_HOST[dialect])
    voters, normalised = _voters(con)
    return (
        sa.select(host, con.c.customer_id, sa.func.count())
        .where(*voters, normalised)
        .group_by(host, con.c.customer_id)
    )


def _stored_votes(store: HubStore) -> list[tuple[str | None, str, int]]:
    """(work domain, customer, contacts) over the live contacts the last linking placed through
    an account: grouped by host in SQL (about 165,000 groups for 650,000 contacts on ``large``),
    the host's work domain taken in Python (``host_work_domain``, cached per host)."""
    con = t.table_of(t.Contact)
    voters, normalised = _voters(con)
    votes: list[tuple[str | None, str, int]] = []
    with store.engine.connect() as conn:
        for h, cid, n in conn.execute(votes_by_host(store.dialect)):
            votes.append((host_work_domain(h), cid, int(n)))
        for email, cid in conn.execute(  # no normalised address: the raw one, as linking reads it
            sa.select(con.c.email, con.c.customer_id).where(
                *voters, sa.not_(normalised), con.c.email.is_not(None)
            )
        ):
            votes.append((contact_work_domain(None, email), cid, 1))
    return votes


def _attach_by_account(store: HubStore, since: dt.datetime | None = None) -> dict[str, int]:
    """Deals, tickets and activities take the customer of their account (same CRM).

    With ``since``, only rows that changed since then or whose account changed (re-linked
    included) are looked at, through the ``changed_at`` and ``account_source_id`` indexes,
    instead of a pass over every row.
    """
    acc = t.table_of(t.SourceAccount)
    written: dict[str, int] = {}
    moved: dict[str, list[str]] = defaultdict(list)
    if since is not None:
        with store.engine.connect() as conn:
            for source, sid in conn.execute(
                sa.select(acc.c.source, acc.c.source_id).where(acc.c.changed_at > since)
            ):
                moved[source].append(sid)
    with store.engine.begin() as conn:
        for model in (t.Deal, t.Ticket, t.Activity):
            tbl = t.table_of(model)
            sub = (
                sa.select(acc.c.customer_id)
                .where(acc.c.source == tbl.c.source, acc.c.source_id == tbl.c.account_source_id)
                .scalar_subquery()
            )
            differs = tbl.c.customer_id.is_distinct_from(sub)
            scopes: list[Any] = [None]
            if since is not None:
                scopes = [tbl.c.changed_at > since] + [
                    sa.and_(tbl.c.source == source, tbl.c.account_source_id.in_(ids[i : i + 500]))
                    for source, ids in moved.items()
                    for i in range(0, len(ids), 500)
                ]
            count = 0
            for scope in scopes:
                where = differs if scope is None else sa.and_(scope, differs)
                result = conn.execute(
                    tbl.update().where(where).values(customer_id=sub, changed_at=utcnow())
                )
                count += int(result.rowcount or 0)
            written[tbl.name] = count
    return written


def _changed_account_customers(store: HubStore, since: dt.datetime, lost: set[str]) -> set[str]:
    """Customers with an account that changed (content, link, delete) since ``since``, the
    customers in ``lost`` (that lost an account in this run, or were noted dirty before it),
    and every customer when an owner changed (the golden record names the owner's address).

    Why not every dirty customer: this run marks the customer of every changed deal, email,
    ticket and activity dirty (for the handover and KPIs), but a golden record is survived
    from accounts and owners only. Re-surviving those was most of the phase on a 1 % change
    (a quarter of the customers have a new email or deal; a few percent a changed account).
    """
    acc = t.table_of(t.SourceAccount)
    owner = t.table_of(t.Owner)
    with store.engine.connect() as conn:
        if conn.execute(
            sa.select(owner.c.source).where(owner.c.changed_at > since).limit(1)
        ).first():
            return set(
                conn.execute(
                    sa.select(acc.c.customer_id)
                    .where(acc.c.customer_id.is_not(None), acc.c.deleted.is_(False))
                    .distinct()
                ).scalars()
            )
        return lost | changes.customers_changed_in(conn, acc, since)


#: The first id in a JSON list column whose row (same CRM) has a customer: one dialect each.
_FIRST_CUSTOMER = {
    "sqlite": """(SELECT x.customer_id FROM json_each(e.{ids}) AS j
        JOIN {table} AS x ON x.source = e.source AND x.source_id = j.value
        WHERE x.customer_id IS NOT NULL ORDER BY j.key LIMIT 1)""",
    "postgresql": """(SELECT x.customer_id FROM json_array_elements_text(
            CASE WHEN json_typeof(e.{ids}) = 'array' THEN e.{ids} ELSE '[]'::json END
        ) WITH ORDINALITY AS j(value, n)
        JOIN {table} AS x ON x.source = e.source AND x.source_id = j.value
        WHERE x.customer_id IS NOT NULL ORDER BY j.n LIMIT 1)""",
}


def _attach_emails(store: HubStore, since: dt.datetime | None = None) -> int:
    """An email belongs to the customer of its account, else of its contact, else of its deal.

    One set-based UPDATE over the JSON id lists (SQLite ``json_each``, PostgreSQL
    ``json_array_elements_text``), writing only emails whose customer changes: the email table
    is the largest one and never passes through Python.
    """
    template = _FIRST_CUSTOMER[store.dialect]
    found = ", ".join(
        template.format(ids=ids, table=table)
        for ids, table in (
            ("account_source_ids", "source_account"),
            ("contact_source_ids", "contact"),
            ("deal_source_ids", "deal"),
        )
    )
    differs = "IS DISTINCT FROM" if store.dialect == "postgresql" else "IS NOT"
    # correlated (evaluated per row, primary-key lookups), so no join plan can go quadratic
    scope, params = "", {"now": utcnow()}
    if since is not None:
        # An email's customer can only change when the email changed, when it has none yet
        # (a contact or account it names may have been linked since), or when a record it names
        # moved away from its customer, which unify noted as dirty before it re-linked anything.
        scope = (
            "(e.changed_at > :since OR e.customer_id IS NULL "
            "OR e.customer_id IN (SELECT customer_id FROM dirty_customer WHERE marked_at > :since)"
            ") AND "
        )
        params["since"] = since
    statement = sa.text(
        f"UPDATE email AS e SET customer_id = COALESCE({found}), changed_at = :now "
        f"WHERE {scope}e.customer_id {differs} COALESCE({found})"
    ).bindparams(
        sa.bindparam("now", type_=t.UtcDateTime()),
        *([sa.bindparam("since", type_=t.UtcDateTime())] if since is not None else []),
    )
    with store.engine.begin() as conn:
        return int(conn.execute(statement, params).rowcount or 0)


def _fold_stage_events(store: HubStore, since: dt.datetime | None = None) -> int:
    """Salesforce stage history → ``Deal.stage_entered_at`` (first entry per stage).

    Page by page over the deals: each page's events are aggregated in SQL (first entry per
    stage), merged into the stored map, and only deals whose map changed are written.
    """
    ev = t.table_of(t.DealStageEvent)
    deal = t.table_of(t.Deal)
    with store.engine.connect() as conn:
        if conn.execute(sa.select(ev.c.source).limit(1)).first() is None:
            return 0
    written = 0
    columns = [deal.c.source, deal.c.source_id, deal.c.stage_entered_at]
    pages: Iterator[list[Any]]
    if since is None:
        pages = store.iter_pages(deal, columns, size=1000)
    else:  # only deals with a stage event that changed (or deals that changed themselves)
        with store.engine.connect() as conn:
            keys: list[Any] = sorted(
                set(
                    conn.execute(
                        sa.select(ev.c.source, ev.c.deal_source_id).where(ev.c.changed_at > since)
                    ).all()
                )
                | set(
                    conn.execute(
                        sa.select(deal.c.source, deal.c.source_id).where(deal.c.changed_at > since)
                    ).all()
                )
            )
        pages = _deal_pages(store, columns, [(str(k[0]), str(k[1])) for k in keys])
    for rows in pages:
        # the page's deals by their id alone (the ``deal_source_id`` index), the CRM checked
        # below: a ``(source, deal_source_id) IN (...)`` row value made SQLite scan every event
        # for each page (0.69 s a page on ``4x``, quadratic in the org; 0.03 s by the index)
        wanted = {(r[0], r[1]) for r in rows}
        query = (
            sa.select(ev.c.source, ev.c.deal_source_id, ev.c.stage, sa.func.min(ev.c.entered_at))
            .where(
                ev.c.deleted.is_(False),
                ev.c.stage.is_not(None),
                ev.c.entered_at.is_not(None),
                ev.c.deal_source_id.in_(sorted({sid for _, sid in wanted})),
            )
            .group_by(ev.c.source, ev.c.deal_source_id, ev.c.stage)
        )
        entered: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        with store.engine.connect() as conn:
            for source, deal_id, stage, first in conn.execute(query):
                if (source, deal_id) in wanted:
                    entered[(source, deal_id)][stage] = first.isoformat()
        updates = []
        for source, sid, current in rows:
            found = entered.get((source, sid))
            if not found:
                continue
            merged = {**(current or {}), **found}
            if merged != (current or {}):
                updates.append({"source": source, "source_id": sid, "stage_entered_at": merged})
        written += store.bulk_set(t.Deal, updates, ["stage_entered_at"])
    return written


def _deal_pages(
    store: HubStore, columns: list[Any], keys: list[tuple[str, str]]
) -> Iterator[list[Any]]:
    """The given deals' ``columns``, 1,000 at a time."""
    deal = t.table_of(t.Deal)
    for start in range(0, len(keys), 1000):
        part = keys[start : start + 1000]
        with store.engine.connect() as conn:
            rows = list(
                conn.execute(
                    sa.select(*columns).where(sa.tuple_(deal.c.source, deal.c.source_id).in_(part))
                )
            )
        if rows:
            yield rows
