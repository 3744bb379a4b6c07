"""What the hub writes back to each CRM record, and only what changed.

Why a diff against a ledger: sellers and AMs see the hub only through a handful of fields on their
Account/Company records. Rewriting every field every run would burn the customer's API quota,
flood field history and trigger their workflow rules. So the hub keeps a ledger of the values it
last *confirmed* written per record and field, computes the desired values from the unified model,
and sends only the differences. A failed write leaves the ledger untouched, so the next run retries
exactly that; a manual edit of a hub field in the CRM shows up in the extracted ``hub_fields`` and
is corrected. A record the CRM reports as gone (``skipped``: deleted or merged since the last
extract) is marked deleted in the store, as the daily hard-delete pass would, so later runs neither
re-send to it nor count it for its customer; the hub never re-creates a CRM record.

``last_sync`` is the time the hub last *changed* the record's hub fields; it is written together
with other changes only, otherwise a sync with nothing new would rewrite every record.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.dialects import postgresql, sqlite

from connectors.records import HUBSPOT, FieldUpdate, HubFieldSpec, WriteResult
from unified_model import incremental as changes_
from unified_model import tables as t
from unified_model.failpoints import crash_point
from unified_model.store import execute_many, utcnow

HANDOVER_STATUSES = (
    "new_sales",
    "onboarding",
    "ready_for_handover",
    "account_management",
    "at_risk",
    "overdue",
)

#: Every field the hub can own. ``source`` says where the value comes from: ``customer``
#: (golden record), ``handover`` (HandoverState) or ``metric:<key>`` (CustomerMetrics.values).
HUB_FIELDS: dict[str, tuple[HubFieldSpec, str]] = {
    spec.key: (spec, src)
    for spec, src in [
        (
            HubFieldSpec(
                "customer_id",
                "Hub customer ID",
                "string",
                "The customer's id in crmhub, the same on both CRMs.",
            ),
            "customer",
        ),
        (
            HubFieldSpec(
                "handover_status",
                "Handover status",
                "enum",
                "Where the customer stands between new sales and account management.",
                HANDOVER_STATUSES,
            ),
            "handover:status",
        ),
        (
            HubFieldSpec(
                "handover_reasons",
                "Handover reasons",
                "text",
                "Which handover criteria pass and which block, with the evidence (ticket ids, "
                "modules, days left in the handover zone) and the next step.",
            ),
            "handover:summary",
        ),
        (
            HubFieldSpec(
                "handover_status_label",
                "Handover status (label)",
                "string",
                "The handover status in words, e.g. 'Ready for handover'.",
            ),
            "metric:handover_status_label",
        ),
        (
            HubFieldSpec(
                "handover_status_since",
                "Handover status since",
                "date",
                "Business day the current handover status began (empty: before crmhub first "
                "saw the customer; the reasons say 'first seen on').",
            ),
            "metric:handover_status_since",
        ),
        (
            HubFieldSpec(
                "handover_next_step",
                "Handover next step",
                "text",
                "What to do next about the handover, e.g. 'close ticket 500A'.",
            ),
            "metric:handover_next_step",
        ),
        (
            HubFieldSpec(
                "ready_since",
                "Ready for handover since",
                "date",
                "Business day the customer met every handover criterion (empty when unknown).",
            ),
            "metric:handover_ready_since",
        ),
        (
            HubFieldSpec(
                "handed_over_on",
                "Handed over on",
                "date",
                "Business day account management took the customer over: from the CRM's owner "
                "history where it has one, else the day a sync saw it (empty when unknown: the "
                "reasons say 'first seen on').",
            ),
            "metric:handover_handed_over_on",
        ),
        (
            HubFieldSpec(
                "health_score",
                "Health score",
                "number",
                "0-100 from tickets, usage, contact recency and satisfaction.",
            ),
            "metric:health_score",
        ),
        (
            HubFieldSpec(
                "quote_hit_rate",
                "Quote hit rate",
                "number",
                "Won / (won + lost) of decided deals that reached the quote stage.",
            ),
            "metric:quote_hit_rate",
        ),
        (
            HubFieldSpec(
                "win_rate", "Win rate", "number", "Won / (won + lost) of all decided deals."
            ),
            "metric:win_rate",
        ),
        (
            HubFieldSpec(
                "contract_value", "Won contract value", "number", "Total amount of won deals."
            ),
            "metric:contract_value",
        ),
        (
            HubFieldSpec(
                "annualized_contract_value",
                "Annualised contract value",
                "number",
                "Won recurring value per year.",
            ),
            "metric:contract_value_annualised",
        ),
        (
            HubFieldSpec(
                "open_critical_tickets",
                "Open critical tickets",
                "number",
                "Open tickets/cases of critical severity (the top priority only).",
            ),
            "metric:open_critical_tickets",
        ),
        (
            HubFieldSpec(
                "open_serious_tickets",
                "Open serious tickets",
                "number",
                "Open tickets/cases of serious severity (the priority below critical).",
            ),
            "metric:open_serious_tickets",
        ),
        (
            HubFieldSpec(
                "case_handling_hours",
                "Median case handling time (h)",
                "number",
                "Median hours from ticket opened to closed.",
            ),
            "metric:case_handling_median_hours",
        ),
        (
            HubFieldSpec(
                "customer_satisfaction",
                "Customer satisfaction",
                "number",
                "Mean satisfaction score (1-5) of the customer's tickets.",
            ),
            "metric:csat_mean",
        ),
        (
            HubFieldSpec(
                "nps_score",
                "NPS / survey score",
                "number",
                "The customer's satisfaction survey score (NPS) as the CRM field mapped to "
                "nps_score holds it; written only when that mapping exists.",
            ),
            "metric:nps_score",
        ),
        (
            HubFieldSpec(
                "first_response_hours",
                "First response time (business h)",
                "number",
                "Median business hours from an inbound email to the first reply.",
            ),
            "metric:first_response_median_hours",
        ),
        (
            HubFieldSpec(
                "last_two_way_contact",
                "Last two-way contact",
                "date",
                "Last day with emails both ways (a date, so it does not change every day).",
            ),
            "metric:last_two_way_contact_on",
        ),
        (
            HubFieldSpec(
                "negotiation_flag",
                "In active negotiation (suppress marketing)",
                "bool",
                "A deal is open in a late stage: suppress marketing from the day it entered it.",
            ),
            "metric:negotiation_flag",
        ),
        (
            HubFieldSpec(
                "negotiation_detail",
                "Negotiation (deal, stage, seller, since)",
                "text",
                "The late-stage deal behind the suppression: its name, stage, seller and since.",
            ),
            "metric:negotiation_detail",
        ),
        (
            HubFieldSpec(
                "marketing_alert",
                "Marketing emailed during negotiation",
                "bool",
                "Marketing emailed a contact after a deal entered a late stage (an alert).",
            ),
            "metric:marketing_alert",
        ),
        (
            HubFieldSpec(
                "marketing_alert_detail",
                "Marketing during negotiation (what, when)",
                "text",
                "Which contact marketing emailed when, during which deal's negotiation.",
            ),
            "metric:marketing_alert_detail",
        ),
        (
            HubFieldSpec(
                "unanswered_inquiries",
                "Unanswered customer emails",
                "number",
                "Inbound customer emails with no reply yet (older than the configured hours).",
            ),
            "metric:unanswered_inquiries",
        ),
        (
            HubFieldSpec(
                "oldest_unanswered_inquiry",
                "Oldest unanswered customer email",
                "date",
                "Business day the oldest still unanswered customer email arrived.",
            ),
            "metric:oldest_unanswered_inquiry_on",
        ),
        (
            HubFieldSpec(
                "contacts_per_month",
                "Contacts per month",
                "number",
                "Logged emails and calls per month over the configured trailing window.",
            ),
            "metric:contacts_per_month",
        ),
        (
            HubFieldSpec(
                "cost_of_sale",
                "Cost of sale",
                "number",
                "Configured cost of the logged sales activities (per activity and per hour).",
            ),
            "metric:cost_of_sale",
        ),
        (
            HubFieldSpec(
                "stale_deals",
                "Stale open deals",
                "number",
                "Open deals with no update or activity for the configured time.",
            ),
            "metric:stale_deals",
        ),
        (
            HubFieldSpec(
                "unlogged_contact",
                "Deals without logged emails",
                "bool",
                "The customer has deals but no logged emails.",
            ),
            "metric:unlogged_contact",
        ),
        (
            HubFieldSpec(
                "last_sync",
                "Last changed by crmhub",
                "datetime",
                "When crmhub last changed this record's hub fields.",
            ),
            "sync",
        ),
    ]
}


#: Hub fields written only when their input is mapped (``<crm>.read.<key>`` in the mapping
#: file): without a survey field in either CRM there is nothing to write, and no field to create.
MAPPED_ONLY: tuple[str, ...] = ("nps_score",)

#: The fields written when the mapping file lists none.
DEFAULT_FIELDS: tuple[str, ...] = tuple(k for k in HUB_FIELDS if k not in MAPPED_ONLY)

#: Ledger and audit ``source`` of writes to HubSpot *contacts*: contact and company ids are
#: separate id spaces in HubSpot, so the contacts keep their own ledger rows and watermark.
HUBSPOT_CONTACT = "hubspot_contact"

#: The hub fields written onto each HubSpot contact of a customer (``crmhub_<key>`` properties).
#: Both are set only while the customer is in a late-stage negotiation and cleared after, so a
#: portal's contacts are touched only when a suppression begins or ends.
HUB_CONTACT_FIELDS: dict[str, tuple[HubFieldSpec, str]] = {
    spec.key: (spec, src)
    for spec, src in [
        (
            HubFieldSpec(
                "marketing_suppressed",
                "Suppress marketing (crmhub)",
                "bool",
                "Yes while the contact's company has an open deal in a late stage: leave the "
                "contact out of marketing emails. Cleared when the deal is won, lost or goes back.",
            ),
            "metric:negotiation_flag",
        ),
        (
            HubFieldSpec(
                "suppression_reason",
                "Marketing suppression reason (crmhub)",
                "text",
                "The deal behind the suppression: its name, stage, seller and since when.",
            ),
            "metric:suppression_reason",
        ),
    ]
}


class WritebackConfigError(ValueError):
    """The writeback section of the mapping file is wrong; the message names key and fix."""


@dataclass(frozen=True)
class WritebackConfig:
    """Which hub fields are written, and per-CRM name overrides (validated by the connectors)."""

    fields: tuple[str, ...] = DEFAULT_FIELDS
    salesforce_names: dict[str, str] = field(default_factory=dict)
    hubspot_names: dict[str, str] = field(default_factory=dict)
    #: Above this many changed records a run writes nothing and fails loudly (a safety net
    #: against a bad rule change rewriting the whole CRM); 0 disables it.
    max_changed_records: int = 0
    #: Hub fields written onto HubSpot contacts (the marketing suppression); empty: none.
    hubspot_contact_fields: tuple[str, ...] = tuple(HUB_CONTACT_FIELDS)

    def specs(self) -> list[HubFieldSpec]:
        return [HUB_FIELDS[k][0] for k in self.fields]

    def contact_specs(self) -> list[HubFieldSpec]:
        return [HUB_CONTACT_FIELDS[k][0] for k in self.hubspot_contact_fields]


def load_writeback_config(path: Path | None) -> WritebackConfig:
    """Read the ``writeback:`` section of ``mapping.yaml`` (absent file or section: defaults)."""
    if path is None or not path.exists():
        return WritebackConfig()
    raw = yaml.safe_load(path.read_text()) or {}
    section = raw.get("writeback") or {}
    if not isinstance(section, dict):
        raise WritebackConfigError(f"{path}: 'writeback' must be a mapping")
    allowed = {
        "fields",
        "salesforce_names",
        "hubspot_names",
        "max_changed_records",
        "hubspot_contact_fields",
    }
    unknown = set(section) - allowed
    if unknown:
        raise WritebackConfigError(
            f"{path}: unknown key(s) writeback.{sorted(unknown)[0]}; allowed: {sorted(allowed)}"
        )
    fields = tuple(section.get("fields") or DEFAULT_FIELDS)
    # a mapped survey score is written back without listing it (absent mapping: nothing)
    fields += tuple(k for k in MAPPED_ONLY if k not in fields and _mapped(raw, k))
    for key in fields:
        if key not in HUB_FIELDS:
            raise WritebackConfigError(
                f"{path}: writeback.fields names '{key}', which is not a hub field; "
                f"choose from: {', '.join(HUB_FIELDS)}"
            )
    raw_contact = section.get("hubspot_contact_fields")
    contact_fields = tuple(HUB_CONTACT_FIELDS) if raw_contact is None else tuple(raw_contact)
    for key in contact_fields:
        if key not in HUB_CONTACT_FIELDS:
            raise WritebackConfigError(
                f"{path}: writeback.hubspot_contact_fields names '{key}', which is not a hub "
                f"contact field; choose from: {', '.join(HUB_CONTACT_FIELDS)} (or [] for none)"
            )
    for crm in ("salesforce_names", "hubspot_names"):
        for key in section.get(crm) or {}:
            if key not in HUB_FIELDS:
                raise WritebackConfigError(
                    f"{path}: writeback.{crm}.{key} is not a hub field; "
                    f"choose from: {', '.join(HUB_FIELDS)}"
                )
    return WritebackConfig(
        fields=fields,
        salesforce_names=dict(section.get("salesforce_names") or {}),
        hubspot_names=dict(section.get("hubspot_names") or {}),
        max_changed_records=int(section.get("max_changed_records") or 0),
        hubspot_contact_fields=contact_fields,
    )


def _mapped(raw: dict[str, Any], key: str) -> bool:
    """Whether either CRM's ``read`` section of the mapping file names a field for ``key``."""
    for crm in ("salesforce", "hubspot"):
        section = raw.get(crm)
        read = section.get("read") if isinstance(section, dict) else None
        if isinstance(read, dict) and read.get(key):
            return True
    return False


