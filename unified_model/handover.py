"""Handover status: is a customer ready to move from new sales to account management, and why?

This is the question the hub exists for (see ``/work/shared/DOMAIN.md``). A status alone is not
enough: the account manager must be able to *act* on it, so every decision carries its reasons,
one ``Criterion`` per rule (passed or blocking, with a short plain-language detail, the evidence
behind it such as ticket ids and subjects, and a next step), and a one-line ``summary`` such as
``"blocked: 2 open critical tickets: 500A 'Login fails', 77; module Billing not in use. Next:
close tickets 500A, 77; get module Billing into use"`` that the writeback puts on the record.

States and how a customer moves between them:

- ``new_sales``: no closed-won deal (never signed, or the only won deal was reopened or lost).
- ``onboarding``: signed, but the configured rule (or the relay zone) is not met yet.
- ``ready_for_handover``: the rule is met inside the zone, but the owner is not an account
  manager yet.
- ``overdue``: past the zone's latest day (``handover.zone.latest_days``) and the owner is still
  not an account manager, mature or not: the baton was not passed in the zone.
- ``account_management``: the owner is an account manager (after readiness, or earlier/later:
  an AM owner means handed over); once there, a customer stays handed over while it is healthy.
- ``at_risk``: a handed-over customer where an at-risk trigger fires (a new critical ticket since
  the handover, usage below a floor or dropped from its peak since the handover, or no won deal
  any more). It returns to ``account_management`` when no trigger fires.

The relay zone (``handover.zone``) adds an earliest day, a latest day and a minimum stable period
to whichever rule kind applies; segments (``handover.segments``) pick other rules for customers
by size, industry, owner team or product line.

Dates are the business's days (``kpis.business_hours.timezone``) and are never invented. A status
change is dated by the event that caused it where a record dates it (the ticket that put the
customer at risk, the contract that started onboarding, the day a calendar rule or zone boundary
was reached), otherwise by when the hub observed the change (``observed_at``). The handover itself
is dated by the CRMs' owner history where it exists (``CustomerFacts.owner_assigned_at``: when the
account manager became owner, per Salesforce ``AccountHistory`` or HubSpot's versions of
``hubspot_owner_id``; basis ``crm_history``), also for a customer the hub first sees already
handed over. What happened before the hub first saw a customer and no record dates (an AM owner
without owner history, maturity already reached) stays unknown: the date is empty and the summary
says "first seen on".
``ready_since`` and ``handed_over_on`` survive transitions as before; the usage peak since the
handover is kept in the ``usage_drop`` criterion's ``value``.

Everything here is a pure function of its inputs (no database, no HTTP, no clock: ``now`` is a
parameter), deterministic and independent of the order of the input lists (reasons are built
from sorted rows, so the same inputs give byte-identical text). Tombstones are ignored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from unified_model.rules import CalendarRule, HubRules, Segment
from unified_model.tables import (
    Activity,
    Contact,
    Customer,
    Deal,
    Email,
    HandoverState,
    HandoverTransition,
    Owner,
    Ticket,
)

Status = Literal[
    "new_sales", "onboarding", "ready_for_handover", "account_management", "at_risk", "overdue"
]
STATUSES: tuple[Status, ...] = (
    "new_sales",
    "onboarding",
    "ready_for_handover",
    "account_management",
    "at_risk",
    "overdue",
)
#: what a seller reads next to the stable API value
STATUS_LABELS: dict[str, str] = {
    "new_sales": "New sales",
    "onboarding": "Onboarding",
    "ready_for_handover": "Ready for handover",
    "account_management": "Account management",
    "at_risk": "At risk",
    "overdue": "Handover overdue",
}
#: statuses of a customer that has been handed over to account management
HANDED_OVER: frozenset[str] = frozenset({"account_management", "at_risk"})


# --------------------------------------------------------------------------------------------
# Inputs and small shared helpers (also used by kpis and signals)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerFacts:
    """Everything the hub knows about one customer, from both CRMs, as of an evaluation.

    ``owner`` is the owner record of the customer's survived owner (it tells seller from account
    manager by department); ``previous`` is the last stored handover state, needed because the
    status has memory (handed over stays handed over, dates are kept).
    """

    customer: Customer
    deals: list[Deal] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    owner: Owner | None = None
    previous: HandoverState | None = None
    #: owners of the customer's records by (source, source_id): names the seller of a deal
    owners: dict[tuple[str, str], Owner] = field(default_factory=dict)
    #: when the customer's current owner was assigned, per a CRM's owner history (None: no
    #: history dates it); dates a handover the hub did not see happen
    owner_assigned_at: dt.datetime | None = None


class _Row(Protocol):
    deleted: bool
    source: str
    source_id: str


R = TypeVar("R", bound=_Row)


class LiveRows(list[R]):
    """Rows already without tombstones and in canonical order: :func:`live` only copies them.

    Why: the hub's evaluation builds them once per customer and table (``gather_facts``); the
    rules call ``live`` on the same lists again and again.
    """

    @classmethod
    def of(cls, rows: Iterable[R]) -> LiveRows[R]:
        return cls(sorted((r for r in rows if not r.deleted), key=_CANONICAL))


def live(rows: Iterable[R]) -> list[R]:
    """The rows that are not tombstones, in a canonical order (source, source_id).

    Sorting here is what makes every result independent of the order rows were read in.
    """
    if isinstance(rows, LiveRows):
        return list(rows)
    return sorted((r for r in rows if not r.deleted), key=_CANONICAL)


_CANONICAL = operator.attrgetter("source", "source_id")


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime; naive values are taken as UTC (the store's convention)."""
    if value is None:
        return None
    tz = value.tzinfo
    if tz is dt.UTC:  # what the store returns: already UTC (the common case, millions of calls)
        return value
    if tz is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def require_aware(now: dt.datetime) -> dt.datetime:
    """``now`` must be aware: a naive clock is a caller bug that would shift every window."""
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime (UTC)")
    return now.astimezone(dt.UTC)


