"""Run the handover rules, KPIs and signals over the store and keep their results.

Why a separate orchestration module: ``handover``, ``kpis`` and ``signals`` are pure functions of one
customer's facts; this module gathers those facts from the store (in chunks of customers, so
memory stays flat as the portal grows), stores the decisions with their history, and builds the
company-wide and per-owner KPI tables shown in Dagster and ``crmhub kpis``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import multiprocessing as mp
import sys
from collections import Counter, defaultdict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from unified_model import incremental as changes
from unified_model import tables as t
from unified_model.gc_pause import gc_paused
from unified_model.handover import (
    STATUSES,
    CustomerFacts,
    HandoverDecision,
    LiveRows,
    as_utc,
    evaluate_handover,
    local_day,
    local_midnight,
    stage_time,
    transition,
)
from unified_model.kpis import (
    UNASSIGNED,
    DealSummary,
    EmailHistory,
    KpiHistory,
    customer_kpis,
    decided_at,
    owner_key_by_email,
    period_kpis,
    prepare_kpi_data,
    quote_entered_at,
    unanswered_inquiries,
    whole_days,
)
from unified_model.rules import HubRules
from unified_model.settings import hub_workers
from unified_model.signals import (
    marketing_alert,
    negotiation_flag,
    stale_deals,
    suppression_reason,
    unlogged_contact,
)
from unified_model.store import HubStore, utcnow

CHUNK = 2000

#: from how many customers to evaluate the evaluation uses worker processes: below it the
#: workers' start (imports, about a second each) is not repaid. Not lower: a 1 % change on
#: ``large`` touches 19,000 customers, and two workers for them (10,000 on) wrote the CRM
#: fields no sooner on two cores (82.7 s against 82.2 s), the company KPIs running beside them
PARALLEL_FROM = 20_000


@dataclass
class InsightStats:
    customers: int = 0
    #: customers evaluated this run (all on a full run, the changed ones otherwise)
    evaluated: int = 0
    #: of those, whose decision changed
    changed: int = 0
    full: bool = True
    #: processes the evaluation ran in (1: the step's own; see ``compute_customer_insights``)
    workers: int = 1
    transitions: int = 0
    #: the totals were counted over every stored row (False: the kept ones, moved or not)
    recounted: bool = True
    negotiation_flags: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    blockers: Counter[str] = field(default_factory=Counter)

    def blockers_markdown(self, top: int = 8) -> str:
        if not self.blockers:
            return "No blockers."
        lines = ["| blocking criterion | customers |", "| --- | --- |"]
        # ties by name: the same table whatever order the counts were gathered in
        ranked = sorted(self.blockers.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        lines += [f"| {k} | {n} |" for k, n in ranked]
        return "\n".join(lines)


def _failing(reasons: Iterable[dict[str, Any]] | None) -> Counter[str]:
    """The criteria a stored decision fails (the blockers it counts for)."""
    return Counter(str(r.get("criterion")) for r in reasons or [] if not r.get("passed", True))


def _flagged(values: dict[str, Any] | None) -> int:
    """1 when a customer's stored values raise the negotiation flag."""
    return int(bool((values or {}).get("negotiation_flag")))


@dataclass
class _TotalsDelta:
    """What an evaluation changed in the run's totals: the status, blockers and flag of each
    evaluated customer taken out as stored before and put in as stored now.

    Why: the totals cover every customer, and recounting them decoded the stored reasons of
    most of the 100,000 customers of ``large`` in every run (2.2 s of the handover step on the
    CRM fields' path, however few customers changed).
    """

    status: Counter[str] = field(default_factory=Counter)
    blockers: Counter[str] = field(default_factory=Counter)
    flags: int = 0

    def swap(
        self,
        old: t.HandoverState | None,
        old_values: dict[str, Any] | None,
        new: dict[str, Any],
        new_values: dict[str, Any],
    ) -> None:
        """One customer's stored rows replaced: ``old`` (None: new) by the ``new`` rows."""
        if old is not None:
            self.status[old.status] -= 1
            self.blockers.subtract(_failing(old.reasons))
        self.status[new["status"]] += 1
        self.blockers.update(_failing(new["reasons"]))
        self.flags += _flagged(new_values) - _flagged(old_values)

    def merge(self, other: _TotalsDelta) -> None:
        self.status.update(other.status)
        self.blockers.update(other.blockers)
        self.flags += other.flags