def render(value: Any, kind: str) -> str | None:
    """A value as the string the ledger and the connectors use ("" and None both mean empty)."""
    if value is None or value == "":
        return None
    if kind == "bool":
        return "true" if bool(value) else "false"
    if kind == "number":
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:.2f}"
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)[:10]
    if kind == "datetime" and isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


@dataclass
class PlannedWrite:
    """One CRM record's changed hub fields: old (ledger) and new values."""

    source: str
    source_id: str
    customer_id: str
    changes: dict[str, tuple[str | None, str | None]]  # key -> (old, new)

    def update(self) -> FieldUpdate:
        return FieldUpdate(self.source_id, {k: new for k, (_, new) in self.changes.items()})


#: Records planned, written ahead and settled together: what bounds the writeback's memory.
#: A first writeback of ``large`` plans 75,000 records; as one list of plans, ORM rows and
#: ledger rows that took about 2 GB, in pages of this size a few tens of MB.
PAGE_SIZE = 2000


def desired_values(
    customer: t.Customer,
    handover: t.HandoverState | None,
    metrics: t.CustomerMetrics | None,
    config: WritebackConfig,
) -> dict[str, str | None]:
    """The hub field values this customer should show (without ``last_sync``)."""
    return _desired(customer.id, handover, (metrics.values if metrics else {}) or {}, config)


