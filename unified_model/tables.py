"""The hub database: the 360-degree customer model and the hub's own bookkeeping.

Three families of tables:

- **source rows** (``SourceAccount``, ``Contact``, ``Deal``, ``Email``, ``Ticket``, ``Activity``,
  ``Owner``): one row per CRM record, keyed by (source, source_id), with the source modification
  time and a tombstone flag. The connectors' records land here through idempotent upserts.
- **the unified model** (``Customer`` golden records, ``SourceLink`` identity links, ``MatchReview``):
  which CRM records are the same customer, and the survived field values with their sources.
- **derived and bookkeeping** (``HandoverState``/``HandoverTransition``, ``CustomerMetrics``,
  ``SyncCursor``, ``SyncRun``, ``WritebackLedger``, ``WriteAudit``, ``ErasedIdentity``, ``ErasureAudit``).

All datetimes are stored as UTC and read back timezone-aware (``UtcDateTime``), on SQLite and
PostgreSQL alike, so that comparisons never mix naive and aware values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Store aware datetimes as naive UTC; return aware UTC. Refuses naive input (a bug)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the hub store; use timezone-aware UTC")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """On SQLite, the stored text parsed by ``datetime.fromisoformat`` (C) in one step.

        Why: the KPIs and the handover read millions of timestamps per run; SQLAlchemy's SQLite
        parser (a regular expression) followed by this decorator's ``replace`` was ~2 µs a
        value, a sixth of the company KPI step on ``large``. Text it cannot parse goes the
        usual way, so the result is the same (``tests/unified_model/test_store.py``).
        """
        usual = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return usual
        parse, utc = dt.datetime.fromisoformat, dt.UTC

        def process(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            if type(value) is str:
                try:
                    return parse(value).replace(tzinfo=utc)
                except ValueError:
                    pass
            return usual(value) if usual is not None else value

        return process


def table_of(model: type[SQLModel]) -> sa.Table:
    """The SQLAlchemy table behind a SQLModel class (for set-based core statements)."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UtcDateTime(), nullable=nullable, index=index))


def _json(default: Any = None) -> Any:
    is_dict = isinstance(default, dict)
    factory: Any = dict if is_dict else list
    # a server default too, so that a tombstone of a never-seen record (identity only) inserts
    return Field(
        default_factory=factory,
        sa_column=sa.Column(
            sa.JSON(), nullable=False, server_default=sa.text("'{}'" if is_dict else "'[]'")
        ),
    )


# --------------------------------------------------------------------------------------------
# Source rows
# --------------------------------------------------------------------------------------------


class Owner(SQLModel, table=True):
    __tablename__ = "owner"
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    email: str | None = Field(default=None, index=True)
    first_name: str | None = None
    last_name: str | None = None
    #: Department / team ("Sales", "Account Management"): tells sellers from account managers.
    department: str | None = None
    active: bool = True
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)


class SourceAccount(SQLModel, table=True):
    """A Salesforce Account or HubSpot company as last read, plus its link to a golden customer."""

    __tablename__ = "source_account"
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    customer_id: str | None = Field(default=None, index=True)
    name: str | None = None
    website: str | None = None
    domain: str | None = Field(default=None, index=True)
    phone: str | None = None
    industry: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    owner_id: str | None = None
    created_at: dt.datetime | None = _ts()
    cross_crm_id: str | None = Field(default=None, index=True)
    go_live_date: dt.date | None = None
    onboarding_completed: bool | None = None
    contracted_modules: list[str] = _json([])
    modules_in_use: list[str] = _json([])
    usage_score: float | None = None
    #: NPS or another satisfaction survey score, where the CRM holds one and it is mapped
    nps_score: float | None = None
    extra: dict[str, Any] = _json({})
    hub_fields: dict[str, Any] = _json({})
    #: hash of the business fields, and when they last changed: the hub's own writes bump the
    #: CRM's modification time without changing them, and must not win survivorship
    content_hash: str | None = None
    content_modified_at: dt.datetime | None = _ts()
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)
    #: hub time the CRM's copy of the hub's own fields last changed (echo or manual edit)
    hub_fields_at: dt.datetime | None = _ts()
    #: the owner the CRM's owner history last names (Salesforce AccountHistory, HubSpot's
    #: versions of ``hubspot_owner_id``) and when it was assigned: the handover day of a customer
    #: first seen with an account manager, when it is still this row's ``owner_id``
    owner_assigned_to: str | None = None
    owner_assigned_at: dt.datetime | None = _ts()