def stage_time(deal: Deal, stage: str | None) -> dt.datetime | None:
    """When ``deal`` first entered ``stage``, from ``stage_entered_at`` (ISO text or datetime)."""
    if stage is None:
        return None
    raw: Any = deal.stage_entered_at.get(stage)
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):
        return as_utc(raw)
    try:
        return as_utc(dt.datetime.fromisoformat(str(raw)))
    except ValueError:
        return None


def contract_date(deal: Deal, rules: HubRules) -> dt.date | None:
    """The day a won deal was signed: its close date, else the local day it entered its (won)
    stage, else the local day of its last modification."""
    if deal.close_date is not None:
        return deal.close_date
    when = stage_time(deal, deal.stage) or as_utc(deal.modified_at)
    return None if when is None else when.astimezone(rules.kpis.business_hours.zone).date()


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One rule checked for a customer: ``detail`` is short enough to join into a summary.

    ``evidence`` names the records behind it (ticket ids with subjects, modules), sorted so that
    the same inputs always give the same text; ``next_step`` says what a person can do about a
    blocking criterion ("close ticket 500A", "assign an account manager").
    """

    key: str
    passed: bool
    detail: str
    #: a number the next evaluation needs (the usage peak since handover), else None
    value: float | None = None
    evidence: tuple[str, ...] = ()
    next_step: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape stored in ``HandoverState.reasons``."""
        out: dict[str, Any] = {"criterion": self.key, "passed": self.passed, "detail": self.detail}
        if self.value is not None:
            out["value"] = self.value
        if self.evidence:
            out["evidence"] = list(self.evidence)
        if self.next_step:
            out["next_step"] = self.next_step
        return out


@dataclass(frozen=True)
class HandoverDecision:
    customer_id: str
    status: Status
    #: the rule that decided (``calendar_after_contract`` when maturity fell back for lack of data)
    rule_kind: str
    reasons: list[Criterion]
    ready_since: dt.datetime | None
    handed_over_on: dt.datetime | None
    summary: str
    #: when the current status began; None when it began before the hub first saw the customer
    status_since: dt.datetime | None = None
    mature_since: dt.datetime | None = None
    first_seen_at: dt.datetime | None = None
    #: how each date is known ("event": from a CRM record's time or a hub observation;
    #: "crm_history": the CRM's owner history; "first_seen": unknown, before
    #: ``first_seen_at``) and the internal trigger baseline
    date_basis: dict[str, str] = field(default_factory=dict)
    #: the segment whose rules applied ("" for the default rules)
    segment: str = ""
    #: on the run a customer is handed over: the readiness criteria it met (for the transition)
    qualified_by: tuple[Criterion, ...] = ()

    @property
    def blockers(self) -> list[Criterion]:
        return [c for c in self.reasons if not c.passed]

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def next_steps(self) -> str:
        """The next steps of the blocking criteria, in reason order, each once."""
        steps: list[str] = []
        for c in self.blockers:
            if c.next_step and c.next_step not in steps:
                steps.append(c.next_step)
        return "; ".join(steps)

    def reasons_json(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.reasons]

    def as_state(self, evaluated_at: dt.datetime) -> HandoverState:
        """The row to store, which becomes ``previous`` of the next evaluation."""
        return HandoverState(**self.state_row(evaluated_at))

    def state_row(self, evaluated_at: dt.datetime) -> dict[str, Any]:
        """``as_state(...).model_dump()`` without the model: a plain row for a bulk upsert.

        Why: building a table model per customer (SQLAlchemy instrumentation, then a dump)
        was a tenth of a full handover evaluation; the store writes dicts anyway.
        """
        return {
            "customer_id": self.customer_id,
            "status": self.status,
            "rule_kind": self.rule_kind,
            "summary": self.summary,
            "reasons": self.reasons_json(),
            "ready_since": self.ready_since,
            "handed_over_on": self.handed_over_on,
            "evaluated_at": evaluated_at,
            "status_since": self.status_since,
            "mature_since": self.mature_since,
            "first_seen_at": self.first_seen_at,
            "date_basis": dict(self.date_basis),
            "changed_at": None,
        }


def local_day(value: dt.datetime | None, rules: HubRules) -> dt.date | None:
    """The business's date of an instant: its day in the business time zone."""
    return None if value is None else value.astimezone(rules.kpis.business_hours.zone).date()


def local_midnight(day: dt.date, rules: HubRules) -> dt.datetime:
    """The instant a business day starts (midnight in the business time zone), in UTC."""
    zone = rules.kpis.business_hours.zone
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def segment_for(facts: CustomerFacts, rules: HubRules) -> Segment | None:
    """The first configured segment the customer falls in (size, industry, team, product)."""
    c = facts.customer
    team = (facts.owner.department or "") if facts.owner and not facts.owner.deleted else ""
    modules = _norm_set(c.contracted_modules)
    for seg in rules.handover.segments:
        w = seg.when
        if w.employees_min is not None and (c.employees is None or c.employees < w.employees_min):
            continue
        if w.employees_max is not None and (c.employees is None or c.employees > w.employees_max):
            continue
        if w.industries and (c.industry or "").strip().casefold() not in _fold(w.industries):
            continue
        if w.owner_teams and team.strip().casefold() not in _fold(w.owner_teams):
            continue
        if w.product_lines and not (modules & _fold(w.product_lines)):
            continue
        return seg
    return None