def _desired(
    customer_id: str, handover: Any, metric_values: dict[str, Any], config: WritebackConfig
) -> dict[str, str | None]:
    """:func:`desired_values` from the customer's id, its handover row and its metric values."""
    values: dict[str, str | None] = {}
    for key in config.fields:
        spec, src = HUB_FIELDS[key]
        if src == "sync":
            continue
        if src == "customer":
            raw: Any = customer_id
        elif src.startswith("handover:"):
            raw = getattr(handover, src.split(":", 1)[1], None) if handover else None
        else:
            raw = metric_values.get(src.split(":", 1)[1])
        values[key] = render(raw, spec.kind)
    return values


def plan_writeback(
    session: Any,
    source: str,
    config: WritebackConfig,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
    audit_after: int = 0,
) -> list[PlannedWrite]:
    """Every planned write of one CRM as one list (see :func:`plan_writeback_pages`)."""
    return [
        plan
        for page in plan_writeback_pages(
            session, source, config, now, since=since, audit_after=audit_after
        )
        for plan in page
    ]


def plan_writeback_pages(
    session: Any,
    source: str,
    config: WritebackConfig,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
    audit_after: int = 0,
    page_size: int | None = None,
) -> Iterator[list[PlannedWrite]]:
    """Diff desired values against the ledger (and the CRM's current hub values) for one CRM.

    Yields the plans page by page (at most ``page_size`` records each, default
    :data:`PAGE_SIZE`, in source id order), so
    a first writeback of every record holds one page at a time. Each page ends its read
    transaction before it is yielded: the caller writes between pages.

    ``since`` (the last writeback's watermark) limits the diff to the records that can have
    changed: their customer's decision, values or golden record changed, the record itself
    changed or was re-linked, the CRM's copy of the hub fields changed (a manual edit), or a
    write failed after audit row ``audit_after``. Without it every record is compared (first
    run, changed configuration).
    """
    acc = t.table_of(t.SourceAccount)
    live = (
        acc.c.source == source,
        acc.c.deleted.is_(False),
        acc.c.customer_id.is_not(None),
    )
    if since is None:
        # sorted here, not by the database: the same order on SQLite and PostgreSQL collations
        ids = sorted(session.execute(sa.select(acc.c.source_id).where(*live)).scalars())
    else:
        ids = _candidates(session, source, since, audit_after)
    session.commit()
    page_size = page_size or PAGE_SIZE
    for start in range(0, len(ids), page_size):
        rows = session.execute(
            sa.select(acc.c.source_id, acc.c.customer_id, acc.c.hub_fields).where(
                *live, acc.c.source_id.in_(ids[start : start + page_size])
            )
        ).all()
        page = _plan_page(session, source, config, now, rows)
        session.commit()
        yield page