def _by_customer(rows: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        if r.customer_id:
            out[r.customer_id].append(r)
    return out


#: columns no handover rule, customer KPI or signal reads (reading one is an AttributeError on
#: the plain rows ``gather_facts`` returns, so a rule that starts to need it fails loudly)
_CLOCKS = frozenset({"modified_at", "changed_at"})  # the hub's bookkeeping (deals: see below)
_FACT_UNUSED: dict[type[Any], frozenset[str]] = {
    # a deal's modification time dates its stage when the CRM has no stage history
    t.Deal: frozenset({"contact_source_ids", "changed_at"}),
    t.Ticket: _CLOCKS,
    t.Email: _CLOCKS
    | {"subject", "from_address", "to_addresses", "account_source_ids", "contact_source_ids"},
    t.Contact: _CLOCKS | {"account_source_ids", "company_name", "company_website", "linked_via"},
    t.Activity: _CLOCKS,
}
#: what ``owner_assigned_at`` reads of a customer's accounts (not their hub fields and extras)
_FACT_ACCOUNT_COLUMNS = (
    "customer_id",
    "source",
    "source_id",
    "deleted",
    "owner_id",
    "owner_assigned_to",
    "owner_assigned_at",
)


@functools.cache
def _fact_row_type(model: type[Any]) -> Any:
    """The named tuple ``gather_facts`` reads a table's rows into (its columns but the unused)."""
    tbl = t.table_of(model)
    return _row_type(model, [c for c in tbl.columns if c.name not in _FACT_UNUSED[model]])


def gather_facts(
    session: Any,
    customers: list[t.Customer],
    owners_by_email: dict[str, t.Owner],
    owners_by_id: dict[tuple[str, str], t.Owner] | None = None,
) -> list[CustomerFacts]:
    """The facts of a chunk of customers, read with one query per table.

    The child rows come without tombstones and in canonical order, once per customer
    (:class:`~unified_model.handover.LiveRows`): every rule asks for them through ``live``, which
    sorted them again at each of its 23 call sites (15 % of a full evaluation on ``large``).
    """
    ids = [c.id for c in customers]

    def load(model: Any) -> dict[str, LiveRows[Any]]:
        # Plain result rows (attribute access like the models), not ORM objects: building an
        # ORM object per row and decoding JSON id lists nobody reads was half of this phase
        # (on ``large`` a 1 % change re-evaluates a fifth of the customers: ~600,000 rows).
        tbl = t.table_of(model)
        columns = [c for c in tbl.columns if c.name not in _FACT_UNUSED[model]]
        stmt = sa.select(*columns).where(tbl.c.customer_id.in_(ids), tbl.c.deleted.is_(False))
        conn = session.connection()
        rows: list[Any]
        if conn.dialect.name == "sqlite":
            # the driver's rows as named tuples, without SQLAlchemy's row machinery (as the
            # company KPIs read theirs, ``_driver_rows``): 19,100 customers' 600,000 rows in
            # a 1 % run of ``large``
            rows = list(_driver_rows(conn, stmt, columns, _fact_row_type(model)._make))
        else:  # fetched in one go: row by row costs a cursor ``fetchone`` each
            rows = session.execute(stmt).all()
        return {cid: LiveRows.of(group) for cid, group in _by_customer(rows).items()}

    deals, tickets = load(t.Deal), load(t.Ticket)
    emails = load(t.Email)
    contacts, activities = load(t.Contact), load(t.Activity)
    acc = t.table_of(t.SourceAccount)
    accounts = _by_customer(
        session.execute(
            sa.select(*(acc.c[name] for name in _FACT_ACCOUNT_COLUMNS)).where(
                acc.c.customer_id.in_(ids)
            )
        ).all()
    )
    none: LiveRows[Any] = LiveRows()
    previous = {
        h.customer_id: h
        for h in session.exec(
            select(t.HandoverState).where(col(t.HandoverState.customer_id).in_(ids))
        )
    }
    return [
        CustomerFacts(
            customer=c,
            deals=deals.get(c.id, none),
            tickets=tickets.get(c.id, none),
            emails=emails.get(c.id, none),
            contacts=contacts.get(c.id, none),
            activities=activities.get(c.id, none),
            owner=owners_by_email.get((c.owner_email or "").casefold()),
            previous=previous.get(c.id),
            owners={
                (d.source, d.owner_id): o
                for d in deals.get(c.id, none)
                if d.owner_id and (o := (owners_by_id or {}).get((d.source, d.owner_id)))
            },
            owner_assigned_at=owner_assigned_at(c, accounts.get(c.id, []), owners_by_id or {}),
        )
        for c in customers
    ]


def owner_assigned_at(
    customer: t.Customer,
    accounts: Iterable[t.SourceAccount],
    owners_by_id: dict[tuple[str, str], t.Owner],
) -> dt.datetime | None:
    """When the customer's current owner took it over, per the CRMs' owner history.

    Only accounts whose owner is still the one the history names count, and only where that
    owner is the customer's survived owner (same email); with both CRMs dating it, the earlier
    day (the first CRM that showed the handover). None when no history dates it.
    """
    email = (customer.owner_email or "").strip().casefold()
    times = []
    for a in accounts:
        if a.deleted or not a.owner_id or a.owner_assigned_at is None:
            continue
        if a.owner_assigned_to != a.owner_id:
            continue  # the history names an earlier owner: it dates nothing current
        owner = owners_by_id.get((a.source, a.owner_id))
        if email and (owner is None or (owner.email or "").strip().casefold() != email):
            continue
        times.append(a.owner_assigned_at)
    return min(times) if times else None


def customer_values(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> dict[str, Any]:
    """Per-customer KPIs plus the cross-CRM signals, as stored in ``CustomerMetrics.values``."""
    values: dict[str, Any] = dict(customer_kpis(facts, rules, now))
    negotiation = negotiation_flag(facts, rules, now)
    stale = stale_deals(facts, rules, now)
    unlogged = unlogged_contact(facts)
    alert = marketing_alert(facts, rules, now)
    values["negotiation_flag"] = negotiation.flagged
    values["negotiation_detail"] = negotiation.detail if negotiation.flagged else None
    values["suppression_reason"] = suppression_reason(facts, rules, now)
    values["marketing_alert"] = alert.flagged
    values["marketing_alert_detail"] = alert.detail if alert.flagged else None
    values["stale_deals"] = len(stale)
    # the survey score as the CRM holds it (mapped; None elsewhere), per customer
    values["nps_score"] = facts.customer.nps_score
    values["unlogged_contact"] = unlogged.flagged
    return values


def as_of_day(now: dt.datetime, rules: HubRules | None = None) -> dt.datetime:
    """The instant time-based rules are judged at: the start of the current business day.

    Why: time-based values (health decays with contact recency, calendar handover rules) must
    not change between two syncs of the same day, or every sync would rewrite every record. The
    day is the business's (``kpis.business_hours.timezone``), not UTC's. It is *not* the date of
    anything that happens: status changes are dated by their event (see ``handover``).
    """
    if rules is None:
        return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    local = now.astimezone(rules.kpis.business_hours.zone).date()
    return local_midnight(local, rules)


def handover_values(decision: HandoverDecision, rules: HubRules) -> dict[str, Any]:
    """The handover figures a seller reads, with every date as a business date (local day)."""

    def day(value: dt.datetime | None) -> str | None:
        d = local_day(value, rules)
        return None if d is None else d.isoformat()

    return {
        "handover_status_label": decision.label,
        "handover_status_since": day(decision.status_since),
        "handover_ready_since": day(decision.ready_since),
        "handover_handed_over_on": day(decision.handed_over_on),
        # where the handover day comes from: the CRM's owner history, or the sync that saw it
        "handover_handed_over_from": (
            None
            if decision.handed_over_on is None
            else "CRM owner history"
            if decision.date_basis.get("handed_over_on") == "crm_history"
            else "seen by a sync"
        ),
        "handover_first_seen_on": day(decision.first_seen_at),
        "handover_next_step": decision.next_steps or None,
        "handover_segment": decision.segment or None,
    }


@gc_paused()
def compute_customer_insights(
    store: HubStore,
    rules: HubRules,
    *,
    now: dt.datetime,
    incremental: bool = True,
    workers: int | None = None,
    parallel_from: int = PARALLEL_FROM,
    chunk_size: int = CHUNK,
) -> InsightStats:
    """Evaluate handover and KPIs per customer; store states, transitions and metrics.

    Rules are judged as of the start of the business day; ``now`` itself (when the sync really
    runs) dates the status changes no CRM record dates.

    Incremental (see ``unified_model.incremental``): only customers whose inputs changed since
    the last run are evaluated, unless the rules, the business day (time-based rules, "days
    since") or the hub's version changed, or an owner changed team: then all are. A run with no
    changed customer evaluates none. Rows whose decision or values differ get ``changed_at``,
    which is what the writeback plans from.

    ``workers`` (default ``settings.hub_workers()``): from ``parallel_from`` customers on, the
    chunks (``chunk_size`` customers each) are evaluated by that many worker processes, each
    reading and writing its own chunks: customers are independent, so the stored rows are the
    same as in one process.
    """
    observed = now.astimezone(dt.UTC)
    now = as_of_day(now, rules)
    started = utcnow()
    fp = changes.fingerprint(changes.hub_version(), repr(rules), now.isoformat())
    mark = changes.load(store, changes.HANDOVER) if incremental else None
    full = mark is None or mark.fingerprint != fp or changes.owners_changed(store, mark.at)
    stats = InsightStats(full=full)
    with store.session() as s:
        if full:
            ids = list(s.exec(select(t.Customer.id).order_by(t.Customer.id)))
        else:
            assert mark is not None
            wanted = changes.changed_customers(store, mark.at)
            ids = sorted(
                cid
                for start in range(0, len(wanted), 5000)
                for cid in s.exec(
                    select(t.Customer.id).where(
                        col(t.Customer.id).in_(sorted(wanted)[start : start + 5000])
                    )
                )
            )
    stats.evaluated = len(ids)
    chunks = [ids[start : start + chunk_size] for start in range(0, len(ids), chunk_size)]
    job = _ChunkJob(rules, now, observed, started)
    if workers is None:
        workers = hub_workers()
    workers = min(workers, len(chunks))
    if workers > 1 and len(ids) >= parallel_from and not mp.current_process().daemon:
        # spawn, not fork: the step process has threads and pooled connections
        with ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(store.url, job),
        ) as pool:
            results = list(pool.map(_worker_chunk, chunks))
        stats.workers = workers
    else:
        owners = _Owners.load(store)
        results = [job.evaluate(store, owners, chunk) for chunk in chunks]
    delta = _TotalsDelta()
    for changed, transitions, part in results:
        stats.changed += changed
        stats.transitions += transitions
        delta.merge(part)
    changes.clear_dirty(store, started)
    kept = (mark.extra.get("totals") if mark is not None and not full else None) or {}
    if kept.get("version") != TOTALS_VERSION:  # kept in another form (top blockers only)
        kept = {}
    if not ids and kept:  # nothing evaluated: the stored figures still hold
        _kept_totals(stats, kept)
    elif not (kept and _moved_totals(store, stats, kept, delta)):
        _totals(store, stats)
    totals = {
        "version": TOTALS_VERSION,
        "customers": stats.customers,
        "by_status": stats.by_status,
        "blockers": dict(stats.blockers),
        "negotiation_flags": stats.negotiation_flags,
    }
    changes.save(store, changes.HANDOVER, started, fp, totals=totals)
    return stats


#: the form of the totals kept with the handover's watermark (every blocker, not a top list)
TOTALS_VERSION = 2


def _kept_totals(stats: InsightStats, kept: dict[str, Any]) -> None:
    stats.customers = int(kept["customers"])
    stats.by_status = {k: int(v) for k, v in kept["by_status"].items()}
    stats.blockers = Counter({k: int(v) for k, v in kept["blockers"].items()})
    stats.negotiation_flags = int(kept["negotiation_flags"])
    stats.recounted = False


def _moved_totals(
    store: HubStore, stats: InsightStats, kept: dict[str, Any], delta: _TotalsDelta
) -> bool:
    """The kept totals moved by this run's ``delta``, when they still describe the stored rows:
    False (recount) when the status counts, read exactly in SQL (one grouped scan, no JSON),
    are not the kept ones moved by the delta.

    Why the check: unify deletes the rows of customers it retires (merged into another), and
    nothing here sees what they counted for; a deleted row makes its status count one less
    than expected, so such a run recounts everything, as every run did before.
    """
    by_status = Counter({k: int(v) for k, v in kept["by_status"].items()})
    by_status.update(delta.status)
    customers, stored = _stored_counts(store)
    if {k: v for k, v in by_status.items() if v} != {k: v for k, v in stored.items() if v}:
        return False
    blockers = Counter({k: int(v) for k, v in kept["blockers"].items()})
    blockers.update(delta.blockers)
    stats.customers = customers
    stats.by_status = {k: int(by_status.get(k, 0)) for k in STATUSES}
    stats.blockers = +blockers  # without the criteria no customer fails any more
    stats.negotiation_flags = int(kept["negotiation_flags"]) + delta.flags
    stats.recounted = False
    return True


@dataclass(frozen=True)
class _Owners:
    """Every owner by normalised email and by CRM id (what ``gather_facts`` looks up)."""

    by_email: dict[str, t.Owner]
    by_id: dict[tuple[str, str], t.Owner]

    @classmethod
    def load(cls, store: HubStore) -> _Owners:
        with store.session() as s:
            owners = list(s.exec(select(t.Owner)))
        return cls(
            by_email={o.email.casefold(): o for o in owners if o.email and not o.deleted},
            by_id={(o.source, o.source_id): o for o in owners},
        )


@dataclass(frozen=True)
class _ChunkJob:
    """What evaluating a chunk of customers needs besides the store (picklable for workers)."""

    rules: HubRules
    now: dt.datetime
    observed: dt.datetime
    started: dt.datetime

    def evaluate(
        self, store: HubStore, owners: _Owners, chunk_ids: list[str]
    ) -> tuple[int, int, _TotalsDelta]:
        """Evaluate and store one chunk; returns (decisions changed, transitions, and what
        the chunk changed in the totals)."""
        rules, now, observed, started = self.rules, self.now, self.observed, self.started
        with store.session() as s:
            chunk = list(s.exec(select(t.Customer).where(col(t.Customer.id).in_(chunk_ids))))
            chunk.sort(key=lambda c: c.id)
            facts_list = gather_facts(s, chunk, owners.by_email, owners.by_id)
            stored_metrics = {
                m.customer_id: m
                for m in s.exec(
                    select(t.CustomerMetrics).where(
                        col(t.CustomerMetrics.customer_id).in_(chunk_ids)
                    )
                )
            }
        changed = 0
        delta = _TotalsDelta()
        states: list[dict[str, Any]] = []
        metrics: list[dict[str, Any]] = []
        transitions: list[t.HandoverTransition] = []
        for facts in facts_list:
            decision = evaluate_handover(facts, rules, now, observed_at=observed)
            state = decision.state_row(observed)
            state["changed_at"] = _changed_at(facts.previous, state, started)
            if state["changed_at"] == started:
                changed += 1
            states.append(state)
            change = transition(facts.previous, decision, observed)
            if change is not None:
                transitions.append(change)
            values = customer_values(facts, rules, now)
            values.update(handover_values(decision, rules))
            stored_values = _jsonable(values)
            row = {
                "customer_id": facts.customer.id,
                "values": stored_values,
                "computed_at": now,
            }
            previous = stored_metrics.get(facts.customer.id)
            row["changed_at"] = (
                previous.changed_at
                if previous is not None
                and previous.changed_at is not None
                and _same_json(previous.values, row["values"])
                else started
            )
            metrics.append(row)
            delta.swap(
                facts.previous,
                previous.values if previous is not None else None,
                state,
                stored_values,
            )
        store.upsert_rows(t.HandoverState, states, newer_only=False)
        store.upsert_rows(t.CustomerMetrics, metrics, newer_only=False)
        if transitions:
            with store.session() as s:
                s.add_all(transitions)
                s.commit()
        return changed, len(transitions), delta


#: a worker process's store, owners and job (set once by ``_worker_init``)
_WORKER: tuple[HubStore, _Owners, _ChunkJob] | None = None


def _worker_init(url: str, job: _ChunkJob) -> None:
    global _WORKER
    store = HubStore(url)
    _WORKER = (store, _Owners.load(store), job)


@gc_paused()
def _worker_chunk(chunk_ids: list[str]) -> tuple[int, int, _TotalsDelta]:
    assert _WORKER is not None, "a worker process starts with _worker_init"
    store, owners, job = _WORKER
    return job.evaluate(store, owners, chunk_ids)


#: decision fields that say when it was evaluated, not what it says
_EVALUATION = {"evaluated_at", "changed_at"}


def _changed_at(
    previous: t.HandoverState | None, state: dict[str, Any], started: dt.datetime
) -> dt.datetime:
    """``started`` when the decision differs from the stored one, else its last change time."""
    if previous is None or previous.changed_at is None:
        return started
    # the stored row's fields read directly (a ``model_dump`` per customer was a tenth of this)
    if all(
        getattr(previous, k, None) == v
        if not isinstance(v, dt.datetime)
        else _same_instant(getattr(previous, k, None), v)
        for k, v in state.items()
        if k not in _EVALUATION
    ):
        return previous.changed_at
    return started


def _same_instant(a: Any, b: dt.datetime) -> bool:
    return isinstance(a, dt.datetime) and a.astimezone(dt.UTC) == b.astimezone(dt.UTC)


def _same_json(stored: Any, new: Any) -> bool:
    """Equal once both went through JSON (tuples are lists there, floats round-trip).

    ``stored`` was read from a JSON column, so it is already what JSON gives back: only
    ``new`` makes the round trip.
    """
    return bool(stored == json.loads(json.dumps(new, default=str)))


def _stored_counts(store: HubStore) -> tuple[int, dict[str, int]]:
    """Customers, and stored decisions per status: exact, in SQL, without decoding any JSON."""
    hs = t.table_of(t.HandoverState)
    with store.engine.connect() as conn:
        customers = conn.execute(
            sa.select(sa.func.count()).select_from(t.table_of(t.Customer))
        ).scalar()
        counted = sa.select(hs.c.status, sa.func.count()).group_by(hs.c.status)
        by_status = {str(status): int(n) for status, n in conn.execute(counted)}
    return int(customers or 0), by_status


def _totals(store: HubStore, stats: InsightStats) -> None:
    """Status counts, top blockers and flags over *all* customers (not only the evaluated)."""
    hs = t.table_of(t.HandoverState)
    stats.customers, counts = _stored_counts(store)
    stats.by_status = {k: int(counts.get(k, 0)) for k in STATUSES}
    # Only rows whose stored JSON can hold a failed criterion or a flag are decoded (a text
    # match that is a superset of them): decoding all 100,000 states and metrics was 4 s of
    # every incremental run on ``large``. The exact test is the Python one below.
    failing = sa.cast(hs.c.reasons, sa.Text).like('%"passed":%false%')
    for page in store.iter_pages(hs, [hs.c.customer_id, hs.c.reasons], where=failing, size=CHUNK):
        for row in page:
            stats.blockers.update(_failing(row._mapping["reasons"]))
    metrics = t.table_of(t.CustomerMetrics)
    flagged = sa.cast(metrics.c["values"], sa.Text).like('%"negotiation_flag":%true%')
    columns = [metrics.c.customer_id, metrics.c["values"]]
    for page in store.iter_pages(metrics, columns, where=flagged, size=CHUNK):
        stats.negotiation_flags += sum(_flagged(r._mapping["values"]) for r in page)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, dt.datetime | dt.date):
            v = v.isoformat()
        elif isinstance(v, float) and v != v:  # NaN
            v = None
        out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# Company and owner KPIs