def _fold(values: Iterable[str]) -> set[str]:
    return {v.strip().casefold() for v in values}


def effective_rules(facts: CustomerFacts, rules: HubRules) -> tuple[HubRules, str]:
    """The rules that apply to this customer: the segment's overrides on the defaults."""
    seg = segment_for(facts, rules)
    if seg is None:
        return rules, ""
    h = rules.handover
    rule = seg.rule or h.rule
    changes: dict[str, Any] = {"rule": rule, "segments": ()}
    if seg.days is not None:
        if rule == "calendar_after_go_live":
            changes["calendar_after_go_live"] = CalendarRule(days=seg.days)
        else:
            changes["calendar_after_contract"] = CalendarRule(days=seg.days)
    if seg.zone is not None:
        changes["zone"] = seg.zone
    return dataclasses.replace(rules, handover=dataclasses.replace(h, **changes)), seg.name


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    """What one evaluation needs everywhere: the facts, the applicable rules and the clocks."""

    facts: CustomerFacts
    rules: HubRules
    #: the instant time-based rules are judged at (stable within a business day)
    now: dt.datetime
    #: when this evaluation really happens: the date of a change the hub only observes
    observed: dt.datetime
    today: dt.date
    segment: str


def evaluate_handover(
    facts: CustomerFacts,
    rules: HubRules,
    now: dt.datetime,
    observed_at: dt.datetime | None = None,
) -> HandoverDecision:
    """Decide the handover status of one customer, with its reasons and kept dates.

    ``now`` is the instant time-based rules are judged at; ``observed_at`` (default ``now``) is
    when the hub actually looks, the date of a change no CRM record dates (an owner change).
    """
    now = require_aware(now)
    observed = require_aware(observed_at) if observed_at is not None else now
    applied, segment = effective_rules(facts, rules)
    ctx = _Ctx(facts, applied, now, observed, local_day(now, applied) or now.date(), segment)
    decision, event_at = _decide(ctx)
    return _dated(ctx, decision, event_at)