def _plan_page(
    session: Any, source: str, config: WritebackConfig, now: dt.datetime, rows: Sequence[Any]
) -> list[PlannedWrite]:
    """The plans of one page of records (``source_id``, ``customer_id``, ``hub_fields`` rows)."""
    wanted = sorted({r.customer_id for r in rows})
    cust = t.table_of(t.Customer)
    hand = t.table_of(t.HandoverState)
    met = t.table_of(t.CustomerMetrics)
    led = t.table_of(t.WritebackLedger)
    # plain rows, not ORM objects: only the columns the fields name; each result fetched in
    # one go (``all``): iterating a result costs a cursor ``fetchone`` per row, and the ledger
    # holds a row per field (200,000 for a 1 % run's 7,000 accounts on ``large``)
    attrs = sorted(
        {src.split(":", 1)[1] for _, src in HUB_FIELDS.values() if src.startswith("handover:")}
    )
    customers = set(
        session.execute(sa.select(cust.c.id).where(cust.c.id.in_(wanted))).scalars().all()
    )
    handovers = {
        row.customer_id: row
        for row in session.execute(
            sa.select(hand.c.customer_id, *(hand.c[a] for a in attrs)).where(
                hand.c.customer_id.in_(wanted)
            )
        ).all()
    }
    metrics: dict[str, dict[str, Any]] = {
        cid: values or {}
        for cid, values in session.execute(
            sa.select(met.c.customer_id, met.c["values"]).where(met.c.customer_id.in_(wanted))
        ).all()
    }
    ledger: dict[tuple[str, str], str | None] = {
        (sid, key): value
        for sid, key, value in session.execute(
            sa.select(led.c.source_id, led.c.field_key, led.c.value).where(
                led.c.source == source, led.c.source_id.in_([r.source_id for r in rows])
            )
        ).all()
    }
    written = {sid for sid, _ in ledger}
    stamp = render(now, "datetime")
    planned: list[PlannedWrite] = []
    cache: dict[str, dict[str, str | None]] = {}
    for account in sorted(rows, key=lambda r: r.source_id):
        cid = account.customer_id
        if cid not in customers:
            continue
        if cid not in cache:
            cache[cid] = _desired(cid, handovers.get(cid), metrics.get(cid, {}), config)
        desired = cache[cid]
        sid = account.source_id
        changes: dict[str, tuple[str | None, str | None]]
        if sid not in written:
            # never written (a first writeback): every value there is to say
            changes = {key: (None, new) for key, new in desired.items() if new is not None}
        else:
            crm_now = account.hub_fields or {}
            changes = {}
            for key, new in desired.items():
                slot = (sid, key)
                if slot not in ledger:
                    if new is not None:  # never written and nothing to say: nothing to do
                        changes[key] = (None, new)
                    continue
                old = ledger[slot]
                # drift: the CRM holds something else than what we confirmed (a manual edit)
                if old != new or (key in crm_now and _norm(crm_now[key]) != _norm(old)):
                    changes[key] = (old, new)
        if changes:
            if "last_sync" in config.fields:
                changes["last_sync"] = (ledger.get((sid, "last_sync")), stamp)
            planned.append(PlannedWrite(source, sid, cid, changes))
    return planned


def contact_values(
    metrics: t.CustomerMetrics | None, config: WritebackConfig
) -> dict[str, str | None]:
    """The hub contact fields one contact of this customer should show.

    Everything is empty unless the customer is suppressed: a contact the hub never flagged is
    never written (no "false" on every contact of the portal), and a suppression that ends is
    cleared, which is what a marketer's list filter "is suppressed = Yes" expects.
    """
    return _contact_desired((metrics.values if metrics else {}) or {}, config)


def _contact_desired(values: dict[str, Any], config: WritebackConfig) -> dict[str, str | None]:
    """:func:`contact_values` from the customer's metric values."""
    flagged = bool(values.get("negotiation_flag"))
    out: dict[str, str | None] = {}
    for key in config.hubspot_contact_fields:
        spec, src = HUB_CONTACT_FIELDS[key]
        raw = values.get(src.split(":", 1)[1]) if flagged else None
        out[key] = render(raw, spec.kind) if flagged else None
    return out


def plan_contact_writeback(
    session: Any,
    config: WritebackConfig,
    *,
    since: dt.datetime | None = None,
    audit_after: int = 0,
) -> list[PlannedWrite]:
    """Diff the suppression fields of HubSpot contacts against the contact ledger.

    Candidates: without ``since`` (first run, changed configuration) the contacts of customers
    suppressed now and every contact the hub holds a value on (to clear it); with ``since``
    those of customers whose values or golden record changed since, contacts that changed
    (new, re-linked, deleted), and contacts whose write failed after audit row ``audit_after``.
    The CRM's own copy of these properties is not read (contacts are read without them), so a
    manual edit is corrected only when the hub's value changes next.
    """
    if not config.hubspot_contact_fields:
        return []
    contacts = t.table_of(t.Contact)
    metrics_tbl = t.table_of(t.CustomerMetrics)
    ledger_tbl = t.table_of(t.WritebackLedger)
    ids: set[str] = set()
    customers: set[str] = set()
    if since is None:
        for cid, values in session.execute(
            sa.select(metrics_tbl.c.customer_id, metrics_tbl.c["values"])
        ):
            if (values or {}).get("negotiation_flag"):
                customers.add(cid)
        ids.update(
            session.execute(
                sa.select(ledger_tbl.c.source_id)
                .where(ledger_tbl.c.source == HUBSPOT_CONTACT, ledger_tbl.c.value.is_not(None))
                .distinct()
            ).scalars()
        )
    else:
        cust = t.table_of(t.Customer)
        customers.update(
            session.execute(
                sa.select(metrics_tbl.c.customer_id).where(metrics_tbl.c.changed_at > since)
            ).scalars()
        )
        customers.update(
            session.execute(sa.select(cust.c.id).where(cust.c.updated_at > since)).scalars()
        )
        ids.update(
            session.execute(
                sa.select(contacts.c.source_id).where(
                    contacts.c.source == HUBSPOT, contacts.c.changed_at > since
                )
            ).scalars()
        )
        ids.update(_failed_after(session, HUBSPOT_CONTACT, audit_after))
    ordered = sorted(customers)
    for start in range(0, len(ordered), 5000):
        ids.update(
            session.execute(
                sa.select(contacts.c.source_id).where(
                    contacts.c.source == HUBSPOT,
                    contacts.c.customer_id.in_(ordered[start : start + 5000]),
                )
            ).scalars()
        )
    candidates = sorted(ids)
    rows: dict[str, str | None] = {}  # live contact -> its customer
    ledger: dict[tuple[str, str], str | None] = {}
    for start in range(0, len(candidates), 5000):
        part = candidates[start : start + 5000]
        rows.update(
            (sid, cid)
            for sid, cid in session.execute(
                sa.select(contacts.c.source_id, contacts.c.customer_id).where(
                    contacts.c.source == HUBSPOT,
                    contacts.c.deleted.is_(False),
                    contacts.c.source_id.in_(part),
                )
            )
        )
        ledger.update(
            ((sid, key), value)
            for sid, key, value in session.execute(
                sa.select(ledger_tbl.c.source_id, ledger_tbl.c.field_key, ledger_tbl.c.value).where(
                    ledger_tbl.c.source == HUBSPOT_CONTACT, ledger_tbl.c.source_id.in_(part)
                )
            )
        )
    wanted = sorted({cid for cid in rows.values() if cid})
    metrics: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 5000):
        metrics.update(
            (cid, values or {})
            for cid, values in session.execute(
                sa.select(metrics_tbl.c.customer_id, metrics_tbl.c["values"]).where(
                    metrics_tbl.c.customer_id.in_(wanted[start : start + 5000])
                )
            )
        )
    planned: list[PlannedWrite] = []
    for sid in sorted(rows):  # a deleted contact is never written (batch update cannot create)
        cid = rows[sid]
        desired = _contact_desired(metrics.get(cid or "", {}), config)
        changes: dict[str, tuple[str | None, str | None]] = {}
        for key, new in desired.items():
            confirmed = (sid, key) in ledger
            old = ledger.get((sid, key))
            if not confirmed and new is None:
                continue
            if old != new:
                changes[key] = (old, new)
        if changes:
            planned.append(PlannedWrite(HUBSPOT_CONTACT, sid, cid or "", changes))
    return planned