#: the part of a stored normalised address after its last ``@`` (``str.rpartition``), per
#: dialect: what unify's vote count groups contacts by (``unify._stored_votes``), and what the
#: partial index ``ix_contact_votes`` (migration 0009, the same text) holds
EMAIL_HOST = {
    "sqlite": "substr(email_normalized, "
    "length(rtrim(email_normalized, replace(email_normalized, '@', ''))) + 1)",
    "postgresql": "(substring(email_normalized from '[^@]*$'))",
}
#: the partial index of unify's voters (migration 0009 creates the same; unify drops it for a
#: first linking of every contact and builds it again afterwards)
VOTES_INDEX = "ix_contact_votes"
VOTES_INDEX_DDL = {
    dialect: f"CREATE INDEX IF NOT EXISTS {VOTES_INDEX} ON contact ({host}, customer_id) "
    f"WHERE deleted IS {false} AND linked_via IS NULL AND customer_id IS NOT NULL "
    "AND email_normalized IS NOT NULL AND email_normalized != ''"
    for dialect, host, false in (
        ("sqlite", EMAIL_HOST["sqlite"], "0"),
        ("postgresql", EMAIL_HOST["postgresql"], "false"),
    )
}


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    customer_id: str | None = Field(default=None, index=True)
    email: str | None = None
    email_normalized: str | None = Field(default=None, index=True)
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    title: str | None = None
    account_source_ids: list[str] = _json([])
    owner_id: str | None = None
    created_at: dt.datetime | None = _ts()
    is_lead: bool = False
    lifecycle_stage: str | None = None
    company_name: str | None = None
    company_website: str | None = None
    last_marketing_email_at: dt.datetime | None = _ts()
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)
    #: how unify's last contact linking placed it: NULL through one of its accounts (or not
    #: linked yet), "domain" by its work domain, "none" nowhere. Unify's bookkeeping (never
    #: read from a CRM): with it a run relinks only the contacts that may have moved
    linked_via: str | None = None


class Deal(SQLModel, table=True):
    __tablename__ = "deal"
    #: rows by account (same CRM): what ``unify._attach_by_account`` re-attaches (see 0010)
    __table_args__ = (sa.Index("ix_deal_source_account", "source", "account_source_id"),)
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    customer_id: str | None = Field(default=None, index=True)
    account_source_id: str | None = None
    name: str | None = None
    stage: str | None = None
    stage_label: str | None = None
    is_closed: bool = False
    is_won: bool = False
    probability: float | None = None
    amount: float | None = None
    close_date: dt.date | None = None
    created_at: dt.datetime | None = _ts()
    owner_id: str | None = None
    deal_type: str | None = None
    contract_term_months: float | None = None
    #: stage value -> ISO datetime of first entry
    stage_entered_at: dict[str, str] = _json({})
    contact_source_ids: list[str] = _json([])
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)


class Email(SQLModel, table=True):
    __tablename__ = "email"
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    customer_id: str | None = Field(default=None, index=True)
    direction: str = "outbound"  # "inbound" | "outbound" | "forwarded" | "other"
    sent_at: dt.datetime | None = _ts()
    subject: str | None = None
    from_address: str | None = None
    to_addresses: list[str] = _json([])
    thread_id: str | None = None
    account_source_ids: list[str] = _json([])
    contact_source_ids: list[str] = _json([])
    deal_source_ids: list[str] = _json([])
    owner_id: str | None = None
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"
    #: rows by account (same CRM): what ``unify._attach_by_account`` re-attaches (see 0010)
    __table_args__ = (sa.Index("ix_ticket_source_account", "source", "account_source_id"),)
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    customer_id: str | None = Field(default=None, index=True)
    account_source_id: str | None = None
    contact_source_id: str | None = None
    subject: str | None = None
    priority: str | None = None
    category: str | None = None
    status: str | None = None
    is_closed: bool = False
    opened_at: dt.datetime | None = _ts()
    closed_at: dt.datetime | None = _ts()
    satisfaction: float | None = None
    owner_id: str | None = None
    #: how often the hub saw this ticket closed on one read and open again on a later one (the
    #: CRMs' status history is not read: a close and reopen between two syncs is not seen)
    reopened_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    #: the CRM's modification time of the record the hub last saw reopened
    reopened_at: dt.datetime | None = _ts()
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)


class DealStageEvent(SQLModel, table=True):
    """A deal entering a stage (Salesforce OpportunityHistory), folded into ``Deal.stage_entered_at``."""

    __tablename__ = "deal_stage_event"
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    deal_source_id: str = Field(index=True)
    stage: str | None = None
    entered_at: dt.datetime | None = _ts()
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)