def _decide(ctx: _Ctx) -> tuple[HandoverDecision, dt.datetime | None]:
    """The status and reasons, and the time of the event that caused the status (if known)."""
    facts, rules = ctx.facts, ctx.rules
    prev = facts.previous
    prev_status = prev.status if prev is not None else None
    deals = live(facts.deals)
    won = sorted(
        (d for d in deals if d.is_won),
        key=lambda d: (contract_date(d, rules) or dt.date.max, d.source, d.source_id),
    )
    if not won:
        return _without_won_deal(ctx, prev_status, deals), None

    signed = contract_date(won[0], rules)
    signed_at = signed_moment(won[0], rules)
    won_c = Criterion(
        "won_deal",
        True,
        f"{plural(len(won), 'closed-won deal')}, first signed {_day(signed)}",
    )
    if prev is not None and prev_status in HANDED_OVER:
        return _evaluate_handed_over(ctx, prev, won_c)

    rule_kind, criteria, rule_met_at = _readiness(ctx, signed)
    reasons = [won_c]
    if ctx.segment:
        reasons.append(Criterion("segment", True, f"segment {ctx.segment} rules apply"))
    reasons.extend(criteria)
    fallback = any(c.key == "rule_fallback" for c in criteria)
    suffix = " (calendar rule: no contracted modules known)" if fallback else ""
    criterion_ok = all(c.passed for c in reasons)

    # the minimum stable period: the criterion must have held this long without a break
    mature_since: dt.datetime | None = None
    if criterion_ok:
        held = prev is not None and prev.mature_since is not None
        mature_since = as_utc(prev.mature_since) if held and prev else None
        if mature_since is None:
            mature_since = rule_met_at if rule_met_at is not None else ctx.observed
    zone_cs, zone_open_at, overdue_at = _zone(ctx, signed, mature_since)
    reasons.extend(zone_cs)
    ready = all(c.passed for c in reasons)

    owner_c = _owner_criterion(facts, rules)
    if not ready and owner_c.passed and prev_status != "ready_for_handover":
        # Not ready, yet the CRM already shows an account manager as owner: the customer has
        # been handed over (too early, late past the zone, or before the hub first saw it) and is
        # judged as such: at risk when a trigger fires. The handover day is only known when the
        # hub saw the owner change; before that it is unknown ("first seen on"), and the at-risk
        # triggers count from the first signed contract (the handover cannot precede it).
        history = _history_handover(ctx)
        if prev is None:
            assumed = HandoverState(
                customer_id=facts.customer.id,
                status="account_management",
                rule_kind=rules.handover.rule,
                reasons=[],
                handed_over_on=history,
                evaluated_at=ctx.observed,
                date_basis={"handed_over_on": "crm_history"}
                if history is not None
                else {
                    "handed_over_on": "first_seen",
                    "trigger_baseline": (signed_at or ctx.observed).isoformat(),
                },
            )
        else:
            assumed = HandoverState(
                customer_id=facts.customer.id,
                status="account_management",
                rule_kind=rules.handover.rule,
                reasons=[],
                handed_over_on=history or ctx.observed,
                evaluated_at=ctx.observed,
                ready_since=prev.ready_since,
                first_seen_at=prev.first_seen_at,
                date_basis={"handed_over_on": "crm_history"} if history is not None else {},
            )
        decision, event = _evaluate_handed_over(ctx, assumed, won_c)
        return dataclasses.replace(decision, mature_since=mature_since), event

    if overdue_at is not None and not owner_c.passed:
        reasons.append(owner_c)
        text = "; ".join(c.detail for c in reasons if not c.passed)
        summary = f"handover overdue: {text}{suffix}"
        d = HandoverDecision(facts.customer.id, "overdue", rule_kind, reasons, None, None, summary)
        d = dataclasses.replace(d, mature_since=mature_since)
        return _with_ready_since(ctx, d, ready, rule_met_at, zone_open_at), overdue_at

    if not ready:
        blocking = "; ".join(c.detail for c in reasons if not c.passed)
        d = HandoverDecision(
            facts.customer.id,
            "onboarding",
            rule_kind,
            reasons,
            None,
            None,
            f"blocked: {blocking}{suffix}",
            mature_since=mature_since,
        )
        if prev_status in (None, "new_sales"):
            return d, signed_at  # onboarding starts the moment the contract is signed
        return d, _latest_blocking_ticket(ctx, reasons)

    reasons.append(owner_c)
    if not owner_c.passed:
        d = HandoverDecision(
            facts.customer.id,
            "ready_for_handover",
            rule_kind,
            reasons,
            None,
            None,
            f"ready for handover: {owner_c.detail}{suffix}",
            mature_since=mature_since,
        )
        d = _with_ready_since(ctx, d, True, rule_met_at, zone_open_at)
        return d, d.ready_since
    # Handed over now (or already when first seen): judged from here on as every later run
    # judges a handed-over customer, so the stored reasons are the same on this run and the next.
    # Why it qualified stays in the transition's reasons (``qualified_by``).
    ready_d = _with_ready_since(
        ctx,
        HandoverDecision(facts.customer.id, "ready_for_handover", rule_kind, [], None, None, ""),
        True,
        rule_met_at,
        zone_open_at,
    )
    history = _history_handover(ctx)
    if history is not None:
        # the CRM's owner history dates the handover, seen by the hub or not
        basis = {**ready_d.date_basis, "handed_over_on": "crm_history"}
        handed_on: dt.datetime | None = history
    elif prev is None:
        # first seen with an account manager: the handover day is in no record
        basis = {
            **ready_d.date_basis,
            "handed_over_on": "first_seen",
            "trigger_baseline": (signed_at or ctx.observed).isoformat(),
        }
        handed_on = None
    else:
        basis, handed_on = dict(ready_d.date_basis), ctx.observed
    handed = HandoverState(
        customer_id=facts.customer.id,
        status="account_management",
        rule_kind=rule_kind,
        reasons=[],
        ready_since=ready_d.ready_since,
        handed_over_on=handed_on,
        evaluated_at=ctx.observed,
        date_basis=basis,
    )
    d, event = _evaluate_handed_over(ctx, handed, won_c)
    d = dataclasses.replace(d, mature_since=mature_since, qualified_by=tuple(reasons))
    if d.status == "account_management":
        event = handed_on
    return d, event


def _history_handover(ctx: _Ctx) -> dt.datetime | None:
    """When the account manager became owner, per the CRM's owner history (None: unknown).

    A time after the evaluation (a clock skew between CRM and hub) is not trusted."""
    at = as_utc(ctx.facts.owner_assigned_at)
    return at if at is not None and at <= ctx.observed else None


def _with_ready_since(
    ctx: _Ctx,
    d: HandoverDecision,
    ready: bool,
    rule_met_at: dt.datetime | None,
    zone_open_at: dt.datetime | None,
) -> HandoverDecision:
    """Keep ``ready_since`` while the customer stays ready; else date the moment it became so.

    Calendar rules and the zone's earliest day date themselves; a maturity criterion met on the
    hub's first look at a customer is dated "first seen" (unknown), never the day of the run.
    """
    if not ready:
        return d
    prev = ctx.facts.previous
    basis = dict(d.date_basis)
    if prev is not None and prev.status in ("ready_for_handover", "overdue") and prev.ready_since:
        since = as_utc(prev.ready_since)
        old = (prev.date_basis or {}).get("ready_since")
        if old:
            basis["ready_since"] = old
    elif prev is not None and prev.status in ("ready_for_handover", "overdue"):
        since = None  # ready before the hub first saw it: stays unknown
        basis["ready_since"] = "first_seen"
    else:
        since = _known_max(rule_met_at, zone_open_at, ctx.rules.handover.zone.earliest_days)
        if since is None and prev is not None:
            since = ctx.observed
        if since is None:
            basis["ready_since"] = "first_seen"
        else:
            basis["ready_since"] = "event"
    return dataclasses.replace(d, ready_since=since, date_basis=basis)


def _known_max(
    rule_met_at: dt.datetime | None, zone_open_at: dt.datetime | None, earliest: int | None
) -> dt.datetime | None:
    """When readiness began, if every part of it has a known date."""
    if rule_met_at is None:
        return None
    if earliest is not None and zone_open_at is not None:
        return max(rule_met_at, zone_open_at)
    return rule_met_at