def _candidates(session: Any, source: str, since: dt.datetime, audit_after: int) -> list[str]:
    """The records of ``source`` whose hub field values can differ from the last plan's."""
    acc = t.table_of(t.SourceAccount)
    customers: set[str] = set()
    for model, column in (
        (t.HandoverState, "changed_at"),
        (t.CustomerMetrics, "changed_at"),
        (t.Customer, "updated_at"),
    ):
        tbl = t.table_of(model)
        key = tbl.c.id if model is t.Customer else tbl.c.customer_id
        customers.update(session.execute(sa.select(key).where(tbl.c[column] > since)).scalars())
    ids: set[str] = set()
    ordered = sorted(customers)
    for start in range(0, len(ordered), 5000):
        # both CRMs' accounts, then this one's: given ``source = ?`` as well, SQLite walked
        # every account of the CRM (the primary key's first column) for each batch instead of
        # looking the customers up in ``ix_source_account_customer_id`` (0.08 against 0.03 s
        # a batch on ``large``)
        ids.update(
            sid
            for crm, sid in session.execute(
                sa.select(acc.c.source, acc.c.source_id).where(
                    acc.c.customer_id.in_(ordered[start : start + 5000])
                )
            )
            if crm == source
        )
    ids.update(
        session.execute(
            sa.select(acc.c.source_id).where(
                acc.c.source == source,
                sa.or_(acc.c.changed_at > since, acc.c.hub_fields_at > since),
            )
        ).scalars()
    )
    ids.update(_failed_after(session, source, audit_after))
    return sorted(ids)


def _failed_after(session: Any, source: str, audit_after: int) -> set[str]:
    """Records of ``source`` whose write failed after audit row ``audit_after``: sent again."""
    audit = t.table_of(t.WriteAudit)
    return set(
        session.execute(
            sa.select(audit.c.source_id).where(
                audit.c.source == source,
                audit.c.outcome == "failed",
                audit.c.id > audit_after,
            )
        ).scalars()
    )


def _norm(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    try:
        number = float(text)
        return str(int(number)) if number.is_integer() else f"{number:.2f}"
    except ValueError:
        return text.strip()


def write_intents(
    store: Any, run_id: str, batch_id: str, plans: Sequence[PlannedWrite], now: dt.datetime
) -> None:
    """Commit one ``pending`` audit row per record *before* its batch is sent.

    Why ahead: if the process dies after the CRM took the batch, the intents are what the next
    run settles from the CRM's current values (:func:`settle_pending`), so no write is ever
    without its audit row and none is sent twice.
    """
    rows = [
        {
            "source": plan.source,
            "source_id": plan.source_id,
            "customer_id": plan.customer_id,
            "changes": {k: [old, new] for k, (old, new) in plan.changes.items()},
        }
        for plan in plans
    ]
    shared = {"run_id": run_id, "batch_id": batch_id, "outcome": "pending", "at": now}
    table = t.table_of(t.WriteAudit)
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            execute_many(conn, table.insert(), rows[start : start + 1000], shared=shared)


#: ledger source -> (the store table of its records, their ``source`` there); others: accounts
_RECORDS: dict[str, tuple[type[Any], str]] = {HUBSPOT_CONTACT: (t.Contact, HUBSPOT)}


def _apply_outcomes(
    store: Any,
    settled: Sequence[tuple[PlannedWrite, str, str | None]],
    now: dt.datetime,
    run_id: str,
    *,
    where: sa.ColumnElement[bool],
) -> dict[str, int]:
    """Settle pending rows (selected by ``where`` plus source id) and update ledger and baseline.

    ``settled``: (plan, outcome, reason). ``ok`` confirms the values in the ledger and refreshes
    the record's known hub values (the drift baseline): the extracted snapshot predates the
    write, and HubSpot's search lag can keep it so for a while; left as it was, a corrected manual
    edit would look drifted and be re-sent every run. ``skipped`` (the CRM no longer has the
    record) tombstones it, so later runs neither re-send to it nor count it for its customer.
    """
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    if not settled:
        return counts
    audit = t.table_of(t.WriteAudit)
    ledger_source = settled[0][0].source
    model, source = _RECORDS.get(ledger_source, (t.SourceAccount, ledger_source))
    accounts = t.table_of(model)
    has_baseline = "hub_fields" in accounts.c
    ledger_rows: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        ids = [plan.source_id for plan, _, _ in settled]
        baseline: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500) if has_baseline else ():
            for sid, hub in conn.execute(
                sa.select(accounts.c.source_id, accounts.c.hub_fields).where(
                    accounts.c.source == source,
                    accounts.c.source_id.in_(ids[start : start + 500]),
                )
            ):
                baseline[sid] = dict(hub or {})
        audit_params = []
        hub_params = []
        gone = []
        for plan, outcome, reason in settled:
            counts[outcome] = counts.get(outcome, 0) + 1
            audit_params.append({"b_sid": plan.source_id, "outcome": outcome, "reason": reason})
            if outcome == "skipped":
                gone.append(plan.source_id)
            elif outcome == "ok":
                if plan.source_id in baseline:
                    hub_params.append(
                        {
                            "b_sid": plan.source_id,
                            "hub": {
                                **baseline[plan.source_id],
                                **{k: new for k, (_, new) in plan.changes.items()},
                            },
                        }
                    )
                ledger_rows.extend(
                    {"source": plan.source, "source_id": plan.source_id, "field_key": k, "value": v}
                    for k, (_, v) in plan.changes.items()
                )
        # The pending rows' primary keys first, then one update per key: an update per source
        # id under ``where`` let SQLite walk the batch index (a Bulk job's batch holds every
        # record: 75,000 rows scanned per update, quadratic, an hour on ``large``).
        pending: dict[str, list[int]] = defaultdict(list)
        for row_id, sid in conn.execute(sa.select(audit.c.id, audit.c.source_id).where(where)):
            pending[sid].append(row_id)
        by_id = [
            {"b_id": row_id, **{k: v for k, v in p.items() if k != "b_sid"}}
            for p in audit_params
            for row_id in pending.get(str(p["b_sid"]), ())
        ]
        execute_many(
            conn,
            audit.update()
            .where(audit.c.id == sa.bindparam("b_id"))
            .values(
                outcome=sa.bindparam("outcome"),
                reason=sa.bindparam("reason"),
                settled_at=sa.bindparam("settled"),
            ),
            by_id,
            shared={"settled": now},
        )
        if hub_params:
            conn.execute(
                accounts.update()
                .where(accounts.c.source == source, accounts.c.source_id == sa.bindparam("b_sid"))
                .values(hub_fields=sa.bindparam("hub")),
                hub_params,
            )
        for start in range(0, len(gone), 500):
            conn.execute(
                accounts.update()
                .where(
                    accounts.c.source == source,
                    accounts.c.source_id.in_(gone[start : start + 500]),
                    accounts.c.deleted.is_(False),
                )
                .values(deleted=True, modified_at=now, changed_at=utcnow())
            )
        if ledger_rows:
            table = t.table_of(t.WritebackLedger)
            insert = (
                postgresql.insert(table)
                if conn.dialect.name == "postgresql"
                else sqlite.insert(table)
            )
            stmt = insert.on_conflict_do_update(
                index_elements=["source", "source_id", "field_key"],
                set_={
                    "value": insert.excluded.value,
                    "confirmed_at": insert.excluded.confirmed_at,
                    "run_id": insert.excluded.run_id,
                },
            )
            for start in range(0, len(ledger_rows), 1000):
                execute_many(
                    conn,
                    stmt,
                    ledger_rows[start : start + 1000],
                    shared={"confirmed_at": now, "run_id": run_id},
                )
    return counts