class Activity(SQLModel, table=True):
    __tablename__ = "activity"
    #: rows by account (same CRM): what ``unify._attach_by_account`` re-attaches (see 0010)
    __table_args__ = (sa.Index("ix_activity_source_account", "source", "account_source_id"),)
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    customer_id: str | None = Field(default=None, index=True)
    kind: str = "task"
    account_source_id: str | None = None
    deal_source_id: str | None = None
    occurred_at: dt.datetime | None = _ts()
    duration_seconds: int | None = None
    owner_id: str | None = None
    deleted: bool = False
    modified_at: dt.datetime | None = _ts()
    #: hub time this row's content last changed (not the CRM's clock; a re-read of the same
    #: values keeps it): what the incremental phases after extraction look for
    changed_at: dt.datetime | None = _ts(index=True)


# --------------------------------------------------------------------------------------------
# Unified model
# --------------------------------------------------------------------------------------------


class Customer(SQLModel, table=True):
    """The golden record: one customer, whichever CRMs know it."""

    __tablename__ = "customer"
    id: str = Field(primary_key=True)  # hub customer id, e.g. "HUB-0000123"
    name: str | None = None
    domain: str | None = Field(default=None, index=True)
    website: str | None = None
    phone: str | None = None
    industry: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    go_live_date: dt.date | None = None
    onboarding_completed: bool | None = None
    contracted_modules: list[str] = _json([])
    modules_in_use: list[str] = _json([])
    usage_score: float | None = None
    nps_score: float | None = None
    #: the survived owner (seller or AM) of the customer, by email so it is the same person in both CRMs
    owner_email: str | None = None
    owner_name: str | None = None
    #: golden field -> "salesforce:001…" / "hubspot:123…": where each value came from
    field_sources: dict[str, str] = _json({})
    created_at: dt.datetime | None = _ts()
    updated_at: dt.datetime | None = _ts()


class SourceLink(SQLModel, table=True):
    """Identity resolution result: this CRM record is (part of) that customer, and why."""

    __tablename__ = "source_link"
    source: str = Field(primary_key=True)
    object_type: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    customer_id: str = Field(index=True)
    match_method: str  # "explicit_id", "domain", "contact_domain", "fuzzy_name", "manual", "new"
    confidence: float = 1.0
    matched_at: dt.datetime | None = _ts()


class MatchReview(SQLModel, table=True):
    """A possible match too weak to merge automatically, waiting for a person's decision."""

    __tablename__ = "match_review"
    id: int | None = Field(default=None, primary_key=True)
    left_source: str
    left_id: str
    right_source: str
    right_id: str
    score: float
    reason: str = ""
    status: str = "pending"  # "pending" | "confirmed" | "rejected"
    created_at: dt.datetime | None = _ts()
    decided_at: dt.datetime | None = _ts()
    __table_args__ = (sa.UniqueConstraint("left_source", "left_id", "right_source", "right_id"),)


# --------------------------------------------------------------------------------------------
# Derived: handover and metrics
# --------------------------------------------------------------------------------------------


class HandoverState(SQLModel, table=True):
    __tablename__ = "handover_state"
    customer_id: str = Field(primary_key=True)
    status: str
    rule_kind: str = "maturity"
    #: one plain-language line for the CRM field ("blocked: 2 open critical tickets; …")
    summary: str = ""
    #: [{"criterion": str, "passed": bool, "detail": str}]
    reasons: list[dict[str, Any]] = _json([])
    ready_since: dt.datetime | None = _ts()
    handed_over_on: dt.datetime | None = _ts()
    evaluated_at: dt.datetime | None = _ts()
    #: when the current status began (None: before the hub first saw the customer, date unknown)
    status_since: dt.datetime | None = _ts()
    #: since when the readiness criterion has held without a break (the minimum stable period)
    mature_since: dt.datetime | None = _ts()
    #: when the hub first evaluated this customer ("first seen on" where a date is unknown)
    first_seen_at: dt.datetime | None = _ts()
    #: how each date is known: {"status_since": "event" | "first_seen", ...}, plus the internal
    #: ``trigger_baseline`` (ISO) of a customer first seen handed over on an unknown date
    date_basis: dict[str, Any] = _json({})
    #: hub time the decision last changed (not merely re-evaluated): what writeback plans from
    changed_at: dt.datetime | None = _ts(index=True)


class HandoverTransition(SQLModel, table=True):
    __tablename__ = "handover_transition"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True)
    from_status: str | None = None
    to_status: str
    at: dt.datetime | None = _ts()
    reasons: list[dict[str, Any]] = _json([])