def _dated(ctx: _Ctx, d: HandoverDecision, event_at: dt.datetime | None) -> HandoverDecision:
    """Attach ``status_since`` and ``first_seen_at``, and write the dates into the summary.

    A status that did not change keeps its date. A changed status is dated by the event that
    caused it (a ticket opened, a contract signed, a zone boundary passed) where a record dates
    it, else by when the hub observed the change. On the hub's first look, a status whose start
    no record dates is "first seen on" that day: the hub never invents a date.
    """
    prev = ctx.facts.previous
    first_seen = ctx.observed
    if prev is not None:
        first_seen = as_utc(prev.first_seen_at) or as_utc(prev.evaluated_at) or ctx.observed
    basis = dict(d.date_basis)
    from_history = (
        d.status == "account_management"
        and d.handed_over_on is not None
        and basis.get("handed_over_on") == "crm_history"
    )
    if prev is not None and prev.status == d.status:
        since = as_utc(prev.status_since)
        basis["status_since"] = (prev.date_basis or {}).get(
            "status_since", "event" if since else "first_seen"
        )
        if since is None and from_history:
            # "since before first seen", now dated by the CRM's owner history
            since, basis["status_since"] = d.handed_over_on, "crm_history"
    elif event_at is not None:
        dated_by_history = from_history and event_at == d.handed_over_on
        since, basis["status_since"] = event_at, "crm_history" if dated_by_history else "event"
    elif prev is None:
        since, basis["status_since"] = None, "first_seen"
    else:
        since, basis["status_since"] = ctx.observed, "event"
    d = dataclasses.replace(
        d, status_since=since, first_seen_at=first_seen, date_basis=basis, segment=ctx.segment
    )
    return dataclasses.replace(d, summary=_summary(ctx, d))


def _summary(ctx: _Ctx, d: HandoverDecision) -> str:
    """One line for the CRM field: status with its date, blockers with evidence, next steps."""
    rules = ctx.rules
    seen = f"first seen on {_day(local_day(d.first_seen_at, rules))}"
    since = local_day(d.status_since, rules)
    when = f" since {since.isoformat()}" if since else f" ({seen})"
    suffix = ""
    if any(c.key == "rule_fallback" for c in d.reasons):
        suffix = " (calendar rule: no contracted modules known)"
    blockers = "; ".join(c.detail for c in d.blockers)
    steps = d.next_steps
    tail = f". Next: {steps}" if steps else ""
    if d.status == "new_sales":
        return f"new sales: {blockers}"
    if d.status == "onboarding":
        return f"blocked: {blockers}{suffix}{tail}"
    if d.status == "overdue":
        return f"handover overdue{when}: {blockers}{suffix}{tail}"
    if d.status == "ready_for_handover":
        ready = local_day(d.ready_since, rules)
        rw = f" since {ready.isoformat()}" if ready else f" ({seen})"
        # where the customer stands in the zone (days left, due day) is what makes it urgent
        zone = "".join(f"; {c.detail}" for c in d.reasons if c.key == "relay_zone" and c.passed)
        return f"ready for handover{rw}: {blockers}{zone}{suffix}{tail}"
    if d.status == "at_risk":
        return f"at risk{when}: {blockers}{tail}"
    handed = local_day(d.handed_over_on, rules)
    if handed is not None:
        source = d.date_basis.get("handed_over_on") == "crm_history"
        where = " (owner change in the CRM history)" if source else ""
        return f"account management since {handed.isoformat()}{where}"
    return f"account management ({seen}; handover date not in the CRM history)"


def transition(
    previous: HandoverState | None, decision: HandoverDecision, now: dt.datetime
) -> HandoverTransition | None:
    """The history row for a status change, or None when the status did not change.

    The row is dated by the event that caused the change (``decision.status_since``); ``now``
    (when the hub observed it) only where no date is known. The first evaluation of a customer
    is a transition from ``None``, so the history shows where each customer started.
    """
    now = require_aware(now)
    if previous is not None and previous.status == decision.status:
        return None
    return HandoverTransition(
        customer_id=decision.customer_id,
        from_status=previous.status if previous is not None else None,
        to_status=decision.status,
        at=decision.status_since or now,
        reasons=[c.as_dict() for c in decision.qualified_by] or decision.reasons_json(),
    )


def _day(value: dt.date | None) -> str:
    return "on an unknown date" if value is None else value.isoformat()


def signed_moment(deal: Deal, rules: HubRules) -> dt.datetime | None:
    """When a won deal was signed: entering its won stage, else its close date's business day."""
    entered = stage_time(deal, deal.stage)
    if entered is not None:
        return entered
    if deal.close_date is not None:
        return local_midnight(deal.close_date, rules)
    return None


def _without_won_deal(ctx: _Ctx, prev_status: str | None, deals: list[Deal]) -> HandoverDecision:
    """No closed-won deal: new sales, unless the customer had been handed over already.

    A won deal that is reopened or lost after the handover does not silently move the customer
    back to sellers: the account manager keeps it, flagged at risk, and the reason says why.
    """
    facts, rules = ctx.facts, ctx.rules
    cid = facts.customer.id
    prev = facts.previous
    if prev is not None and prev_status in HANDED_OVER:
        c = Criterion(
            "won_deal",
            False,
            "no closed-won deal any more (reopened or lost)",
            next_step="check the reopened or lost deal with the seller",
        )
        return HandoverDecision(
            cid,
            "at_risk",
            prev.rule_kind,
            [c],
            as_utc(prev.ready_since),
            as_utc(prev.handed_over_on),
            "",
            date_basis=_kept_basis(prev),
        )
    if prev_status not in (None, "new_sales"):
        detail = "no closed-won deal any more (reopened or lost)"
    elif deals:
        detail = f"no closed-won deal yet ({plural(len(deals), 'deal')} in progress or lost)"
    else:
        detail = "no deal yet"
    c = Criterion("won_deal", False, detail)
    return HandoverDecision(cid, "new_sales", rules.handover.rule, [c], None, None, "")