def record_results(
    store: Any,
    run_id: str,
    batch_id: str,
    plans: Sequence[PlannedWrite],
    results: Iterable[WriteResult],
    now: dt.datetime,
) -> dict[str, int]:
    """Settle one sent batch's intents with the CRM's per-record outcomes (one transaction)."""
    by_id = {r.source_id: r for r in results}
    settled: list[tuple[PlannedWrite, str, str | None]] = []
    for plan in plans:
        result = by_id.get(plan.source_id)
        outcome = result.outcome if result else "failed"
        reason = result.reason if result else "no result returned by the connector"
        settled.append((plan, outcome, reason or None))
    audit = t.table_of(t.WriteAudit)
    return _apply_outcomes(
        store,
        settled,
        now,
        run_id,
        where=sa.and_(audit.c.batch_id == batch_id, audit.c.outcome == "pending"),
    )


#: Hub fields the settlement does not compare: ``last_sync`` is bookkeeping, and CRMs render
#: date-times in several forms; the business fields decide whether a write landed.
_NOT_COMPARED = {"last_sync"}


def settle_pending(store: Any, connector: Any, crm: str, now: dt.datetime) -> dict[str, int]:
    """Settle the intents a killed run left ``pending``, from what the CRM holds now.

    A record whose hub fields hold the intended values got the write: ``ok`` (ledger confirmed,
    never sent again). One that does not hold them did not: ``failed``, and the plan that follows
    sends it again. One the CRM no longer has: ``skipped``. Costs one read per 100-200 records,
    and only after a crash.
    """
    audit = t.table_of(t.WriteAudit)
    with store.engine.connect() as conn:
        pending = list(
            conn.execute(
                sa.select(
                    audit.c.id,
                    audit.c.run_id,
                    audit.c.source_id,
                    audit.c.customer_id,
                    audit.c.changes,
                )
                .where(audit.c.source == crm, audit.c.outcome == "pending")
                .order_by(audit.c.id)
            )
        )
    if not pending:
        return {}
    current = connector.read_hub_fields(sorted({row.source_id for row in pending}))
    by_run: dict[str, list[tuple[PlannedWrite, str, str | None]]] = {}
    for row in pending:
        changes = {k: (v[0], v[1]) for k, v in (row.changes or {}).items()}
        plan = PlannedWrite(crm, row.source_id, row.customer_id or "", changes)
        held = current.get(row.source_id)
        if held is None:
            outcome, reason = "skipped", "settled after an interrupted run: the record is gone"
        elif all(
            _norm(held.get(k)) == _norm(new)
            for k, (_, new) in changes.items()
            if k not in _NOT_COMPARED
        ):
            outcome, reason = "ok", "settled after an interrupted run: the CRM holds the values"
        else:
            outcome, reason = (
                "failed",
                "settled after an interrupted run: the write did not land; sent again",
            )
        by_run.setdefault(row.run_id, []).append((plan, outcome, reason))
    counts: dict[str, int] = {}
    # at most one pending intent per record: every writeback settles before it sends
    where = sa.and_(audit.c.source == crm, audit.c.outcome == "pending")
    for run_id, settled in by_run.items():
        for start in range(0, len(settled), 500):
            part = _apply_outcomes(store, settled[start : start + 500], now, run_id, where=where)
            for k, v in part.items():
                counts[k] = counts.get(k, 0) + v
    return {k: v for k, v in counts.items() if v}


@dataclass
class WritebackReport:
    """What one writeback run to one CRM did (or, in a dry run, would do)."""

    crm: str
    dry_run: bool = False
    records_changed: int = 0
    fields_changed: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    write_calls: int = 0
    #: intents of an interrupted earlier run settled at the start of this one, by outcome
    settled: dict[str, int] = field(default_factory=dict)
    provisioning_notes: list[str] = field(default_factory=list)
    plans: list[PlannedWrite] = field(default_factory=list)
    #: only records that could have changed since the last writeback were compared
    incremental: bool = False
    #: HubSpot only: the writeback of the contacts' marketing suppression (None: not run)
    contacts: WritebackReport | None = None

    def preview_markdown(self, limit: int = 20) -> str:
        """The first changes as a table: record, field, old → new."""
        if not self.plans:
            return "No changes."
        lines = ["| record | field | old | new |", "| --- | --- | --- | --- |"]
        shown = 0
        for plan in self.plans:
            for key, (old, new) in plan.changes.items():
                if shown >= limit:
                    lines.append(f"| … | {self.fields_changed - shown} more | | |")
                    return "\n".join(lines)
                lines.append(f"| {plan.source_id} | {key} | {old or ''} | {new or ''} |")
                shown += 1
        return "\n".join(lines)


