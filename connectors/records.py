"""Typed, immutable records: what the connectors hand to the rest of the hub.

Why: raw CRM payloads differ in every detail (Salesforce typed JSON with ``+0000`` datetimes,
HubSpot all-string properties with ``Z``; ``IsWon`` vs ``hs_is_closed_won``; ``Incoming`` vs
``INCOMING_EMAIL``). The connectors translate those CRM semantics once, here, into one shape per
kind of object, so that nothing right of the connector boundary knows which CRM a value came
from except through ``source``. Business meaning (which priority is "critical", which stage is
"the quote stage") is *not* decided here: the records keep the CRM's own values for that, and
``unified_model`` applies the configured rules.

Every record carries its source CRM, object type, source id and modification time, and a
``deleted`` flag: a deleted record still flows through as a tombstone so the store can act on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

Crm = Literal["salesforce", "hubspot"]
SALESFORCE: Crm = "salesforce"
HUBSPOT: Crm = "hubspot"

#: The hub's object kinds, each read from both CRMs.
ObjectKind = Literal["owner", "account", "contact", "deal", "email", "ticket", "activity"]
OBJECT_KINDS: tuple[ObjectKind, ...] = (
    "owner",
    "account",
    "contact",
    "deal",
    "email",
    "ticket",
    "activity",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceRecord:
    """Identity and freshness of one CRM record."""

    source: Crm
    object_type: str  # the CRM's own object name: "Account", "companies", ...
    source_id: str
    modified_at: dt.datetime
    deleted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerRecord(SourceRecord):
    """A CRM user who owns records (seller, AM): Salesforce User, HubSpot owner."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    department: str | None = None  # SF User.Department / HubSpot owner team name
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecord(SourceRecord):
    """A customer company: Salesforce Account, HubSpot company."""

    name: str | None = None
    website: str | None = None
    domain: str | None = None
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
    created_at: dt.datetime | None = None
    #: The id of the same customer in the other CRM, where an integration stored it
    #: (HubSpot ``salesforceaccountid``; a HubSpot company id field on the Account).
    cross_crm_id: str | None = None
    go_live_date: dt.date | None = None
    onboarding_completed: bool | None = None
    contracted_modules: tuple[str, ...] = ()
    modules_in_use: tuple[str, ...] = ()
    usage_score: float | None = None
    #: A satisfaction survey score (NPS) where the CRM holds one; read only when mapped
    #: (``nps_score`` in the mapping file), else None.
    nps_score: float | None = None
    #: Mapped custom fields (configured in the field mapping), hub name -> value.
    extra: dict[str, object] = field(default_factory=dict)
    #: Current values of the hub's own writeback fields on this record (hub key -> CRM value),
    #: used to detect manual edits of hub-owned fields.
    hub_fields: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRecord(SourceRecord):
    """A person: Salesforce Contact or Lead, HubSpot contact."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    title: str | None = None
    account_ids: tuple[str, ...] = ()  # source ids of the person's companies
    owner_id: str | None = None
    created_at: dt.datetime | None = None
    #: True for a Salesforce Lead; for HubSpot, the lifecycle stage tells (see ``lifecycle_stage``).
    is_lead: bool = False
    lifecycle_stage: str | None = None
    #: For leads not yet tied to an account: what they said about their company.
    company_name: str | None = None
    company_website: str | None = None
    #: When marketing last emailed the person (HubSpot ``hs_email_last_send_date``).
    last_marketing_email_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DealRecord(SourceRecord):
    """A sales opportunity: Salesforce Opportunity, HubSpot deal."""

    name: str | None = None
    account_id: str | None = None
    stage: str | None = None  # the CRM's stage value (StageName / dealstage id)
    stage_label: str | None = None
    is_closed: bool = False
    is_won: bool = False
    probability: float | None = None  # 0..1
    amount: float | None = None
    close_date: dt.date | None = None
    created_at: dt.datetime | None = None
    owner_id: str | None = None
    deal_type: str | None = None
    contract_term_months: float | None = None
    #: When the deal entered each stage it passed through (stage value -> first entry time),
    #: from OpportunityHistory / ``hs_v2_date_entered_*``.
    stage_entered_at: dict[str, dt.datetime] = field(default_factory=dict)
    contact_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailRecord(SourceRecord):
    """A logged email: Salesforce EmailMessage, HubSpot email engagement."""

    #: "forwarded"/"other": neither from nor to the customer (never a reply to an inquiry)
    direction: Literal["inbound", "outbound", "forwarded", "other"] = "outbound"
    sent_at: dt.datetime | None = None
    subject: str | None = None
    from_address: str | None = None
    to_addresses: tuple[str, ...] = ()
    thread_id: str | None = None
    account_ids: tuple[str, ...] = ()
    contact_ids: tuple[str, ...] = ()
    deal_ids: tuple[str, ...] = ()
    owner_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketRecord(SourceRecord):
    """A support case: Salesforce Case, HubSpot ticket."""

    subject: str | None = None
    account_id: str | None = None
    contact_id: str | None = None
    priority: str | None = None  # CRM value: "Critical"/"High"… or "URGENT"/"HIGH"…
    category: str | None = None  # CRM value: Case Type / hs_ticket_category
    status: str | None = None
    is_closed: bool = False
    opened_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    satisfaction: float | None = None  # 1..5 where the CRM holds it
    owner_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityRecord(SourceRecord):
    """A logged sales activity: Salesforce Task and Event, HubSpot call, meeting, note and task.

    Why one record for all of them: contact frequency, last contact and cost of sale count
    activities alike, whatever object the CRM files them under; ``kind`` keeps what it was.
    """

    #: "call", "meeting", "note", "task", or "email" (a Salesforce Task's subtype, lower case).
    kind: str = "task"
    account_id: str | None = None
    deal_id: str | None = None
    occurred_at: dt.datetime | None = None
    duration_seconds: int | None = None
    owner_id: str | None = None
    #: Who started it, where the CRM says so (HubSpot ``hs_call_direction``); None otherwise.
    #: Not stored (the ``activity`` table has no column for it): carried for the rules layer.
    direction: Literal["inbound", "outbound"] | None = None
    #: The CRM's outcome or status ("COMPLETED", "NO_ANSWER", "Completed"...), where it has one.
    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DealStageRecord(SourceRecord):
    """A deal entering a stage: one Salesforce OpportunityHistory row.

    Why a record of its own: Salesforce keeps stage history in a separate object with its own
    ids and deletes (HubSpot keeps ``hs_v2_date_entered_*`` on the deal itself), and the quote
    KPIs need *when* a deal reached a stage, not only where it stands now. The unify step folds
    these rows into ``DealRecord.stage_entered_at``.
    """

    deal_id: str
    stage: str | None = None
    entered_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerAssignmentRecord(SourceRecord):
    """When a customer company got its current owner, per the CRM's own history.

    Why: a customer an account manager already owns when the hub first sees it was handed over
    on a day no other record dates; the CRMs' owner history does (Salesforce ``AccountHistory``
    rows with ``Field = 'Owner'``, HubSpot's versions of ``hubspot_owner_id``). One record per
    owner change (Salesforce: the history row's id; HubSpot: the company's id, with the change
    that gave it its current owner). ``assigned_at`` is None where the history cannot date the
    assignment (the owner was set when the record was created or imported): the hub then says
    "first seen on" instead of inventing a date.
    """

    account_id: str
    owner_id: str | None = None
    assigned_at: dt.datetime | None = None


AnyRecord = (
    OwnerRecord
    | AccountRecord
    | ContactRecord
    | DealRecord
    | EmailRecord
    | TicketRecord
    | ActivityRecord
    | DealStageRecord
    | OwnerAssignmentRecord
)


# --------------------------------------------------------------------------------------------
# Writeback
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """Hub-owned field values to set on one CRM record (hub field key -> string value or None)."""

    source_id: str
    values: dict[str, str | None]


WriteOutcome = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What happened to one record of a write batch."""

    source_id: str
    outcome: WriteOutcome
    reason: str | None = None
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class HubFieldSpec:
    """A field the hub owns and writes: its hub key, label, type and (for enums) options.

    ``kind``: "string", "text" (long text), "number", "date", "datetime", "bool", "enum".
    """

    key: str
    label: str
    kind: str
    description: str = ""
    options: tuple[str, ...] = ()