def _kept_basis(prev: HandoverState) -> dict[str, str]:
    keep = ("handed_over_on", "ready_since", "trigger_baseline")
    return {k: str(v) for k, v in (prev.date_basis or {}).items() if k in keep}


def _readiness(
    ctx: _Ctx, signed: dt.date | None
) -> tuple[str, list[Criterion], dt.datetime | None]:
    """The configured readiness rule's criteria (maturity falls back to calendar without data),
    and when the rule was met where a date says so (calendar rules)."""
    facts, rules = ctx.facts, ctx.rules
    h = rules.handover
    kind: str = h.rule
    criteria: list[Criterion] = []
    if kind == "maturity" and not _norm_set(facts.customer.contracted_modules):
        days = h.calendar_after_contract.days
        criteria.append(
            Criterion(
                "rule_fallback",
                True,
                f"no contracted modules known: maturity cannot be judged, so the calendar rule "
                f"({days} days after contract) applies",
            )
        )
        kind = "calendar_after_contract"
    if kind == "calendar_after_contract":
        need = h.calendar_after_contract.days
        c = _days_since("days_since_contract", "contract", signed, ctx.today, need)
        met = None if signed is None else local_midnight(signed + dt.timedelta(days=need), rules)
        criteria.append(c)
        return kind, criteria, met if c.passed else None
    if kind == "calendar_after_go_live":
        need = h.calendar_after_go_live.days
        go_live = facts.customer.go_live_date
        c = _days_since("days_since_go_live", "go-live", go_live, ctx.today, need)
        met = None if go_live is None else local_midnight(go_live + dt.timedelta(days=need), rules)
        criteria.append(c)
        return kind, criteria, met if c.passed else None
    criteria.extend(_maturity(facts, rules, ctx.now))
    return kind, criteria, None


def _days_since(key: str, what: str, start: dt.date | None, today: dt.date, need: int) -> Criterion:
    if start is None:
        return Criterion(
            key, False, f"{what} date unknown", next_step=f"enter the {what} date in the CRM"
        )
    days = (today - start).days
    if days >= need:
        return Criterion(
            key, True, f"{days} days since {what} on {start.isoformat()} ({need} required)"
        )
    due = start + dt.timedelta(days=need)
    return Criterion(
        key,
        False,
        f"{max(days, 0)} of {need} days since {what}",
        next_step=f"wait until {due.isoformat()}",
    )


def _zone(
    ctx: _Ctx, signed: dt.date | None, mature_since: dt.datetime | None
) -> tuple[list[Criterion], dt.datetime | None, dt.datetime | None]:
    """The relay zone's criteria, when the zone opened, and when the handover became overdue.

    Day numbers count from the anchor day (day 0). Earliest: ready from day ``earliest_days``
    on. Latest: handed over by day ``latest_days``; from the day after, overdue.
    """
    rules = ctx.rules
    z = rules.handover.zone
    if not z.active:
        return [], None, None
    out: list[Criterion] = []
    word = "go-live" if z.anchor == "go_live" else "contract"
    anchor = ctx.facts.customer.go_live_date if z.anchor == "go_live" else signed
    zone_open_at: dt.datetime | None = None
    overdue_at: dt.datetime | None = None
    if z.earliest_days is not None or z.latest_days:
        if anchor is None:
            out.append(
                Criterion(
                    "relay_zone",
                    False,
                    f"{word} date unknown: the handover zone cannot start",
                    next_step=f"enter the {word} date in the CRM",
                )
            )
        else:
            day = (ctx.today - anchor).days
            opens = anchor + dt.timedelta(days=z.earliest_days or 0)
            zone_open_at = local_midnight(opens, rules)
            span = f"{z.earliest_days or 0}–{z.latest_days}" if z.latest_days else ""
            where = f"day {day} after {word}"
            if z.latest_days:
                due = anchor + dt.timedelta(days=z.latest_days)
                left = z.latest_days - day
                if left < 0:
                    overdue_at = local_midnight(due + dt.timedelta(days=1), rules)
                    late = f"{where}: handover was due by day {z.latest_days} ({due.isoformat()})"
                    out.append(Criterion("relay_zone", True, late, evidence=(f"due {due}",)))
                elif z.earliest_days is not None and day < z.earliest_days:
                    out.append(
                        Criterion(
                            "relay_zone",
                            False,
                            f"{where}: the handover zone (days {span}) opens on "
                            f"{opens.isoformat()}, in {plural(z.earliest_days - day, 'day')}",
                            next_step=f"prepare the handover for {opens.isoformat()}",
                        )
                    )
                else:
                    out.append(
                        Criterion(
                            "relay_zone",
                            True,
                            f"{where}, inside the handover zone (days {span}): "
                            f"{plural(left, 'day')} left, hand over by {due.isoformat()}",
                        )
                    )
            elif z.earliest_days is not None and day < z.earliest_days:
                out.append(
                    Criterion(
                        "relay_zone",
                        False,
                        f"{where}: the handover zone opens on {opens.isoformat()} "
                        f"(day {z.earliest_days}), in {plural(z.earliest_days - day, 'day')}",
                        next_step=f"prepare the handover for {opens.isoformat()}",
                    )
                )
            else:
                out.append(Criterion("relay_zone", True, f"{where}, the handover zone is open"))
    if z.stable_days and mature_since is not None:
        start = local_day(mature_since, rules) or ctx.today
        held = (ctx.today - start).days
        if held >= z.stable_days:
            text = f"stable for {held} days since {start.isoformat()} ({z.stable_days} required)"
            out.append(Criterion("stable_period", True, text))
        else:
            until = start + dt.timedelta(days=z.stable_days)
            out.append(
                Criterion(
                    "stable_period",
                    False,
                    f"stable for {held} of {z.stable_days} days (since {start.isoformat()})",
                    next_step=f"keep it stable until {until.isoformat()}",
                )
            )
    return out, zone_open_at, overdue_at