class WritebackAborted(RuntimeError):
    """A safety limit stopped the writeback before anything was sent."""


_PROVISIONED = "hub_fields"


#: A plan of up to this many records is kept from the counting pass and sent as it is; a
#: larger one is planned again, page by page, while it is sent (planning is cheap next to
#: holding every plan of a first writeback).
KEEP_PLANNED = 10_000
#: Plans kept for the preview (the first changes of the run).
PREVIEW_PLANS = 20

Planner = Callable[[Any, "dt.datetime | None", int], Iterable[list[PlannedWrite]]]


def run_writeback(
    store: Any,
    connector: Any,
    crm: str,
    config: WritebackConfig,
    *,
    run_id: str,
    now: dt.datetime,
    dry_run: bool = False,
) -> WritebackReport:
    """Provision fields if needed, diff, send the changes, record every outcome.

    ``connector`` is the CRM connector (it does the HTTP); this function decides what to send
    and keeps the ledger and the audit trail. On HubSpot the contacts follow the companies
    (``report.contacts``): the marketing suppression of each contact of a customer in a
    late-stage negotiation, through the same machinery with its own ledger source.
    """

    def plan(
        session: Any, since: dt.datetime | None, audit_after: int
    ) -> Iterator[list[PlannedWrite]]:
        return plan_writeback_pages(session, crm, config, now, since=since, audit_after=audit_after)

    report = _run_target(
        store,
        connector,
        crm,
        config.specs(),
        plan,
        config,
        run_id=run_id,
        now=now,
        dry_run=dry_run,
    )
    target = getattr(connector, "contacts", None)
    if crm == HUBSPOT and target is not None and config.hubspot_contact_fields:

        def plan_contacts(
            session: Any, since: dt.datetime | None, audit_after: int
        ) -> Iterator[list[PlannedWrite]]:
            plans = plan_contact_writeback(session, config, since=since, audit_after=audit_after)
            for start in range(0, len(plans), PAGE_SIZE):
                yield plans[start : start + PAGE_SIZE]

        report.contacts = _run_target(
            store,
            target,
            HUBSPOT_CONTACT,
            config.contact_specs(),
            plan_contacts,
            config,
            run_id=run_id,
            now=now,
            dry_run=dry_run,
        )
    return report


def _run_target(
    store: Any,
    target: Any,
    source: str,
    specs: Sequence[HubFieldSpec],
    plan: Planner,
    config: WritebackConfig,
    *,
    run_id: str,
    now: dt.datetime,
    dry_run: bool,
) -> WritebackReport:
    """One writeback target (the CRM's accounts/companies, or HubSpot's contacts), end to end.

    ``source`` keys the ledger, the audit rows, the provisioning mark and the watermark;
    ``plan(session, since, audit_after)`` yields the records to change, page by page.

    Memory stays flat however many records change: pages are planned and sent one at a time.
    When the total must be known before anything is sent (a safety limit is set, or the target
    chooses between per-batch calls and one Bulk job), a first pass counts the changes and
    keeps the preview, and the second plans each page again and sends it; a plan of at most
    :data:`KEEP_PLANNED` records (every incremental run of ``large``) is kept from the first
    pass instead. Otherwise (HubSpot without a limit) each page is counted while it is sent.
    """
    report = WritebackReport(crm=source, dry_run=dry_run)
    keys = sorted(s.key for s in specs)
    provisioned = set((store.get_cursor(source, _PROVISIONED) or {}).get("keys", []))
    if not set(keys) <= provisioned:
        results = target.ensure_fields(list(specs), dry_run=dry_run)
        for r in results:
            if r.action == "not_writable":
                report.provisioning_notes.append(r.detail)
        if not dry_run and not report.provisioning_notes:
            store.save_cursor(source, _PROVISIONED, {"keys": keys})
    phase = changes_.writeback_phase(source)
    fp = changes_.fingerprint(changes_.hub_version(), repr(config))
    mark = changes_.load(store, phase)
    since = mark.at if mark is not None and mark.fingerprint == fp else None
    audit_after = int(mark.extra.get("audit_id", 0)) if mark is not None else 0
    # the watermark: a hub time, and the last audit row before this run's settlement and writes
    started, audit_now = utcnow(), _last_audit_id(store)
    report.settled = settle_pending(store, target, source, now)
    report.incremental = since is not None
    # prefix: contact batches are named apart, their ids may equal a company's of the same run
    prefix = f"{run_id}:{source}" if source == HUBSPOT_CONTACT else run_id
    # Nothing needs the total before the first call when no safety limit is set and the
    # target has no Bulk job to choose: then each page is planned once and counted while it is
    # sent (a first HubSpot writeback of ``large`` planned 70,000 companies and 55,000 contacts
    # twice before).
    one_pass = (
        not dry_run and not config.max_changed_records and not hasattr(target, "write_stream")
    )
    kept: list[list[PlannedWrite]] | None = None if one_pass else []
    if not one_pass:
        with store.session() as session:
            for page in plan(session, since, audit_after):
                _count(report, page)
                if kept is not None:
                    kept.append(page)
                    if report.records_changed > KEEP_PLANNED:
                        kept = None  # planned again while sending
        if dry_run:
            return report
        if not report.records_changed:
            changes_.save(store, phase, started, fp, audit_id=audit_now)
            return report
        if config.max_changed_records and report.records_changed > config.max_changed_records:
            raise WritebackAborted(
                f"{source}: {report.records_changed} records would change, above "
                f"writeback.max_changed_records={config.max_changed_records}; check the rule "
                "change, then raise the limit or run with a dry run to review"
            )

    def pages() -> Iterator[list[PlannedWrite]]:
        if kept is not None:
            yield from kept
            return
        with store.session() as session:
            for page in plan(session, since, audit_after):
                if one_pass:
                    _count(report, page)
                yield page

    before = target.usage().calls
    size = _intent_batch_size(target, PAGE_SIZE if one_pass else report.records_changed)
    if size > PAGE_SIZE and hasattr(target, "write_stream"):
        counts = _send_streamed(store, target, run_id, f"{prefix}:1", pages(), now)
        _add_counts(report, counts)
    else:
        workers = max(1, int(getattr(target, "write_concurrency", 1)))
        _send_batches(store, target, run_id, prefix, _units(pages(), size), now, report, workers)
    report.write_calls = target.usage().calls - before
    # failed writes stay candidates of the next plan (their audit rows are after this mark)
    changes_.save(store, phase, started, fp, audit_id=audit_now)
    return report