class CustomerMetrics(SQLModel, table=True):
    """Per-customer KPIs, behaviour indicators and signals (the values pushed back)."""

    __tablename__ = "customer_metrics"
    customer_id: str = Field(primary_key=True)
    values: dict[str, Any] = _json({})
    computed_at: dt.datetime | None = _ts()
    #: hub time the values last changed (not merely recomputed): what writeback plans from
    changed_at: dt.datetime | None = _ts(index=True)


class DirtyCustomer(SQLModel, table=True):
    """A customer whose inputs changed in a way its current rows no longer show.

    Why: the incremental phases find changed customers through the ``changed_at`` of their rows,
    but a row that moved to another customer (re-linked contact, deal re-parented, account merged
    elsewhere) no longer points at the customer it left. Unify notes those here; the next
    handover/KPI run recomputes them and clears the rows it has seen.
    """

    __tablename__ = "dirty_customer"
    customer_id: str = Field(primary_key=True)
    marked_at: dt.datetime | None = _ts()


# --------------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------------


class SyncCursor(SQLModel, table=True):
    """Where the incremental read of one CRM object stopped (checkpointed after every page)."""

    __tablename__ = "sync_cursor"
    source: str = Field(primary_key=True)
    object_type: str = Field(primary_key=True)
    cursor: dict[str, Any] = _json({})
    updated_at: dt.datetime | None = _ts()


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"
    id: str = Field(primary_key=True)
    started_at: dt.datetime | None = _ts()
    finished_at: dt.datetime | None = _ts()
    status: str = "running"
    summary: dict[str, Any] = _json({})


class WritebackLedger(SQLModel, table=True):
    """The value of each hub-owned field last *confirmed* written to a CRM record."""

    __tablename__ = "writeback_ledger"
    source: str = Field(primary_key=True)
    source_id: str = Field(primary_key=True)
    field_key: str = Field(primary_key=True)
    value: str | None = None
    confirmed_at: dt.datetime | None = _ts()
    run_id: str | None = None


class WriteAudit(SQLModel, table=True):
    """One row per record write: which fields, from what, to what, and how it went.

    Written *ahead* of the call as ``pending`` (with the run and batch that send it) and settled
    after the CRM answers (``ok`` / ``failed`` / ``skipped``), or by the next run from what the
    CRM holds when the process died in between: so every write the CRMs received has exactly one
    row, also after a kill. ``changes`` maps each hub field key to ``[old, new]``.
    Rows written before crmhub 0.2 hold one field each (``field_key``, ``old_value``,
    ``new_value``) and no ``changes``.
    """

    __tablename__ = "write_audit"
    # A batch's pending rows are found by (batch_id, outcome): with one index per column SQLite
    # walked every pending row of every batch (a concurrent Salesforce Bulk job holds 75,000 on
    # ``large``) for each HubSpot batch settled. The pair is one index; SQLite appends the row
    # id, so a streamed settlement's id range is a range of the same index.
    __table_args__ = (sa.Index("ix_write_audit_batch_outcome", "batch_id", "outcome"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    batch_id: str | None = None
    source: str
    source_id: str = Field(index=True)
    customer_id: str | None = Field(default=None, index=True)
    changes: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    field_key: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    outcome: str = Field(index=True)  # "pending" | "ok" | "failed" | "skipped"
    reason: str | None = None
    at: dt.datetime | None = _ts()
    settled_at: dt.datetime | None = _ts()

    def field_changes(self) -> dict[str, tuple[str | None, str | None]]:
        """Field key -> (old, new), for per-record rows and the older per-field rows alike."""
        if self.changes is not None:
            return {k: (v[0], v[1]) for k, v in self.changes.items()}
        if self.field_key is not None:
            return {self.field_key: (self.old_value, self.new_value)}
        return {}


class ErasedIdentity(SQLModel, table=True):
    """A person erased on request: the hash of the address, so stale source rows stay out."""

    __tablename__ = "erased_identity"
    email_hash: str = Field(primary_key=True)
    erased_at: dt.datetime | None = _ts()


class ErasureAudit(SQLModel, table=True):
    __tablename__ = "erasure_audit"
    id: int | None = Field(default=None, primary_key=True)
    pseudonym: str
    erased_at: dt.datetime | None = _ts()
    counts: dict[str, Any] = _json({})
    trigger: str = "request"  # "request" | "source_delete"


SOURCE_TABLES: dict[str, type[SQLModel]] = {
    "owner": Owner,
    "account": SourceAccount,
    "contact": Contact,
    "deal": Deal,
    "email": Email,
    "ticket": Ticket,
    "activity": Activity,
    "deal_stage": DealStageEvent,
}