def _ticket_ref(t: Ticket) -> str:
    subject = (t.subject or "").strip()
    if len(subject) > 40:
        subject = subject[:39] + "…"
    return f"{t.source_id} '{subject}'" if subject else t.source_id


def _tickets_criterion(
    key: str, word: str, tickets: list[Ticket], passed_text: str, since: str = ""
) -> Criterion:
    """A ticket-count criterion naming the tickets (sorted by CRM and id) and what to do."""
    n = len(tickets)
    if n == 0:
        return Criterion(key, True, passed_text)
    refs = tuple(_ticket_ref(t) for t in tickets)
    ids = ", ".join(t.source_id for t in tickets)
    detail = f"{plural(n, word)}{since}: {', '.join(refs)}"
    step = f"close ticket {ids}" if n == 1 else f"close tickets {ids}"
    return Criterion(key, False, detail, evidence=refs, next_step=step)


def _maturity(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> list[Criterion]:
    """Stable use in all agreed areas: no open critical/serious tickets, few user errors,
    onboarding done, every contracted module in use."""
    m = rules.handover.maturity
    tickets = live(facts.tickets)
    open_ = [t for t in tickets if not t.is_closed]
    out: list[Criterion] = []
    for key, word, per_crm in (
        ("open_critical_tickets", "critical", m.critical_priorities),
        ("open_serious_tickets", "serious", m.serious_priorities),
    ):
        hits = [t for t in open_ if per_crm.matches(t.source, t.priority)]
        out.append(_tickets_criterion(key, f"open {word} ticket", hits, f"no open {word} tickets"))

    since = now - dt.timedelta(days=m.user_error_window_days)
    user_errors = []
    for t in tickets:
        opened = as_utc(t.opened_at)
        in_window = opened is not None and since <= opened <= now
        if in_window and m.user_error_categories.matches(t.source, t.category):
            user_errors.append(t)
    n_user = len(user_errors)
    ok = n_user <= m.user_error_threshold
    refs = tuple(_ticket_ref(t) for t in user_errors)
    out.append(
        Criterion(
            "user_errors",
            ok,
            f"{plural(n_user, 'user-error ticket')} in {m.user_error_window_days} days "
            f"(max {m.user_error_threshold})" + ("" if ok else f": {', '.join(refs)}"),
            evidence=() if ok else refs,
            next_step="" if ok else "train the users on what the user-error tickets asked",
        )
    )

    if m.onboarding_required:
        done = facts.customer.onboarding_completed
        if done is None:
            text, step = "onboarding status unknown", "record the onboarding status in the CRM"
        else:
            text = "onboarding completed" if done else "onboarding not completed"
            step = "" if done else "complete the onboarding and mark it in the CRM"
        out.append(Criterion("onboarding", done is True, text, next_step=step))

    if m.all_modules_in_use:
        contracted = _norm_map(facts.customer.contracted_modules)
        in_use = _norm_set(facts.customer.modules_in_use)
        missing = sorted(label for key, label in contracted.items() if key not in in_use)
        if not missing:
            text = f"all {plural(len(contracted), 'contracted module')} in use"
        elif len(missing) == 1:
            text = f"module {missing[0]} not in use"
        else:
            text = f"modules {', '.join(missing)} not in use"
        step = f"get {text.removesuffix(' not in use')} into use" if missing else ""
        out.append(
            Criterion("modules_in_use", not missing, text, evidence=tuple(missing), next_step=step)
        )
    return out


def _latest_blocking_ticket(ctx: _Ctx, reasons: list[Criterion]) -> dt.datetime | None:
    """When the newest open critical/serious ticket was opened: what sent a ready customer back."""
    m = ctx.rules.handover.maturity
    if all(c.passed for c in reasons if c.key in ("open_critical_tickets", "open_serious_tickets")):
        return None
    times = [
        t
        for tk in live(ctx.facts.tickets)
        if not tk.is_closed
        and (
            m.critical_priorities.matches(tk.source, tk.priority)
            or m.serious_priorities.matches(tk.source, tk.priority)
        )
        and (t := as_utc(tk.opened_at)) is not None
    ]
    return max(times) if times else None


def _norm_map(values: Iterable[str]) -> dict[str, str]:
    """Normalised module name -> first spelling seen (sorted, so deterministic)."""
    out: dict[str, str] = {}
    for v in sorted(v.strip() for v in values if v and v.strip()):
        out.setdefault(v.casefold(), v)
    return out


def _norm_set(values: Iterable[str]) -> set[str]:
    return set(_norm_map(values))


def is_account_manager(
    owner: Owner | None, owner_email: str | None, rules: HubRules
) -> tuple[bool, str]:
    """Whether the customer's owner is an account manager, and a label for the reasons."""
    am = rules.handover.account_managers
    departments = {d.strip().casefold() for d in am.departments}
    emails = {e.strip().casefold() for e in am.emails}
    if owner is not None and owner.deleted:
        owner = None
    email = (owner.email if owner is not None and owner.email else owner_email) or None
    if owner is None and email is None:
        return False, ""
    name = " ".join(p for p in (owner.first_name, owner.last_name) if p) if owner else ""
    label = name or email or "owner"
    dept = (owner.department or "").strip() if owner is not None else ""
    if dept:
        label = f"{label} ({dept})"
    ok = bool(dept and dept.casefold() in departments) or bool(
        email and email.strip().casefold() in emails
    )
    return ok, label


def _owner_criterion(facts: CustomerFacts, rules: HubRules) -> Criterion:
    ok, label = is_account_manager(facts.owner, facts.customer.owner_email, rules)
    step = "assign an account manager"
    if not label:
        return Criterion("owner_is_account_manager", False, "no owner", next_step=step)
    if ok:
        return Criterion("owner_is_account_manager", True, f"owner {label} is an account manager")
    return Criterion(
        "owner_is_account_manager",
        False,
        f"owner {label} is not an account manager",
        next_step=step,
    )


def _previous_peak(prev: HandoverState) -> float | None:
    for r in prev.reasons:
        if r.get("criterion") == "usage_drop" and isinstance(r.get("value"), int | float):
            return float(r["value"])
    return None


def _baseline(prev: HandoverState, fallback: dt.datetime) -> dt.datetime:
    """Since when at-risk triggers count: the handover day, else the recorded baseline."""
    handed = as_utc(prev.handed_over_on)
    if handed is not None:
        return handed
    raw = (prev.date_basis or {}).get("trigger_baseline")
    if raw:
        try:
            return as_utc(dt.datetime.fromisoformat(str(raw))) or fallback
        except ValueError:
            pass
    return as_utc(prev.evaluated_at) or fallback


def _evaluate_handed_over(
    ctx: _Ctx, prev: HandoverState, won_c: Criterion
) -> tuple[HandoverDecision, dt.datetime | None]:
    """A handed-over customer stays with account management; at risk while a trigger fires."""
    facts, rules, now = ctx.facts, ctx.rules, ctx.now
    trig = rules.handover.at_risk
    m = rules.handover.maturity
    basis = _kept_basis(prev)
    handed_on = as_utc(prev.handed_over_on)
    history = _history_handover(ctx)
    if handed_on is None and history is not None and basis.get("handed_over_on") == "first_seen":
        # first seen handed over on an unknown day, and the CRM's owner history now dates it
        # (read for the first time after an upgrade, or the owner's history came later)
        handed_on, basis["handed_over_on"] = history, "crm_history"
        basis.pop("trigger_baseline", None)
    handed = handed_on if handed_on is not None else _baseline(prev, now)
    reasons = [won_c]
    event: dt.datetime | None = None
    if trig.new_critical_ticket:
        new_crit = [
            t
            for t in live(facts.tickets)
            if not t.is_closed
            and m.critical_priorities.matches(t.source, t.priority)
            # an open critical ticket of unknown age cannot be shown to predate the handover
            and ((as_utc(t.opened_at) or now) > handed)
        ]
        c = _tickets_criterion(
            "new_critical_tickets",
            "new critical ticket",
            new_crit,
            "no new critical tickets since handover",
            " since handover",
        )
        reasons.append(c)
        opened = [t for tk in new_crit if (t := as_utc(tk.opened_at)) is not None]
        if opened:
            event = min(opened)  # the first of them put the customer at risk
    usage = facts.customer.usage_score
    if trig.usage_score_below is not None and usage is not None:
        floor = trig.usage_score_below
        ok = usage >= floor
        text = f"usage {usage:g} {'at or above' if ok else 'below'} {floor:g}"
        step = "" if ok else "meet the customer about low usage"
        reasons.append(Criterion("usage_score", ok, text, next_step=step))
    if trig.usage_drop_points is not None:
        peak = _previous_peak(prev)
        if usage is not None:
            drop = 0.0 if peak is None else peak - usage
            ok = drop < trig.usage_drop_points
            new_peak = float(usage) if peak is None else max(peak, float(usage))
            text = (
                f"usage {usage:g}, peak since handover {new_peak:g}"
                if ok
                else f"usage dropped {drop:g} points from {peak:g}"
            )
            step = "" if ok else "meet the customer about low usage"
            reasons.append(Criterion("usage_drop", ok, text, value=new_peak, next_step=step))
        elif peak is not None:
            reasons.append(
                Criterion("usage_drop", True, f"usage unknown, peak since handover {peak:g}", peak)
            )
    ready_since = as_utc(prev.ready_since)
    status: Status = "at_risk" if any(not c.passed for c in reasons) else "account_management"
    d = HandoverDecision(
        facts.customer.id,
        status,
        prev.rule_kind,
        reasons,
        ready_since,
        handed_on,
        "",
        date_basis=basis,
        # kept as it was when handed over: a re-evaluation of the same facts says the same
        mature_since=as_utc(prev.mature_since),
    )
    if status == "at_risk":
        return d, event
    # back from at risk, or handed over just now: dated by when the hub observed it
    return d, (handed_on if prev.status == "account_management" else None)