def _count(report: WritebackReport, page: list[PlannedWrite]) -> None:
    """A planned page in the report: records and fields to change, the preview's first plans."""
    report.records_changed += len(page)
    report.fields_changed += sum(len(p.changes) for p in page)
    report.plans.extend(page[: max(0, PREVIEW_PLANS - len(report.plans))])


def _add_counts(report: WritebackReport, counts: dict[str, int]) -> None:
    report.ok += counts.get("ok", 0)
    report.failed += counts.get("failed", 0)
    report.skipped += counts.get("skipped", 0)


def _units(pages: Iterable[list[PlannedWrite]], size: int) -> Iterator[list[PlannedWrite]]:
    """The pages' plans regrouped into units of ``size`` (the connector's unit of work)."""
    unit: list[PlannedWrite] = []
    for page in pages:
        for plan in page:
            unit.append(plan)
            if len(unit) == size:
                yield unit
                unit = []
    if unit:
        yield unit


def _send_batches(
    store: Any,
    target: Any,
    run_id: str,
    prefix: str,
    units: Iterable[list[PlannedWrite]],
    now: dt.datetime,
    report: WritebackReport,
    workers: int,
) -> None:
    """Send unit after unit with up to ``workers`` calls in flight, recording each in order.

    Why in flight: one call at a time left the portal's rate budget idle while the hub wrote
    its ledger (a first writeback of ``large`` took 172 s for 66 s of calls at the burst
    limit), and at a real CRM's latency one call at a time caps a writeback at a few calls per
    second. The database work stays on this thread: a unit's intents are committed before it is
    handed to a sender (so every record sent has its audit row first, as before), and the
    answers are recorded in the order the units were sent. When a call fails, the units already
    answered are still recorded before the error ends the run; the others stay ``pending`` and
    the next run settles them from what the CRM holds.
    """
    inflight: deque[tuple[str, list[PlannedWrite], Future[list[WriteResult]]]] = deque()

    def record_oldest() -> None:
        batch_id, chunk, sent = inflight.popleft()
        results = sent.result()
        crash_point("writeback.after_send")
        _add_counts(report, record_results(store, run_id, batch_id, chunk, results, now))
        crash_point("writeback.after_record")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crmhub-write") as pool:
        try:
            for number, chunk in enumerate(units, 1):
                batch_id = f"{prefix}:{number}"
                write_intents(store, run_id, batch_id, chunk, now)
                crash_point("writeback.before_send")
                updates = [p.update() for p in chunk]
                inflight.append((batch_id, chunk, pool.submit(target.write, updates)))
                # wait only when every sender is busy; record what has come back meanwhile
                while inflight and (len(inflight) >= workers or inflight[0][2].done()):
                    record_oldest()
            while inflight:
                record_oldest()
        except BaseException:
            # keep what the CRM confirmed: record every answered unit before the error ends it
            for batch_id, chunk, sent in inflight:
                if sent.exception() is not None:
                    continue
                try:
                    results = record_results(store, run_id, batch_id, chunk, sent.result(), now)
                except Exception:  # the database failed too: the next run settles the rest
                    break
                _add_counts(report, results)
            raise


def _send_streamed(
    store: Any,
    target: Any,
    run_id: str,
    batch_id: str,
    pages: Iterable[list[PlannedWrite]],
    now: dt.datetime,
) -> dict[str, int]:
    """Send every page as one unit of work (a Salesforce Bulk job) without holding the plans.

    Each page's intents are committed before its updates reach the connector, which consumes
    them lazily and sends nothing before it has seen the last (so every record sent has its
    audit row first, as in the per-batch path). The outcomes are then settled page by page
    from the intents themselves, which hold each record's changes.
    """

    def updates() -> Iterator[FieldUpdate]:
        for page in pages:
            write_intents(store, run_id, batch_id, page, now)
            for plan in page:
                yield plan.update()
        crash_point("writeback.before_send")

    results = {r.source_id: r for r in target.write_stream(updates())}
    crash_point("writeback.after_send")
    audit = t.table_of(t.WriteAudit)
    counts: dict[str, int] = {}
    after = 0
    while True:
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    audit.c.id,
                    audit.c.source,
                    audit.c.source_id,
                    audit.c.customer_id,
                    audit.c.changes,
                )
                .where(
                    audit.c.batch_id == batch_id,
                    audit.c.outcome == "pending",
                    audit.c.id > after,
                )
                .order_by(audit.c.id)
                .limit(PAGE_SIZE)
            ).all()
        if not rows:
            break
        after = rows[-1].id
        settled: list[tuple[PlannedWrite, str, str | None]] = []
        for row in rows:
            changes = {k: (v[0], v[1]) for k, v in (row.changes or {}).items()}
            plan = PlannedWrite(row.source, row.source_id, row.customer_id or "", changes)
            result = results.get(row.source_id)
            outcome = result.outcome if result else "failed"
            reason = result.reason if result else "no result returned by the connector"
            settled.append((plan, outcome, reason or None))
        part = _apply_outcomes(
            store,
            settled,
            now,
            run_id,
            where=sa.and_(
                audit.c.batch_id == batch_id,
                audit.c.outcome == "pending",
                audit.c.id.between(rows[0].id, after),
            ),
        )
        for k, v in part.items():
            counts[k] = counts.get(k, 0) + v
    crash_point("writeback.after_record")
    return counts


def _last_audit_id(store: Any) -> int:
    audit = t.table_of(t.WriteAudit)
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(audit.c.id))).scalar() or 0)


def _intent_batch_size(connector: Any, pending: int) -> int:
    """How many records one intent batch holds: what the connector sends in one unit of work.

    HubSpot: one batch call (100). Salesforce: one Collections call (200), or the whole set when
    it goes to a single Bulk API job. Connectors without the hint take everything at once.
    """
    hint = getattr(connector, "intent_batch_size", None)
    return max(1, int(hint(pending))) if hint is not None else max(1, pending)