# --------------------------------------------------------------------------------------------

#: KPI columns shown in the company table, in order, with their labels
COMPANY_COLUMNS: list[tuple[str, str]] = [
    ("new_leads", "new leads"),
    ("new_quotes", "new quotes"),
    ("quote_hit_rate", "hit rate"),
    ("win_rate", "win rate"),
    ("contract_value", "won value"),
    ("contract_value_annualised", "won ARR"),
    ("cost_of_sale_ratio", "cost/value"),
    ("csat_mean", "CSAT"),
    ("case_handling_median_hours", "case h (median)"),
    ("case_handling_p90_hours", "case h (p90)"),
    ("resolution_rate", "resolved"),
    ("reopen_rate", "reopened"),
    ("first_response_median_hours", "1st reply h"),
    ("unanswered_inquiries", "unanswered"),
    ("logged_email_share", "customers w/ emails"),
]
#: the columns of the per-owner view (``crmhub kpis --by owner``): behaviour first
OWNER_COLUMNS: list[tuple[str, str]] = [
    ("customers", "customers"),
    ("unanswered_inquiries", "unanswered"),
    ("oldest_unanswered_inquiry_days", "oldest unanswered d"),
    ("first_response_median_hours", "1st reply h"),
    ("contacts_per_month", "contacts/month"),
    ("coverage", "coverage"),
    ("new_quotes", "new quotes"),
    ("quote_hit_rate", "hit rate"),
    ("win_rate", "win rate"),
    ("contract_value", "won value"),
    ("cost_of_sale", "cost of sale"),
    ("resolution_rate", "resolved"),
    ("reopen_rate", "reopened"),
    ("csat_mean", "CSAT"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    return str(value)


def _text(cols: list[tuple[str, str]], rows: list[dict[str, Any]]) -> str:
    """A right-aligned plain-text table."""
    widths = [
        max(len(label), *(len(_fmt(r.get(k))) for r in rows)) if rows else len(label)
        for k, label in cols
    ]
    lines = ["  ".join(label.rjust(w) for (_, label), w in zip(cols, widths, strict=True))]
    for r in rows:
        lines.append(
            "  ".join(_fmt(r.get(k)).rjust(w) for (k, _), w in zip(cols, widths, strict=True))
        )
    return "\n".join(lines)


@dataclass
class CompanyReport:
    rows: list[dict[str, Any]]
    owner_rows: list[dict[str, Any]]

    def company_rows(self) -> list[dict[str, Any]]:
        return self.rows

    def _table(self, rows: list[dict[str, Any]], first: str) -> str:
        columns = COMPANY_COLUMNS if first == "period" else OWNER_COLUMNS
        cols = [c for c in columns if any(c[0] in r for r in rows)]
        head = f"| {first} | " + " | ".join(label for _, label in cols) + " |"
        sep = "| --- |" + " --- |" * len(cols)
        body = [
            f"| {r['period'] if first == 'period' else r['owner']} | "
            + " | ".join(_fmt(r.get(k)) for k, _ in cols)
            + " |"
            for r in rows
        ]
        return "\n".join([head, sep, *body])

    def company_markdown(self) -> str:
        return self._table(self.rows, "period") if self.rows else "No data."

    def owner_markdown(self) -> str:
        return self._table(self.owner_rows, "owner") if self.owner_rows else "No owners."

    def company_text(self) -> str:
        """A plain-text table for the terminal."""
        return _text([("period", "period"), *COMPANY_COLUMNS], self.rows)

    def owner_text(self) -> str:
        """The per-owner table of the current month for the terminal."""
        if not self.owner_rows:
            return "No owners."
        return _text([("owner", "owner"), *OWNER_COLUMNS], self.owner_rows)

    def latest_numeric(self) -> dict[str, float]:
        """The latest complete-or-current period's numbers, for Dagster's plotted metadata."""
        if not self.rows:
            return {}
        latest = self.rows[-1]
        return {
            f"kpi_{k}": float(v)
            for k, v in latest.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }


@gc_paused()
def refresh_company_kpis(
    store: HubStore, rules: HubRules, *, now: dt.datetime, months: int = 12
) -> tuple[CompanyReport, bool]:
    """The company and owner KPIs, recomputed only when something they read changed.

    Returns (report, recomputed). The tables are kept with the phase's watermark and shown
    again when no row they read changed since (``incremental.kpi_inputs_changed``: not the
    accounts), on the same business day with the same rules and hub version: a sync with
    nothing new, or only changed accounts, does not re-read every deal, ticket and email. A new
    business day recomputes (periods roll over, "days since" figures move).
    """
    started = utcnow()
    fp = changes.fingerprint(
        changes.hub_version(), repr(rules), as_of_day(now, rules).isoformat(), months
    )
    mark = changes.load(store, changes.COMPANY_KPIS)
    owners = _customer_owners_digest(store)
    start = _window_start(now, rules, months)
    leads: str | None = None
    if (
        mark is not None
        and mark.fingerprint == fp
        and "report" in mark.extra
        and mark.extra.get("customer_owners") == owners
    ):
        changed = changes.kpi_tables_changed(store, mark.at)
        if changed == {t.Contact}:  # only contacts: did any the KPIs read change?
            leads = _lead_inputs_digest(store, start)
        if not changed or (leads is not None and mark.extra.get("leads") == leads):
            kept = mark.extra["report"]
            if changed:
                # the contacts that changed changed nothing the tables read: they hold as of
                # this run's start. Without moving the mark, every later run saw the same
                # contacts as changed and hashed the window's leads again (1.8 s on
                # ``large``, the longest step after unify of a sync with nothing new).
                changes.save(store, changes.COMPANY_KPIS, started, fp, **mark.extra)
            return CompanyReport(rows=kept["rows"], owner_rows=kept["owner_rows"]), False
    lead_hash = None
    if leads is None:
        if store.dialect == "sqlite":  # hashed from the very rows the computation reads
            lead_hash = hashlib.sha256()
        else:  # before the computation: a contact changed during it dates later
            leads = _lead_inputs_digest(store, start)
    report = compute_company_kpis(store, rules, now=now, months=months, lead_hash=lead_hash)
    if lead_hash is not None:
        leads = lead_hash.hexdigest()
    changes.save(
        store,
        changes.COMPANY_KPIS,
        started,
        fp,
        report={"rows": report.rows, "owner_rows": report.owner_rows},
        customer_owners=owners,
        leads=leads,
    )
    return report, True


def _lead_query(start: dt.datetime) -> sa.Select[*tuple[Any, ...]]:
    """What the lead digest hashes: the possible leads created from ``start``, every column
    ``_window_rows`` reads of them plus their ids, as stored (not parsed), in id order."""
    con = t.table_of(t.Contact)
    unused = _CONTACT_UNUSED | _HUB_TIMES | {"deleted"}
    read = [sa.type_coerce(c, sa.String).label(c.name) for c in con.columns if c.name not in unused]
    return (
        sa.select(*read)
        .where(con.c.deleted.is_(False), _maybe_lead(con), con.c.created_at >= start)
        .order_by(con.c.source, con.c.source_id)
    )


def _hash_lead_owners(conn: sa.Connection, h: Any) -> None:
    """The digest's second part: every live contact's owner (each owner gets a KPI row)."""
    con = t.table_of(t.Contact)
    h.update(b"owners")
    owners = conn.execute(
        sa.select(con.c.source, con.c.owner_id)
        .where(con.c.deleted.is_(False))
        .distinct()
        .order_by(con.c.source, con.c.owner_id)
    )
    h.update(repr([tuple(r) for r in owners]).encode())


def _hashed_leads(store: HubStore, start: dt.datetime, h: Any) -> list[Any]:
    """SQLite: the window's possible leads as ``_window_rows`` holds them, read once for both
    the company KPIs and their lead digest (``_lead_inputs_digest`` hashes the same parts of
    the same query, so a later run compares like with like).

    Why: the digest read the same 350,000 contacts of ``large`` just before the KPIs read
    them again (1.5 s of a step on the run's longest branch).
    """
    con = t.table_of(t.Contact)
    query = _lead_query(start)
    names = [c.name for c in query.selected_columns]
    kept = _columns(con, _CONTACT_UNUSED | _HUB_TIMES | _UNORDERED)
    make = _row_type(t.Contact, kept)._make
    with store.engine.connect() as conn:
        # each kept column's stored value at its place in the digest's row, processed
        placed = [(names.index(c.name), c) for c in kept]
        convert = _row_converter(conn.dialect, placed, make)
        rows: list[Any] = []
        result = conn.execute(query)
        cursor = result.cursor
        while part := cursor.fetchmany(20_000):
            h.update(repr(part).encode())
            rows.extend(convert(part))
        result.close()
        _hash_lead_owners(conn, h)
    return rows


def _lead_inputs_digest(store: HubStore, start: dt.datetime) -> str:
    """A hash of what the company KPIs read of the contacts: the columns ``_window_rows`` reads
    of the possible leads created in the window, and every contact owner.

    Why: a contact changes in ways no company KPI sees (its company associations, and with
    them its customer, when a company is deleted; its name, its address). On ``large`` the
    echo of a 1 % change re-read 39 such contacts, and for them every KPI period was
    recomputed (37 s). The hash reads the window's leads and the owners (about a second on
    ``large``: 350,000 possible leads, read as the driver gives them).
    """
    # the values as stored, not parsed: a hash needs no datetimes (on SQLite their text)
    h = hashlib.sha256()
    with store.engine.connect() as conn:
        leads = conn.execute(_lead_query(start))
        if conn.dialect.name == "sqlite":  # the driver's tuples (350,000 leads on ``large``)
            cursor = leads.cursor
            while part := cursor.fetchmany(20_000):
                h.update(repr(part).encode())
            leads.close()
        else:
            for part in leads.partitions(20_000):
                h.update(repr([tuple(r) for r in part]).encode())
        _hash_lead_owners(conn, h)
    return h.hexdigest()


def _maybe_lead(con: sa.Table) -> sa.ColumnElement[bool]:
    """Contacts that can be new leads: a contact neither a lead nor at a lifecycle stage can
    never be one (``is_new_lead``)."""
    return sa.or_(con.c.is_lead.is_(True), con.c.lifecycle_stage.is_not(None))


def _window_start(now: dt.datetime, rules: HubRules, months: int) -> dt.datetime:
    """The first instant of the report: local midnight starting the month ``months - 1``
    months before ``now``'s, in the business time zone, as UTC."""
    zone = rules.kpis.business_hours.zone
    local = now.astimezone(zone)
    month0 = local.year * 12 + local.month - 1 - (months - 1)
    return dt.datetime(month0 // 12, month0 % 12 + 1, 1, tzinfo=zone).astimezone(dt.UTC)


def _customer_owners_digest(store: HubStore) -> str:
    """A hash of every customer's golden owner address: the one golden field the company KPIs
    read (the owner an unanswered inquiry is counted for).

    Why not the golden records' change time: an edited account re-survives its golden record
    (revenue, industry) without touching its owner; 1,100 such records made the company KPIs
    recompute on ``large`` (40 s) for nothing. The hash reads two columns (under a second)."""
    cust = t.table_of(t.Customer)
    h = hashlib.sha256()
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=20_000).execute(
            sa.select(cust.c.id, cust.c.owner_email).order_by(cust.c.id)
        )
        for part in result.partitions(20_000):
            h.update(repr([tuple(r) for r in part]).encode())
    return h.hexdigest()


@gc_paused()
def compute_company_kpis(
    store: HubStore,
    rules: HubRules,
    *,
    now: dt.datetime,
    months: int = 12,
    window: bool = True,
    lead_hash: Any = None,
) -> CompanyReport:
    """Company-wide KPIs per period over the last ``months``, and per owner for the current one.

    ``window``: hold only the rows the periods read and summaries of the older ones
    (``_window_rows``); False reads every row (the form the window is tested against).
    ``lead_hash`` (SQLite, with ``window``): a hash the window's lead rows are fed to as they
    are read, which then holds ``_lead_inputs_digest``'s value (``refresh_company_kpis``).
    """
    zone = rules.kpis.business_hours.zone
    local = now.astimezone(zone)
    start_month = _window_start(now, rules, months)
    if window:
        deals, tickets, emails, contacts, activities, history, owners_of = _window_rows(
            store, rules, start_month, lead_hash
        )
    else:
        deals = _live_rows(store, t.Deal, set())
        tickets = _live_rows(store, t.Ticket, set())
        emails = _live_rows(store, t.Email, set())
        contacts = _live_rows(store, t.Contact, set())
        activities = _live_rows(store, t.Activity, set())
        history, owners_of = None, []
    with store.session() as s:
        owners = list(s.exec(select(t.Owner)))
    prepared = prepare_kpi_data(
        rules, deals, tickets, emails, contacts, activities, history, read_live=window
    )
    table = period_kpis(
        deals, tickets, emails, contacts, activities, rules, start_month, now, prepared=prepared
    )
    rows = []
    for r in table.company():
        rows.append(
            {
                "period": r.label,
                **_jsonable(dict(r.values)),
            }
        )
    current_start = dt.datetime(local.year, local.month, 1, tzinfo=zone).astimezone(dt.UTC)
    owner_table = period_kpis(
        deals,
        tickets,
        emails,
        contacts,
        activities,
        rules,
        current_start,
        now,
        owner_key=owner_key_by_email(owners),
        prepared=prepared,
        owners_of=owners_of,
    )
    owner_rows: dict[str, dict[str, Any]] = {}
    for r in owner_table.rows:
        if r.owner is None:
            continue
        agg = owner_rows.setdefault(r.owner, {"owner": r.owner})
        for k, v in r.values.items():  # sum counts, keep the latest for rates
            if isinstance(v, int) and not isinstance(v, bool):
                agg[k] = agg.get(k, 0) + v
            elif v is not None:
                agg[k] = v
    _unanswered_per_owner(store, emails, owners, rules, now, owner_rows)
    return CompanyReport(
        rows=rows, owner_rows=sorted(owner_rows.values(), key=lambda r: r["owner"])
    )


#: bookkeeping times no company KPI reads (two date parses per row on 3 million rows; a
#: deal's ``modified_at`` is read: it dates a decision without stage or close date)
_HUB_TIMES = {"changed_at", "modified_at", "reopened_at"}
#: text and id-list columns no company KPI reads (the bulk of an email's or contact's size)
_EMAIL_UNUSED = {
    "subject",
    "from_address",
    "to_addresses",
    "account_source_ids",
    "contact_source_ids",
    "deal_source_ids",
}
_DEAL_UNUSED = {
    "name",
    "contact_source_ids",
    "changed_at",
    "account_source_id",
    "stage_label",
    "probability",
    "deal_type",
}
_TICKET_UNUSED = {
    "subject",
    "account_source_id",
    "contact_source_id",
    "category",
    "status",
    "priority",
}
_CONTACT_UNUSED = {
    # a lead counts for its owner, not its customer (``_lead_inputs_digest`` relies on it)
    "customer_id",
    "email_normalized",
    "last_marketing_email_at",
    "email",
    "first_name",
    "last_name",
    "phone",
    "title",
    "account_source_ids",
    "company_name",
    "company_website",
    "linked_via",  # unify's bookkeeping
}


def _columns(tbl: sa.Table, unused: set[str]) -> list[Any]:
    """The table's columns but ``unused``, repeated text read as shared strings."""
    return [
        sa.type_coerce(c, _Interned).label(c.name) if c.name in _REPEATED else c
        for c in tbl.columns
        if c.name not in unused
    ]


def _live_rows(
    store: HubStore, model: type[Any], unused: set[str], *where: sa.ColumnElement[bool]
) -> list[Any]:
    """The live rows of a source table as read-only named tuples, without ``unused`` columns
    (reading one of them is an AttributeError, so a KPI that starts to need it fails loudly).

    In batches (``_stream_rows``), not ``fetchall``: the driver's tuples of the whole table
    next to their rows doubled the phase's peak memory (activities on ``large``: 556 MB
    against 243). Named tuples, not the result's rows: one object per row instead of two (a
    sixth less memory: 243 MB against 199 MB for the activities of ``large``).
    """
    return list(_stream_rows(store, model, unused, *where))


def _row_type(model: type[Any], columns: list[Any]) -> Any:
    """A named tuple class with the columns' names (attribute access like the models)."""
    return namedtuple(f"{model.__name__}Row", [c.name for c in columns])  # type: ignore[misc]


def _stream_rows(
    store: HubStore,
    model: type[Any],
    unused: set[str],
    *where: sa.ColumnElement[bool],
    order_by: Any = None,
) -> Iterator[Any]:
    """The live rows of a source table one at a time, as named tuples, fetched 5,000 at a
    time: a fold that keeps little of them holds little (a server-side cursor on PostgreSQL,
    whose driver would otherwise fetch the whole result first)."""
    tbl = t.table_of(model)
    columns = _columns(tbl, unused)
    make = _row_type(model, columns)._make
    stmt = sa.select(*columns).where(tbl.c.deleted.is_(False), *where)
    if order_by is not None:
        stmt = stmt.order_by(order_by)
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            yield from _driver_rows(conn, stmt, columns, make)
            return
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(stmt)
        for part in result.partitions(5000):
            yield from map(make, part)


def _row_converter(
    dialect: sa.Dialect, placed: Sequence[tuple[int, Any]], make: Callable[..., Any]
) -> Callable[[Sequence[Any]], list[Any]]:
    """One generated function turning a part of driver rows into rows made by ``make``: for
    each (position in the driver's row, column) the column's own result processor applied to
    that value (an ``_Interned`` column's inline: None stays None)."""
    env: dict[str, Any] = {"make": make, "intern": sys.intern}
    values = []
    for i, column in placed:
        if isinstance(column.type, _Interned):
            values.append(f"r[{i}] and intern(r[{i}])")
            continue
        proc = column.type._cached_result_processor(dialect, None)
        if proc is None:
            values.append(f"r[{i}]")
        else:
            env[f"p{i}"] = proc
            values.append(f"p{i}(r[{i}])")
    source = f"def convert(part):\n    return [make(({', '.join(values)},)) for r in part]\n"
    exec(compile(source, f"<{make.__qualname__} rows>", "exec"), env)
    return env["convert"]  # type: ignore[no-any-return]


def _driver_rows(
    conn: sa.Connection, stmt: sa.Select[Any], columns: list[Any], make: Callable[..., Any]
) -> Iterator[Any]:
    """SQLite: the driver's rows, 5,000 at a time, each made a named tuple by one generated
    function that applies the columns' own result processors (the values are the same as
    through SQLAlchemy's rows: ``tests/unified_model/test_company_kpis_window.py``).

    Why: on ``large`` the company KPIs read 1.3 million window rows, and SQLAlchemy's row
    machinery (a generic loop over the processors per row, a ``Row`` per row, then the named
    tuple made from it) was a fifth of the step. SQLite's driver reads lazily, so batches of
    the cursor hold as little as ``stream_results`` does elsewhere. PostgreSQL keeps the
    server-side cursor path above.
    """
    convert = _row_converter(conn.dialect, list(enumerate(columns)), make)
    result = conn.execute(stmt)
    try:
        cursor = result.cursor
        while part := cursor.fetchmany(5000):
            yield from convert(part)
    finally:
        result.close()


def _window_rows(
    store: HubStore, rules: HubRules, start: dt.datetime, lead_hash: Any = None
) -> tuple[list[Any], list[Any], list[Any], list[Any], list[Any], KpiHistory, list[Any]]:
    """The rows the periods from ``start`` read, summaries of the older ones, and every owner.

    Why: the periods cover twelve months, the rows years (on ``large`` three). Holding every
    row of five tables was the hub's peak memory. Held: deals decided or quoted from
    ``start``; tickets opened or closed from it; leads created from it; emails and activities
    from ``hold_from`` (the trailing windows of the first period reach back that far); the
    inquiries still waiting then. Summarised, in one pass that keeps little: every deal (the
    customers of each period) and the two-way contacts before ``start``. The owners of every
    live row still get owner rows (``period_kpis(owners_of=...)``).
    """
    k = rules.kpis
    window = dt.timedelta(days=k.two_way_contact.window_days)
    hold_from = start - max(window, dt.timedelta(days=k.recent_activity_days))

    summary = DealSummary()
    deals: list[Any] = []
    quote_stage = k.quote_stages.matches
    for d in _stream_rows(store, t.Deal, _DEAL_UNUSED | _UNORDERED):
        summary.add(d)
        decided, quoted = decided_at(d, rules), quote_entered_at(d, rules)
        if (decided is not None and decided >= start) or (quoted is not None and quoted >= start):
            # of the stage map only what the KPIs read: the current stage's entry (the
            # decision) and the quote stages' (a deal's largest field, several per deal),
            # parsed once here (``stage_time`` takes a datetime as it is; None: unreadable)
            entered = {
                stage: stage_time(d, stage)
                for stage in d.stage_entered_at
                if stage == d.stage or quote_stage(d.source, stage)
            }
            deals.append(d._replace(stage_entered_at=entered))

    em = t.table_of(t.Email)
    email_unused = _EMAIL_UNUSED | _HUB_TIMES
    earlier = EmailHistory(window, hold_from)
    for m in _stream_rows(
        store,
        t.Email,
        email_unused,
        em.c.sent_at.is_not(None),
        em.c.sent_at < start,
        order_by=em.c.sent_at,
    ):
        earlier.add(m)
    emails = earlier.waiting() + _live_rows(store, t.Email, email_unused, em.c.sent_at >= hold_from)
    two_way = earlier.best

    act = t.table_of(t.Activity)
    talks = {x.casefold() for x in k.two_way_contact.activity_kinds}
    with store.engine.connect() as conn:  # the last call or meeting before the window
        for cid, kind, last in conn.execute(
            sa.select(act.c.customer_id, act.c.kind, sa.func.max(act.c.occurred_at))
            .where(
                act.c.deleted.is_(False),
                act.c.customer_id.is_not(None),
                act.c.occurred_at < start,
            )
            .group_by(act.c.customer_id, act.c.kind)
        ):
            if cid and last is not None and (kind or "").casefold() in talks:
                t_last = as_utc(last)
                if t_last is not None and (cid not in two_way or t_last > two_way[cid]):
                    two_way[cid] = t_last
    activities = _live_rows(
        store,
        t.Activity,
        {"account_source_id", "deal_source_id", *_HUB_TIMES, *_UNORDERED},
        act.c.occurred_at >= hold_from,
    )

    tk = t.table_of(t.Ticket)
    tickets = _live_rows(
        store,
        t.Ticket,
        _TICKET_UNUSED | _HUB_TIMES | _UNORDERED,
        sa.or_(tk.c.opened_at >= start, tk.c.closed_at >= start),
    )
    # Contacts are read for the new leads only: a contact neither a lead nor at a lifecycle
    # stage can never be one (``is_new_lead``).
    con = t.table_of(t.Contact)
    if lead_hash is not None:  # SQLite: the lead digest's rows, hashed while they are read
        contacts = _hashed_leads(store, start, lead_hash)
    else:
        contacts = _live_rows(
            store,
            t.Contact,
            _CONTACT_UNUSED | _HUB_TIMES | _UNORDERED,
            _maybe_lead(con),
            con.c.created_at >= start,
        )

    owners = []
    for model, extra in (
        (t.Deal, ()),
        (t.Ticket, ()),
        (t.Contact, ()),
        (t.Activity, ()),
        (t.Email, (em.c.sent_at.is_not(None),)),
    ):
        tbl = t.table_of(model)
        owners.append(
            sa.select(tbl.c.source, tbl.c.owner_id).where(tbl.c.deleted.is_(False), *extra)
        )
    with store.engine.connect() as conn:  # UNION: each owner once
        owners_of = list(conn.execute(sa.union(*owners)))
    history = KpiHistory(summary, two_way)
    return deals, tickets, emails, contacts, activities, history, owners_of


class _Interned(sa.String):
    """A text column read as one shared string per distinct value.

    Why: the database driver returns a new string object per row, so 3 million rows held
    3 million copies of "hubspot", of each owner id and of each customer id. Interned, each
    value is held once (400 MB less on ``large``). One plain function per value, not a
    ``TypeDecorator``'s two: the rows are many.
    """

    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        intern = sys.intern

        def process(value: str | None) -> str | None:
            return None if value is None else intern(value)

        return process


#: what only sorting rows into the canonical order reads (``live``): the window's rows are
#: read live and kept in any order (``prepare_kpi_data(read_live=True)``), so all but the
#: emails leave out their ids (70 bytes a row, 1.3 million rows on ``large``)
_UNORDERED = {"source_id", "deleted"}
#: text columns whose values repeat across the rows the company KPIs hold
_REPEATED = frozenset(
    {"source", "customer_id", "owner_id", "direction", "kind", "lifecycle_stage", "stage"}
)


def _unanswered_per_owner(
    store: HubStore,
    emails: list[t.Email],
    owners: list[t.Owner],
    rules: HubRules,
    now: dt.datetime,
    owner_rows: dict[str, dict[str, Any]],
) -> None:
    """Every inquiry still unanswered now (not only this month's), per responsible owner.

    The responsible owner is the customer's owner (who should answer), else the email's owner.
    """
    waiting = unanswered_inquiries(emails, rules, now.astimezone(dt.UTC))
    cust = t.table_of(t.Customer)
    with store.engine.connect() as conn:  # two columns, not 100,000 golden records
        customer_owner = {
            cid: email.strip().casefold()
            for cid, email in conn.execute(
                sa.select(cust.c.id, cust.c.owner_email).where(cust.c.owner_email.is_not(None))
            )
            if email
        }
    email_key = owner_key_by_email(owners)
    counts: Counter[str] = Counter()
    oldest: dict[str, dt.datetime] = {}
    for m in waiting:
        key = customer_owner.get(m.customer_id or "") or email_key(m) or UNASSIGNED
        counts[key] += 1
        sent = m.sent_at
        if sent is not None and (key not in oldest or sent < oldest[key]):
            oldest[key] = sent
    for row in owner_rows.values():
        row["unanswered_inquiries"] = 0
        row["oldest_unanswered_inquiry_days"] = None
    for key, n in counts.items():
        row = owner_rows.setdefault(key, {"owner": key})
        row["unanswered_inquiries"] = n
        row["oldest_unanswered_inquiry_days"] = whole_days(oldest.get(key), now)
