"""KPIs and behaviour indicators shared by marketing, sales and service, as pure functions.

Two views of the same formulas:

- ``customer_kpis(facts, rules, now)``: the figures pushed back to one customer's Account /
  Company record (all-time for that customer unless a trailing window is named below), plus the
  health score.
- ``period_kpis(...)``: the company (and optionally each owner) per calendar period, shown in the
  Dagster UI. Periods are calendar weeks / months / quarters in the business time zone
  (``kpis.business_hours.timezone``), clipped to ``[period_start, period_end)``.

Definitions (the words in DOMAIN.md made precise):

- **new leads**: live contacts created in the period that are Salesforce Leads (``is_lead``) or
  have a lead lifecycle stage (``kpis.lead_lifecycle_stages``).
- **new quotes**: deals whose first entry into a quote stage (``kpis.quote_stages`` of the deal's
  CRM, from ``stage_entered_at``) falls in the period.
- **decided deals**: closed deals; the decision time is when the deal entered its current
  (closed) stage, else its close date (local midnight), else its last modification.
  **quote hit rate** = won / (won + lost) of deals decided in the period (None without any).
- **contract value**: the amount of won deals decided in the period; **annualised** counts a
  recurring deal (``contract_term_months`` > 0) as ``amount * 12 / contract_term_months`` and any
  other deal at its amount.
- **cost of sale**: per activity the configured cost of its kind plus its logged duration in hours
  times the seller hourly rate; **cost_of_sale_ratio** = cost / contract value (None when no
  value was won).
- **customer satisfaction**: mean ticket satisfaction (CSAT, 1..5) of tickets closed in the period.
- **case handling time**: median and 90th percentile (linear interpolation between ranks) of
  calendar hours from opened to closed, for tickets closed in the period.
- **resolution rate**: of the tickets opened in the period, the share closed by the period's end
  (so a share in 0..1, not a backlog ratio).
- **reopen rate** ("answers precisely"): of the tickets opened in the period that have been
  closed at least once (closed now, or reopened since), the share the hub saw reopened (stored
  closed, read open again: ``Ticket.reopened_count``); per customer over all its tickets. The
  CRMs' status history is not read, so a close and reopen between two syncs is not seen.
- **first-response time**: for each inbound customer email, the first *later* outbound email in the
  same thread (or, for an inbound email without a thread id, to the same customer) is its reply;
  when several inbound emails wait for the same reply, the customer has waited since the earliest,
  so one response is counted from it. The time counts business hours only (local weekdays and
  hours, daylight saving time handled). Reported as the median in hours, for inbound emails sent
  in the period, attributed to the owner of the reply.
- **two-way contact**: the last two-way contact is the latest moment at which an email (either
  direction) was logged while an email of the other direction had been logged at most
  ``kpis.two_way_contact.window_days`` before it (same instant counts), or the latest call or
  meeting held with the customer (``kpis.two_way_contact.activity_kinds``: a conversation is
  two-way by nature), whichever is later. **days since last two-way
  contact** is the whole number of days from that moment to now (None: never).
- **contacts**: logged emails (both directions) plus activities of the kinds in
  ``kpis.contact_activity_kinds``; **contacts per month** scales the count to a month of
  30.4375 days (per customer: over the trailing ``kpis.contact_rate_window_days``).
- **customers** of a period: customer ids with a live deal created before the period's end (for an
  owner: with a deal of that owner). **logged_email_share**: share of them with a logged email in
  the period. **coverage**: share of them that have an owner (a deal with an owner) AND an activity
  AND a logged email within the last ``kpis.recent_activity_days`` before the period's end.
- **health score** (0..100, per customer): weighted mean of components in 0..1 (weights in
  ``kpis.health.weights``): tickets = 1 minus the configured penalty per open critical / serious /
  other ticket (floored at 0); usage = usage score / 100; contact recency = 1 minus days since the
  last two-way contact over the horizon (0 when never); satisfaction = (mean CSAT - 1) / 4.
  Components without data (no usage score, no CSAT) are left out and the weights renormalised, so
  that a CRM without a usage field does not make every customer look unhealthy.

Every result is deterministic and invariant to the order of the input rows: rows are put into a
canonical order first, sums use ``math.fsum`` (exactly rounded, so order cannot change a bit).
Tombstones (``deleted=True``) are ignored.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from unified_model.handover import (
    CustomerFacts,
    as_utc,
    is_account_manager,
    live,
    require_aware,
    stage_time,
)
from unified_model.rules import BusinessHours, HubRules
from unified_model.tables import Activity, Contact, Deal, Email, Owner, Ticket

KpiValue = float | int | str | None
#: Maps a row (deal, ticket, email, contact, activity) to the owner it is attributed to.
OwnerKey = Callable[[Any], str | None]
UNASSIGNED = "unassigned"
DAYS_PER_MONTH = 365.25 / 12

# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks; None if empty."""
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def mean(values: Iterable[float]) -> float | None:
    v = list(values)
    return math.fsum(v) / len(v) if v else None


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def business_hours_between(start: dt.datetime, end: dt.datetime, bh: BusinessHours) -> float:
    """Hours between two instants that fall inside business hours (local wall-clock time).

    Each business day's window is built in the local zone and converted to UTC before
    subtracting, because subtracting two datetimes that share a ``ZoneInfo`` ignores a DST change
    between them.
    """
    if end <= start:
        return 0.0
    zone = bh.zone
    days = bh.weekday_numbers
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    total = dt.timedelta(0)
    while day <= last:
        if day.weekday() in days:
            ws = dt.datetime.combine(day, dt.time(bh.start_hour), tzinfo=zone).astimezone(dt.UTC)
            end_day = day + dt.timedelta(days=bh.end_hour // 24)
            we = dt.datetime.combine(end_day, dt.time(bh.end_hour % 24), tzinfo=zone)
            lo = max(start, ws)
            hi = min(end, we.astimezone(dt.UTC))
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total.total_seconds() / 3600


def annualised_value(deal: Deal) -> float:
    """A won deal's yearly value: ``amount * 12 / term`` when recurring, else its amount."""
    amount = deal.amount or 0.0
    term = deal.contract_term_months
    return amount * 12 / term if term and term > 0 else amount


def activity_cost(activity: Activity, rules: HubRules) -> float:
    """Configured cost of the activity's kind plus its logged hours at the seller rate."""
    return activity_costs(rules)(activity)


def activity_costs(rules: HubRules) -> Callable[[Any], float]:
    """``activity_cost`` with the rules read once (it runs once per activity and period)."""
    costs = rules.kpis.cost.per_activity
    per_kind = {"call": costs.call, "email": costs.email}
    task, hourly = costs.task, rules.kpis.cost.per_seller_hour

    def cost(activity: Any) -> float:
        per = per_kind.get((activity.kind or "").strip().casefold(), task)
        return per + (activity.duration_seconds or 0) / 3600 * hourly

    return cost


def decided_at(deal: Deal, rules: HubRules) -> dt.datetime | None:
    """When a closed deal was decided (won or lost); None for open deals."""
    if not (deal.is_closed or deal.is_won):
        return None
    entered = stage_time(deal, deal.stage)
    if entered is not None:
        return entered
    if deal.close_date is not None:
        zone = rules.kpis.business_hours.zone
        return dt.datetime.combine(deal.close_date, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    return as_utc(deal.modified_at)


def quote_entered_at(deal: Deal, rules: HubRules) -> dt.datetime | None:
    """First entry of the deal into any quote stage of its CRM."""
    times = [
        t
        for stage in deal.stage_entered_at
        if rules.kpis.quote_stages.matches(deal.source, stage)
        and (t := stage_time(deal, stage)) is not None
    ]
    return min(times) if times else None


def is_new_lead(contact: Contact, rules: HubRules) -> bool:
    """Whether the contact was a lead when it was created: a Salesforce Lead, or a HubSpot
    contact at a lead stage or a stage after it (it has moved on, but it came in as a lead, so
    last month's leads do not vanish from last month's count when they progress)."""
    return new_lead_test(rules)(contact)


def new_lead_test(rules: HubRules) -> Callable[[Any], bool]:
    """``is_new_lead`` with the rules' stages folded once (it runs once per contact)."""
    k = rules.kpis
    stages = {s.strip().casefold() for s in (*k.lead_lifecycle_stages, *k.later_lifecycle_stages)}

    def test(contact: Any) -> bool:
        return bool(contact.is_lead) or (contact.lifecycle_stage or "").strip().casefold() in stages

    return test


def reached_quote(deal: Deal, rules: HubRules) -> bool:
    """Whether the deal ever entered a quote stage (or is in one now)."""
    return quote_entered_at(deal, rules) is not None or rules.kpis.quote_stages.matches(
        deal.source, deal.stage
    )


def reopened(ticket: Ticket) -> bool:
    """Whether the hub saw the ticket closed and later open again (at least once)."""
    return (getattr(ticket, "reopened_count", 0) or 0) > 0


def reopen_rate(tickets: Iterable[Ticket]) -> float | None:
    """Reopened / closed at least once (closed now, or reopened); None when none was closed."""
    done = [t for t in tickets if t.is_closed or reopened(t)]
    return ratio(sum(1 for t in done if reopened(t)), len(done))


def handling_hours(ticket: Ticket) -> float | None:
    opened, closed = as_utc(ticket.opened_at), as_utc(ticket.closed_at)
    if not ticket.is_closed or opened is None or closed is None or closed < opened:
        return None
    return (closed - opened).total_seconds() / 3600


@dataclass(frozen=True)
class FirstResponse:
    """One answered customer inquiry: the earliest waiting inbound email and its reply."""

    inbound_at: dt.datetime
    reply: Email
    business_hours: float


def _sent(email: Email) -> dt.datetime:
    """Send time of an email already filtered to have one."""
    t = as_utc(email.sent_at)
    assert t is not None, "emails without sent_at are filtered out before"
    return t


def first_responses(emails: Iterable[Email], rules: HubRules) -> list[FirstResponse]:
    """Pair inbound customer emails with their first reply (see the module docstring)."""
    # Tombstones out, but no canonical sort (a million emails on ``large``): the result is
    # sorted by a total order below, and which of two inquiries sent at the same instant
    # claims a reply first gives the same response.
    rows = [e for e in emails if not e.deleted and e.sent_at is not None]
    # the store's times are UTC already: read them with C getters, not a call per email
    sent: Callable[[Any], dt.datetime] = _sent
    order: Callable[[Any], Any] = lambda e: (_sent(e), e.source, e.source_id)  # noqa: E731
    if all(getattr(e.sent_at, "tzinfo", None) is dt.UTC for e in rows):
        sent = operator.attrgetter("sent_at")
        order = operator.attrgetter("sent_at", "source", "source_id")
    outbound = sorted((e for e in rows if e.direction == "outbound"), key=order)
    # Outbound emails per conversation, in send order, for a binary search of the first reply.
    by_thread: dict[tuple[str, str], list[Email]] = defaultdict(list)
    by_customer: dict[str, list[Email]] = defaultdict(list)
    for e in outbound:
        if e.thread_id:
            by_thread[(e.source, e.thread_id)].append(e)
        if e.customer_id:
            by_customer[e.customer_id].append(e)
    times = {id(v): list(map(sent, v)) for v in (*by_thread.values(), *by_customer.values())}

    waiting: dict[tuple[str, str], tuple[dt.datetime, Email]] = {}
    for e in rows:
        if e.direction != "inbound":
            continue
        t = sent(e)
        if e.thread_id:
            cands = by_thread.get((e.source, e.thread_id), [])
        else:
            cands = by_customer.get(e.customer_id, []) if e.customer_id else []
        i = bisect.bisect_right(times.get(id(cands), []), t)
        if i >= len(cands):
            continue  # not answered (yet)
        reply = cands[i]
        key = (reply.source, reply.source_id)
        if key not in waiting or t < waiting[key][0]:
            waiting[key] = (t, reply)
    bh = rules.kpis.business_hours
    out = [
        FirstResponse(t, reply, business_hours_between(t, sent(reply), bh))
        for t, reply in waiting.values()
    ]
    return sorted(out, key=lambda r: (r.inbound_at, r.reply.source, r.reply.source_id))


def unanswered_inquiries(
    emails: Iterable[Email], rules: HubRules, as_of: dt.datetime
) -> list[Email]:
    """Inbound customer emails that had no reply by ``as_of``, oldest first.

    The reply is looked for as in ``first_responses`` (the same thread, or the same customer for
    an email without a thread id), sent after the inbound email and not after ``as_of``. Emails
    younger than ``kpis.unanswered_after_hours`` are not counted yet. Only ``outbound`` emails
    are replies: a forwarded email is not an answer to the customer.
    """
    # no canonical sort needed: the result is sorted by a total order (see ``first_responses``)
    rows = [
        e for e in emails if not e.deleted and (t := as_utc(e.sent_at)) is not None and t <= as_of
    ]
    # per conversation only its latest reply: an inquiry is answered iff a reply is later
    last_thread: dict[tuple[str, str], dt.datetime] = {}
    last_customer: dict[str, dt.datetime] = {}
    for e in rows:
        if e.direction != "outbound":
            continue
        t = _sent(e)
        if e.thread_id:
            key = (e.source, e.thread_id)
            if key not in last_thread or t > last_thread[key]:
                last_thread[key] = t
        if e.customer_id and (
            e.customer_id not in last_customer or t > last_customer[e.customer_id]
        ):
            last_customer[e.customer_id] = t
    grace = dt.timedelta(hours=rules.kpis.unanswered_after_hours)
    out: list[Email] = []
    for e in rows:
        sent = _sent(e)
        if e.direction != "inbound" or as_of - sent < grace:
            continue
        if e.thread_id:
            latest = last_thread.get((e.source, e.thread_id))
        else:
            latest = last_customer.get(e.customer_id or "")
        if latest is None or latest <= sent:
            out.append(e)
    return sorted(out, key=lambda e: (_sent(e), e.source, e.source_id))


def last_two_way_contact(
    emails: Iterable[Email],
    window_days: int,
    as_of: dt.datetime,
    conversations: Iterable[dt.datetime | None] = (),
) -> dt.datetime | None:
    """The latest moment ≤ ``as_of`` closing a two-way contact (see the module docstring).

    ``conversations``: when calls and meetings with the customer took place; each one is a
    two-way contact by itself (``kpis.two_way_contact.activity_kinds``).
    """
    held = [t for c in conversations if (t := as_utc(c)) is not None and t <= as_of]
    by_email = _last_two_way_email(emails, window_days, as_of)
    return max([*held, *([by_email] if by_email is not None else [])], default=None)


def conversation_times(activities: Iterable[Activity], rules: HubRules) -> list[dt.datetime]:
    """When the activities that count as two-way contacts (calls, meetings…) took place."""
    kinds = {k.casefold() for k in rules.kpis.two_way_contact.activity_kinds}
    return [
        t
        for a in live(activities)
        if (a.kind or "").casefold() in kinds and (t := as_utc(a.occurred_at)) is not None
    ]


def _last_two_way_email(
    emails: Iterable[Email], window_days: int, as_of: dt.datetime
) -> dt.datetime | None:
    inbound: list[dt.datetime] = []
    outbound: list[dt.datetime] = []
    for e in live(emails):
        t = as_utc(e.sent_at)
        if t is None or t > as_of:
            continue
        if e.direction == "inbound":
            inbound.append(t)
        elif e.direction == "outbound":  # a forwarded email is no contact with the customer
            outbound.append(t)
    inbound.sort()
    outbound.sort()
    window = dt.timedelta(days=window_days)
    best: dt.datetime | None = None
    for mine, other in ((inbound, outbound), (outbound, inbound)):
        for t in reversed(mine):
            if best is not None and t <= best:
                break
            i = bisect.bisect_right(other, t) - 1
            if i >= 0 and t - other[i] <= window:
                best = t
                break
    return best


def whole_days(since: dt.datetime | None, now: dt.datetime) -> int | None:
    return None if since is None else math.floor((now - since).total_seconds() / 86400)


def _in(t: dt.datetime | None, start: dt.datetime, end: dt.datetime) -> bool:
    """In a period: ``start`` inclusive, ``end`` exclusive."""
    return t is not None and start <= t < end


def _upto(t: dt.datetime | None, start: dt.datetime, now: dt.datetime) -> bool:
    """In a trailing window that ends now: both ends inclusive."""
    return t is not None and start <= t <= now


# --------------------------------------------------------------------------------------------
# Per customer
# --------------------------------------------------------------------------------------------


def health_components(
    facts: CustomerFacts, rules: HubRules, now: dt.datetime
) -> dict[str, float | None]:
    """The four health components in 0..1 (None: no data, left out of the score)."""
    now = require_aware(now)
    h = rules.kpis.health
    m = rules.handover.maturity
    penalty = 0.0
    for t in live(facts.tickets):
        if t.is_closed:
            continue
        if m.critical_priorities.matches(t.source, t.priority):
            penalty += h.critical_ticket_penalty
        elif m.serious_priorities.matches(t.source, t.priority):
            penalty += h.serious_ticket_penalty
        else:
            penalty += h.other_ticket_penalty
    usage = facts.customer.usage_score
    last = last_two_way_contact(
        facts.emails,
        rules.kpis.two_way_contact.window_days,
        now,
        conversation_times(facts.activities, rules),
    )
    days = whole_days(last, now)
    csat = mean(t.satisfaction for t in live(facts.tickets) if t.satisfaction is not None)
    return {
        "tickets": max(0.0, 1.0 - penalty),
        "usage": None if usage is None else min(1.0, max(0.0, usage / 100)),
        "contact_recency": 0.0
        if days is None
        else max(0.0, 1.0 - max(days, 0) / h.contact_recency_horizon_days),
        "satisfaction": None if csat is None else min(1.0, max(0.0, (csat - 1) / 4)),
    }


def health_score(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> float | None:
    """Health 0..100 (one decimal) from the weighted available components.

    None for a prospect (no closed-won deal): health is about a paying customer's use and
    contact, and a never-contacted prospect without tickets must not outrank a customer.
    """
    if not any(d.is_won for d in live(facts.deals)):
        return None
    comps = health_components(facts, rules, now)
    w = rules.kpis.health.weights
    weights = {
        "tickets": w.tickets,
        "usage": w.usage,
        "contact_recency": w.contact_recency,
        "satisfaction": w.satisfaction,
    }
    used = [(weights[k], c) for k, c in comps.items() if c is not None and weights[k] > 0]
    total = math.fsum(wt for wt, _ in used)
    if total <= 0:
        return None
    return round(100 * math.fsum(wt * c for wt, c in used) / total, 1)


def customer_kpis(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> dict[str, KpiValue]:
    """The per-customer KPIs, KBIs and health score pushed back to the customer's records."""
    now = require_aware(now)
    k = rules.kpis
    deals = live(facts.deals)
    tickets = live(facts.tickets)
    emails = [e for e in live(facts.emails) if e.sent_at is not None]
    activities = live(facts.activities)
    won = [d for d in deals if d.is_won]
    lost = [d for d in deals if d.is_closed and not d.is_won]
    quoted_won = [d for d in won if reached_quote(d, rules)]
    quoted_lost = [d for d in lost if reached_quote(d, rules)]
    value = math.fsum(d.amount or 0.0 for d in won)
    cost = math.fsum(activity_cost(a, rules) for a in activities)
    crit = rules.handover.maturity.critical_priorities
    serious = rules.handover.maturity.serious_priorities
    waiting = unanswered_inquiries(emails, rules, now)
    zone = rules.kpis.business_hours.zone
    handling = [h for t in tickets if (h := handling_hours(t)) is not None]
    responses = first_responses(emails, rules)
    last = last_two_way_contact(
        emails, k.two_way_contact.window_days, now, conversation_times(activities, rules)
    )

    window_start = now - dt.timedelta(days=k.contact_rate_window_days)
    kinds = {x.casefold() for x in k.contact_activity_kinds}
    n_contacts = sum(1 for e in emails if _upto(as_utc(e.sent_at), window_start, now))
    n_contacts += sum(
        1
        for a in activities
        if (a.kind or "").casefold() in kinds and _upto(as_utc(a.occurred_at), window_start, now)
    )

    recent = now - dt.timedelta(days=k.recent_activity_days)
    _, owner_label = is_account_manager(facts.owner, facts.customer.owner_email, rules)
    has_activity = any(_upto(as_utc(a.occurred_at), recent, now) for a in activities)
    has_email = any(_upto(as_utc(e.sent_at), recent, now) for e in emails)

    return {
        "won_deals": len(won),
        "open_deals": sum(1 for d in deals if not d.is_closed and not d.is_won),
        "contract_value": value,
        "contract_value_annualised": math.fsum(annualised_value(d) for d in won),
        "quote_hit_rate": ratio(len(quoted_won), len(quoted_won) + len(quoted_lost)),
        "win_rate": ratio(len(won), len(won) + len(lost)),
        "cost_of_sale": cost,
        "cost_of_sale_ratio": ratio(cost, value),
        "open_tickets": sum(1 for t in tickets if not t.is_closed),
        "open_critical_tickets": sum(
            1 for t in tickets if not t.is_closed and crit.matches(t.source, t.priority)
        ),
        "open_serious_tickets": sum(
            1 for t in tickets if not t.is_closed and serious.matches(t.source, t.priority)
        ),
        "unanswered_inquiries": len(waiting),
        "oldest_unanswered_inquiry_on": _sent(waiting[0]).astimezone(zone).date().isoformat()
        if waiting
        else None,
        "oldest_unanswered_inquiry_days": whole_days(_sent(waiting[0]), now) if waiting else None,
        "csat_mean": mean(t.satisfaction for t in tickets if t.satisfaction is not None),
        "case_handling_median_hours": percentile(handling, 0.5),
        "case_handling_p90_hours": percentile(handling, 0.9),
        "resolution_rate": ratio(sum(1 for t in tickets if t.is_closed), len(tickets)),
        "reopened_tickets": sum(1 for t in tickets if reopened(t)),
        "reopen_rate": reopen_rate(tickets),
        "first_response_median_hours": percentile((r.business_hours for r in responses), 0.5),
        "days_since_two_way_contact": whole_days(last, now),
        "last_two_way_contact_at": None if last is None else last.isoformat(),
        # the business's day of it (written back as a date; a UTC date can be a day off)
        "last_two_way_contact_on": None
        if last is None
        else last.astimezone(zone).date().isoformat(),
        "contacts_per_month": n_contacts * DAYS_PER_MONTH / k.contact_rate_window_days,
        "logged_emails": len(emails),
        "coverage": int(bool(owner_label) and has_activity and has_email),
        "health_score": health_score(facts, rules, now),
    }


# --------------------------------------------------------------------------------------------
# Per period (company and owners)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiRow:
    """The KPIs of one period for the company (``owner`` None) or one owner."""

    period_start: dt.datetime
    period_end: dt.datetime
    owner: str | None
    values: dict[str, KpiValue]
    #: the calendar period in the business time zone: "2026-06", "2026-Q2" or "2026-W25"
    label: str = ""


@dataclass(frozen=True)
class KpiTable:
    """Rows ordered by period, the company row first, then owners alphabetically."""

    rows: tuple[KpiRow, ...]

    def company(self) -> list[KpiRow]:
        return [r for r in self.rows if r.owner is None]

    def for_owner(self, owner: str) -> list[KpiRow]:
        return [r for r in self.rows if r.owner == owner]

    def as_records(self) -> list[dict[str, KpiValue]]:
        """Flat dicts (ISO period bounds), e.g. for Dagster table metadata."""
        return [
            {
                "period": r.label,
                "period_start": r.period_start.isoformat(),
                "period_end": r.period_end.isoformat(),
                "owner": r.owner,
                **r.values,
            }
            for r in self.rows
        ]


def owner_key_by_email(owners: Iterable[Owner]) -> OwnerKey:
    """An ``OwnerKey`` that attributes rows to the owner's email, so the same person owning
    records in both CRMs is one owner; owners without email stay ``source:owner_id``."""
    emails = {
        (o.source, o.source_id): o.email.strip().casefold()
        for o in owners
        if not o.deleted and o.email
    }

    def key(row: Any) -> str | None:
        oid = getattr(row, "owner_id", None)
        if not oid:
            return None
        return emails.get((row.source, oid), f"{row.source}:{oid}")

    return key


def periods(
    start: dt.datetime, end: dt.datetime, rules: HubRules
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Calendar periods (``kpis.period``) in the business zone, clipped to ``[start, end)``."""
    zone = rules.kpis.business_hours.zone
    kind = rules.kpis.period
    out: list[tuple[dt.datetime, dt.datetime]] = []
    s = require_aware(start)
    end = require_aware(end)
    while s < end:
        local = s.astimezone(zone)
        if kind == "week":
            nxt = local.date() + dt.timedelta(days=7 - local.weekday())
        else:
            step = 3 if kind == "quarter" else 1
            m0 = (local.month - 1) // step * step + step  # months since January, next boundary
            nxt = dt.date(local.year + m0 // 12, m0 % 12 + 1, 1)
        boundary = dt.datetime.combine(nxt, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        e = min(boundary, end)
        out.append((s, e))
        s = e
    return out


def period_kpis(
    deals: Sequence[Deal],
    tickets: Sequence[Ticket],
    emails: Sequence[Email],
    contacts: Sequence[Contact],
    activities: Sequence[Activity],
    rules: HubRules,
    period_start: dt.datetime,
    period_end: dt.datetime,
    owner_key: OwnerKey | None = None,
    prepared: KpiData | None = None,
    owners_of: Iterable[Any] = (),
) -> KpiTable:
    """Company-wide KPIs per period, plus one row per owner when ``owner_key`` is given.

    ``owner_key`` maps a row to its owner (e.g. ``owner_key_by_email(owners)``); rows without an
    owner go to ``"unassigned"``. Owner rows exist for every owner seen in any input row, in every
    period, so the table is rectangular. ``prepared``: the same rows already indexed by
    ``prepare_kpi_data`` (the company table and the owner table share one preparation).
    ``owners_of``: rows left out of the inputs because no KPI reads them, with the ``source``
    and ``owner_id`` of their owners: those owners get rows too (contacts that were never
    leads, for example, are not read by the company table).
    """
    data = prepared or prepare_kpi_data(rules, deals, tickets, emails, contacts, activities)
    groups: list[str | None] = [None]
    if owner_key is not None:
        # an owner key reads a row's ``source`` and ``owner_id`` only (as ``owners_of``
        # relies on): each distinct pair is keyed once, not each of a million rows
        pairs = {(row.source, row.owner_id) for row in owners_of}
        of = operator.attrgetter("source", "owner_id")
        for rows_ in (data.deals, data.tickets, data.emails, data.contacts, data.activities):
            pairs.update(map(of, rows_))
        groups.extend(sorted({owner_key(_OwnerOf(*pair)) or UNASSIGNED for pair in pairs}))
    rows: list[KpiRow] = []
    for s, e in periods(period_start, period_end, rules):
        label = period_label(s, rules)
        for g in groups:
            rows.append(KpiRow(s, e, g, data.values(s, e, g, owner_key), label))
    return KpiTable(tuple(rows))


def period_label(start: dt.datetime, rules: HubRules) -> str:
    """Name of the calendar period containing ``start``, in the business time zone (a period
    starting at Berlin midnight on 1 June is "2026-06", although it is still 31 May in UTC)."""
    local = start.astimezone(rules.kpis.business_hours.zone).date()
    if rules.kpis.period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if rules.kpis.period == "quarter":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    return f"{local.year}-{local.month:02d}"


class _Timeline:
    """Rows sorted by one of their times, for the rows of a period by binary search.

    Why: the company table asks for 12 periods (and the owner table for one period per owner);
    filtering every row list once per period and group was most of the KPI step on ``large``
    (1.1M activities and emails scanned 13+ times, ``decided_at`` parsed per deal per period).
    Rows without the time are left out, as ``_in`` leaves them out.
    """

    def __init__(
        self, rows: Iterable[Any] = (), when: Callable[[Any], dt.datetime | None] | None = None
    ) -> None:
        """``rows`` indexed by ``when``; without ``when`` an empty timeline to fill in order."""
        keyed = [(t, row) for row in rows if (t := when(row)) is not None] if when else []
        keyed.sort(key=_first)  # stable: equal times keep the rows' order
        self.times = [t for t, _ in keyed]
        self.rows = [row for _, row in keyed]

    def between(self, s: dt.datetime, e: dt.datetime) -> list[Any]:
        """The rows with ``s <= time < e`` (``_in``)."""
        return self.rows[bisect.bisect_left(self.times, s) : bisect.bisect_left(self.times, e)]

    def split(
        self, s: dt.datetime, e: dt.datetime, key: Callable[[Any], str]
    ) -> dict[str, _Timeline]:
        """The rows of ``[s, e)`` split by ``key``, each part still in time order (a stable
        split of a sorted list keeps the order the part would be sorted in on its own)."""
        lo, hi = bisect.bisect_left(self.times, s), bisect.bisect_left(self.times, e)
        parts: dict[str, _Timeline] = {}
        for i in range(lo, hi):
            row = self.rows[i]
            part = parts.get(k := key(row))
            if part is None:
                part = parts[k] = _Timeline()
            part.times.append(self.times[i])
            part.rows.append(row)
        return parts

    @classmethod
    def by(cls, rows: Iterable[Any], attr: str) -> _Timeline:
        """``_Timeline(rows, lambda r: as_utc(r.<attr>))``, the same rows in the same order,
        without a Python call per row when every time is UTC already (as the store returns
        them): a C ``attrgetter`` key and a stable sort. Other times go through ``as_utc``.

        Why: indexing the window's million emails and activities through lambdas was a seventh
        of the company KPI step on ``large``.
        """
        get = operator.attrgetter(attr)
        kept = [row for row in rows if get(row) is not None]
        utc = dt.UTC
        if any(t.tzinfo is not utc for t in map(get, kept)):
            return cls(kept, lambda row: as_utc(get(row)))
        kept.sort(key=get)  # stable: equal times keep the rows' order
        out = cls()
        out.times = list(map(get, kept))
        out.rows = kept
        return out


_first = operator.itemgetter(0)
_by_sent_source_id = operator.itemgetter(0, 1, 2)


@dataclass
class _Group:
    """One group's rows (the company's, or one owner's) indexed once for every period."""

    deals: list[Any]
    decided: _Timeline
    quoted: _Timeline
    opened: _Timeline
    closed: _Timeline
    leads: _Timeline
    emails: _Timeline
    activities: _Timeline
    responses: _Timeline
    inbound: _Timeline
    #: outbound send times per conversation and per customer, sorted (``unanswered_inquiries``)
    replies_thread: dict[tuple[str, str], list[dt.datetime]]
    replies_customer: dict[str, list[dt.datetime]]
    #: the group's customers and the creation of their first deal (None: undated, always in)
    customer_since: dict[str, dt.datetime | None]


def _two_way(
    inbound: dict[str, list[dt.datetime]],
    outbound: dict[str, list[dt.datetime]],
    window_days: int,
) -> dict[str, list[dt.datetime]]:
    """Per customer: the send times of the emails that closed a two-way contact (an email of
    the other direction at most ``window_days`` before it, same instant counts), unsorted.

    Why precomputed: whether an email closes a two-way contact does not depend on the moment
    asked about (the other email is not later than it), so ``last_two_way_contact`` as of any
    moment is the latest of these (or of the calls and meetings) up to it: one binary search
    per customer and period instead of a walk back through the customer's emails.
    """
    window = dt.timedelta(days=window_days)
    out: dict[str, list[dt.datetime]] = {}
    for cid, ins in inbound.items():
        outs = outbound.get(cid)
        if not outs:
            continue
        ins.sort()
        outs.sort()
        closed: list[dt.datetime] = []
        for mine, other in ((ins, outs), (outs, ins)):
            for t in mine:
                i = bisect.bisect_right(other, t)
                if i and t - other[i - 1] <= window:
                    closed.append(t)
        if closed:
            out[cid] = closed
    return out


def prepare_kpi_data(
    rules: HubRules,
    deals: Sequence[Deal],
    tickets: Sequence[Ticket],
    emails: Sequence[Email],
    contacts: Sequence[Contact],
    activities: Sequence[Activity],
    history: KpiHistory | None = None,
    *,
    read_live: bool = False,
) -> KpiData:
    """The live rows indexed once for ``period_kpis`` (first responses, per-customer times).

    ``history``: the rows are those of a window only (``KpiHistory``); without it they are all.
    ``read_live``: the rows are live already (tombstones left out where they were read) and
    are taken in the order given, not sorted: no figure depends on the order (tested in
    ``test_period_kpis_are_invariant_to_row_order``). So only the emails need ``source_id``
    (ties among inquiries and replies are broken by it); the other rows can leave it out,
    a string per row of a million.
    """
    take: Callable[[Sequence[Any]], list[Any]] = list if read_live else live
    return KpiData(
        rules,
        take(deals),
        take(tickets),
        take(emails),
        take(contacts),
        take(activities),
        history,
    )


class _OwnerOf(NamedTuple):
    """The two columns ``OwnerKey`` reads, for owners known only from a summary."""

    source: str
    owner_id: str | None


def _fold_since(
    since: dict[str, dt.datetime | None], cid: str, created: dt.datetime | None
) -> None:
    """Fold one deal's creation into its customer's first: the earliest, None (undated,
    always a customer) as soon as one deal is undated."""
    if cid not in since:
        since[cid] = created
    elif (old := since[cid]) is not None:
        since[cid] = None if created is None else min(old, created)


class DealSummary:
    """What the periods read from every deal, however old: each customer's first deal (the
    customers of a period), per owner too, and the customers whose deals have an owner.

    Why a summary: a period reads only the deals decided or quoted in it, but its customers
    are everyone with a deal created before its end. Folded one deal at a time, the deals of
    three years need not be held to compute the last twelve months.
    """

    def __init__(self) -> None:
        self.customer_since: dict[str, dt.datetime | None] = {}
        #: per (source, owner id) of the deals: that owner's customers and their first deal
        self.owner_since: dict[_OwnerOf, dict[str, dt.datetime | None]] = {}
        self.has_owner: set[str] = set()

    def add(self, deal: Any) -> None:
        owner = _OwnerOf(deal.source, deal.owner_id)
        per = self.owner_since.get(owner)
        if per is None:  # an owner of deals without a customer is an owner too
            per = self.owner_since[owner] = {}
        cid = deal.customer_id
        if not cid:
            return
        created = as_utc(deal.created_at)
        _fold_since(self.customer_since, cid, created)
        _fold_since(per, cid, created)
        if deal.owner_id:
            self.has_owner.add(cid)


class EmailHistory:
    """The emails before a window, folded in send order into what the window still reads.

    - each customer's latest two-way contact before the window (``last_two_way_contact``: an
      email with one of the other direction at most ``window`` before it, same instant counts);
    - the inbound emails sent before ``hold_from`` still waiting for a reply at ``hold_from``
      (no later outbound email in the same conversation, as ``first_responses`` pairs them):
      only they can be answered inside the window, or still be unanswered now.

    Why: the company KPIs read twelve months, but an inquiry can wait longer and a two-way
    contact can be older. Everything else before ``hold_from`` is not needed.
    """

    def __init__(self, window: dt.timedelta, hold_from: dt.datetime) -> None:
        self.window = window
        self.hold_from = hold_from
        #: per customer: latest two-way contact seen so far
        self.best: dict[str, dt.datetime] = {}
        self._last: dict[str, dict[str, dt.datetime]] = {"inbound": {}, "outbound": {}}
        self._by_thread: dict[tuple[str, str], list[tuple[dt.datetime, Any]]] = {}
        self._by_customer: dict[str, list[tuple[dt.datetime, Any]]] = {}
        self._pending: list[Any] | None = None

    def add(self, email: Any) -> None:
        """The next email in send order (ties in any order)."""
        t = _sent(email)
        if self._pending is None and t >= self.hold_from:
            self._pending = self._waiting()
        d, cid = email.direction, email.customer_id
        if cid and d in self._last:
            other = self._last["outbound" if d == "inbound" else "inbound"].get(cid)
            if other is not None and t - other <= self.window:
                best = self.best.get(cid)
                if best is None or t > best:
                    self.best[cid] = t
            self._last[d][cid] = t
        if self._pending is not None:
            return
        if d == "inbound":
            if email.thread_id:
                self._by_thread.setdefault((email.source, email.thread_id), []).append((t, email))
            else:
                self._by_customer.setdefault(cid or "", []).append((t, email))
        elif d == "outbound":  # a reply answers what was sent strictly before it
            if email.thread_id:
                self._answer(self._by_thread, (email.source, email.thread_id), t)
            if cid:
                self._answer(self._by_customer, cid, t)

    @staticmethod
    def _answer(
        waiting: dict[Any, list[tuple[dt.datetime, Any]]], key: Any, t: dt.datetime
    ) -> None:
        rows = waiting.get(key)
        if rows:
            left = [(w, e) for w, e in rows if w >= t]
            if left:
                waiting[key] = left
            else:
                del waiting[key]

    def _waiting(self) -> list[Any]:
        out = [
            e for part in (self._by_thread, self._by_customer) for v in part.values() for _, e in v
        ]
        self._by_thread, self._by_customer = {}, {}
        return out

    def waiting(self) -> list[Any]:
        """The inbound emails before ``hold_from`` without a reply before it (after ``add``)."""
        if self._pending is None:
            self._pending = self._waiting()
        return self._pending


@dataclass
class KpiHistory:
    """What the periods of a window read from rows older than it, as summaries.

    With it, ``KpiData`` is given only the rows of the window (deals decided or quoted in it,
    tickets opened or closed in it, leads created in it, emails and activities from
    ``recent_activity_days`` / ``two_way_contact.window_days`` before it, and the inquiries
    still waiting then), and gives the same table as with every row.
    """

    deals: DealSummary
    #: per customer: the latest two-way contact (email pair or conversation) before the window
    two_way_before: dict[str, dt.datetime]


class KpiData:
    """The live rows once (in canonical order, unless ``prepare_kpi_data(read_live=True)``),
    with the indexes every period needs."""

    def __init__(
        self,
        rules: HubRules,
        deals: list[Deal],
        tickets: list[Ticket],
        emails: list[Email],
        contacts: list[Contact],
        activities: list[Activity],
        history: KpiHistory | None = None,
    ) -> None:
        self.rules = rules
        self._groups: dict[str | None, _Group] = {}
        self._cost = activity_costs(rules)
        #: per period: every owner's group (``_owner_groups``)
        self._owner_periods: dict[tuple[dt.datetime, dt.datetime], dict[str, _Group]] = {}
        #: per owner: the owner's customers and their first deal's creation
        self._owner_deals: dict[str, dict[str, dt.datetime | None]] | None = None
        #: the company group's customers as arrays (``_behaviour``), built on first use
        self._company_behaviour: _Behaviour | None = None
        self.deals = deals
        self.tickets = tickets
        self.emails = [e for e in emails if e.sent_at is not None]
        self.contacts = contacts
        self.activities = activities
        self.responses = first_responses(self.emails, rules)
        sent_times: dict[str, list[dt.datetime]] = defaultdict(list)
        inbound: dict[str, list[dt.datetime]] = defaultdict(list)
        outbound: dict[str, list[dt.datetime]] = defaultdict(list)
        for em in self.emails:
            if cid := em.customer_id:
                when = _sent(em)
                sent_times[cid].append(when)
                if (way := em.direction) == "inbound":
                    inbound[cid].append(when)
                elif way == "outbound":  # a forwarded email is no contact with the customer
                    outbound[cid].append(when)
        #: per customer: every email's send time, sorted
        self.sent_times = {cid: sorted(v) for cid, v in sent_times.items()}
        #: per customer: every moment that closed a two-way contact, sorted (``_two_way``)
        self.two_way = _two_way(inbound, outbound, rules.kpis.two_way_contact.window_days)
        if history is None:
            summary = DealSummary()
            for d in deals:
                summary.add(d)
            history = KpiHistory(summary, {})
        self.history = history
        self.has_owner = history.deals.has_owner
        activity_times: dict[str, list[dt.datetime]] = defaultdict(list)
        conversations: dict[str, list[dt.datetime]] = defaultdict(list)
        talks = {k.casefold() for k in rules.kpis.two_way_contact.activity_kinds}
        for a in activities:
            if a.customer_id and (t := as_utc(a.occurred_at)) is not None:
                activity_times[a.customer_id].append(t)
                if (a.kind or "").casefold() in talks:
                    conversations[a.customer_id].append(t)
        for cid, t in history.two_way_before.items():  # two-way by itself, like a call
            conversations[cid].append(t)
        self.activity_times = {cid: sorted(v) for cid, v in activity_times.items()}
        for cid, held in conversations.items():
            self.two_way.setdefault(cid, []).extend(held)
        for times in self.two_way.values():
            times.sort()

    def _owner_groups(
        self, s: dt.datetime, e: dt.datetime, owner_key: OwnerKey
    ) -> dict[str, _Group]:
        """Every owner's rows of the period ``[s, e)``, cut from the company's time indexes.

        Why not index each owner's rows of all time: the owner table asks for one period (the
        current month), and indexing every owner's rows again (``decided_at`` per deal, a sort
        per owner and row kind) cost as much as the company's 12 periods on ``large``. Each
        part of the period is the company's slice split by owner, in the same order. What a
        period reads beyond its own rows: an owner's customers (all of the owner's deals, below)
        and replies to the period's inbound emails, which are sent inside it (after the inbound
        email, not after the period's end).
        """
        cached = self._owner_periods.get((s, e))
        if cached is not None:
            return cached
        company = self._group(None, None)

        def key(row: Any) -> str:
            return owner_key(row) or UNASSIGNED

        decided = company.decided.split(s, e, key)
        quoted = company.quoted.split(s, e, key)
        opened = company.opened.split(s, e, key)
        closed = company.closed.split(s, e, key)
        leads = company.leads.split(s, e, key)
        emails = company.emails.split(s, e, key)
        activities = company.activities.split(s, e, key)
        responses = company.responses.split(s, e, lambda r: key(r.reply))
        inbound = company.inbound.split(s, e, key)
        if self._owner_deals is None:
            merged: dict[str, dict[str, dt.datetime | None]] = defaultdict(dict)
            for of, since in self.history.deals.owner_since.items():
                into = merged[key(of)]
                for cid, created in since.items():
                    _fold_since(into, cid, created)
            self._owner_deals = dict(merged)
        empty = _Timeline()
        out: dict[str, _Group] = {}
        owners = set(self._owner_deals).union(
            *(p.keys() for p in (decided, quoted, opened, closed, leads, emails, activities)),
            responses.keys(),
            inbound.keys(),
        )
        for owner in owners:
            mails = emails.get(owner, empty)
            out[owner] = self._indexed(
                deals=[],
                decided=decided.get(owner, empty),
                quoted=quoted.get(owner, empty),
                opened=opened.get(owner, empty),
                closed=closed.get(owner, empty),
                leads=leads.get(owner, empty),
                emails=mails,
                activities=activities.get(owner, empty),
                responses=responses.get(owner, empty),
                inbound=inbound.get(owner, empty),
                outbound=[m for m in mails.rows if m.direction == "outbound"],
                customer_since=self._owner_deals.get(owner, {}),
            )
        self._owner_periods[(s, e)] = out
        return out

    @staticmethod
    def _indexed(
        *, outbound: list[Any], customer_since: dict[str, dt.datetime | None], **timelines: Any
    ) -> _Group:
        """A group from its time indexes, with its replies indexed by conversation."""
        replies_thread: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
        replies_customer: dict[str, list[dt.datetime]] = defaultdict(list)
        for m in outbound:
            if m.thread_id:
                replies_thread[(m.source, m.thread_id)].append(_sent(m))
            if m.customer_id:
                replies_customer[m.customer_id].append(_sent(m))
        for times in (*replies_thread.values(), *replies_customer.values()):
            times.sort()
        return _Group(
            **timelines,
            replies_thread=dict(replies_thread),
            replies_customer=dict(replies_customer),
            customer_since=customer_since,
        )

    def _group(self, group: str | None, owner_key: OwnerKey | None) -> _Group:
        """The company's rows indexed by time, built on its first period."""
        if None in self._groups:
            return self._groups[None]
        rules = self.rules
        responded: list[FirstResponse] = self.responses
        deals, tickets, contacts = self.deals, self.tickets, self.contacts
        activities, emails = self.activities, self.emails
        sent = _Timeline.by(emails, "sent_at")
        # the inbound emails in send order: a filter of the sorted emails keeps the order a
        # stable sort of the inbound emails alone would give
        inbound = _Timeline()
        for when, m in zip(sent.times, sent.rows, strict=True):
            if m.direction == "inbound":
                inbound.times.append(when)
                inbound.rows.append(m)
        built = self._indexed(
            deals=deals,
            decided=_Timeline(deals, lambda d: decided_at(d, rules)),
            quoted=_Timeline(deals, lambda d: quote_entered_at(d, rules)),
            opened=_Timeline.by(tickets, "opened_at"),
            closed=_Timeline.by([x for x in tickets if x.is_closed], "closed_at"),
            leads=_Timeline.by(filter(new_lead_test(rules), contacts), "created_at"),
            emails=sent,
            activities=_Timeline.by(activities, "occurred_at"),
            responses=_Timeline.by(responded, "inbound_at"),
            inbound=inbound,
            outbound=[m for m in emails if m.direction == "outbound"],
            customer_since=self.history.deals.customer_since,
        )
        self._groups[None] = built
        return built

    def _empty_group(self) -> _Group:
        """An owner seen only outside the period (and without deals): zeros and no customers."""
        e = _Timeline()
        return self._indexed(
            deals=[],
            decided=e,
            quoted=e,
            opened=e,
            closed=e,
            leads=e,
            emails=e,
            activities=e,
            responses=e,
            inbound=e,
            outbound=[],
            customer_since={},
        )

    def _unanswered(self, g: _Group, s: dt.datetime, e: dt.datetime) -> list[Email]:
        """``unanswered_inquiries(emails, rules, e - 1µs)`` restricted to those sent in
        ``[s, e)``, by binary search in the group's reply times (same result)."""
        as_of = e - dt.timedelta(microseconds=1)
        grace = dt.timedelta(hours=self.rules.kpis.unanswered_after_hours)
        out: list[tuple[dt.datetime, str, str, Email]] = []
        inbound = g.inbound
        lo, hi = bisect.bisect_left(inbound.times, s), bisect.bisect_left(inbound.times, e)
        for sent, m in zip(inbound.times[lo:hi], inbound.rows[lo:hi], strict=True):
            if as_of - sent < grace:
                continue
            if m.thread_id:
                later = g.replies_thread.get((m.source, m.thread_id), [])
            else:
                later = g.replies_customer.get(m.customer_id or "", [])
            # a reply after the inbound email and not after ``as_of``
            if bisect.bisect_right(later, sent) >= bisect.bisect_right(later, as_of):
                out.append((sent, m.source, m.source_id, m))
        out.sort(key=_by_sent_source_id)
        return [m for *_, m in out]

    def _behaviour_of(
        self, g: _Group, s: dt.datetime, e: dt.datetime, recent: dt.datetime, as_of: dt.datetime
    ) -> tuple[int, int, int, list[float]]:
        """The period's customers and their behaviour figures, one customer at a time (an
        owner's group: a few thousand customers). ``_Behaviour`` gives the same for the company.
        """
        bisect_left, bisect_right = bisect.bisect_left, bisect.bisect_right
        sent_times, activity_times, two_way = self.sent_times, self.activity_times, self.two_way
        has_owner = self.has_owner
        n_customers = with_email = covered = 0
        gaps: list[float] = []
        for cid, since in g.customer_since.items():
            if since is not None and since >= e:
                continue
            n_customers += 1
            sent = sent_times.get(cid)
            if sent and (i := bisect_left(sent, e)):
                last_sent = sent[i - 1]  # the latest email before ``e``
                with_email += last_sent >= s
                if last_sent >= recent and cid in has_owner:
                    held_at = activity_times.get(cid)
                    if held_at and (j := bisect_left(held_at, e)) and held_at[j - 1] >= recent:
                        covered += 1
            held = two_way.get(cid)
            if held and (j := bisect_right(held, as_of)):
                gaps.append((e - held[j - 1]).total_seconds() // 86400)

        return n_customers, with_email, covered, gaps

    def _behaviour(
        self, s: dt.datetime, e: dt.datetime, recent: dt.datetime, as_of: dt.datetime
    ) -> tuple[int, int, int, list[float]]:
        """``_behaviour_of`` for the company's group, over arrays of every customer at once.

        Why: the company's twelve periods each walked all 100,000 customers of ``large`` with
        two or three binary searches apiece (3 s of the step). The sorted times are held once
        as integer microseconds per customer (``_Behaviour``), and each period is a few array
        operations; ``tests/unified_model/test_kpi_behaviour_arrays.py`` holds it to the loop
        on every boundary instant.
        """
        if self._company_behaviour is None:
            self._company_behaviour = _Behaviour(self, self._group(None, None))
        return self._company_behaviour.period(s, e, recent, as_of)

    def values(
        self, s: dt.datetime, e: dt.datetime, group: str | None, owner_key: OwnerKey | None
    ) -> dict[str, KpiValue]:
        rules = self.rules
        k = rules.kpis
        if group is None or owner_key is None:
            g = self._group(None, None)
        else:
            g = self._owner_groups(s, e, owner_key).get(group) or self._empty_group()

        decided = g.decided.between(s, e)
        won = [d for d in decided if d.is_won]
        lost = [d for d in decided if not d.is_won]
        quoted = [d for d in decided if reached_quote(d, rules)]
        waiting = self._unanswered(g, s, e)
        value = math.fsum(d.amount or 0.0 for d in won)
        acts = g.activities.between(s, e)
        cost = math.fsum(map(self._cost, acts))
        opened = g.opened.between(s, e)
        closed = g.closed.between(s, e)
        resolved = [
            t for t in opened if t.is_closed and (c := as_utc(t.closed_at)) is not None and c < e
        ]
        handling = [h for t in closed if (h := handling_hours(t)) is not None]
        responses = [r.business_hours for r in g.responses.between(s, e)]
        kinds = {x.casefold() for x in k.contact_activity_kinds}
        n_contacts = len(g.emails.between(s, e)) + sum(
            1 for a in acts if (a.kind or "").casefold() in kinds
        )
        months = (e - s).total_seconds() / 86400 / DAYS_PER_MONTH

        # The customers of the period (an owner's: those with one of the owner's deals) and the
        # behaviour indicators over them. "Has an owner" is the customer's: any deal has one.
        # The latest email before ``e`` tells whether one is in [s, e) and in the recent
        # window; the latest two-way moment up to ``e`` is precomputed. The company's group
        # (100,000 customers a period on ``large``) is computed over arrays, an owner's group
        # one customer at a time; both give the same figures.
        recent = e - dt.timedelta(days=k.recent_activity_days)
        as_of = e - dt.timedelta(microseconds=1)
        if group is None or owner_key is None:  # the company: every customer, every period
            n_customers, with_email, covered, gaps = self._behaviour(s, e, recent, as_of)
        else:
            n_customers, with_email, covered, gaps = self._behaviour_of(g, s, e, recent, as_of)

        return {
            "new_leads": len(g.leads.between(s, e)),
            "new_quotes": len(g.quoted.between(s, e)),
            "won_deals": len(won),
            "lost_deals": len(lost),
            "quote_hit_rate": ratio(sum(1 for d in quoted if d.is_won), len(quoted)),
            "win_rate": ratio(len(won), len(decided)),
            "contract_value": value,
            "contract_value_annualised": math.fsum(annualised_value(d) for d in won),
            "activities": len(acts),
            "cost_of_sale": cost,
            "cost_of_sale_ratio": ratio(cost, value),
            "tickets_opened": len(opened),
            "tickets_closed": len(closed),
            "csat_mean": mean(t.satisfaction for t in closed if t.satisfaction is not None),
            "case_handling_median_hours": percentile(handling, 0.5),
            "case_handling_p90_hours": percentile(handling, 0.9),
            "resolution_rate": ratio(len(resolved), len(opened)),
            "tickets_reopened": sum(1 for t in opened if reopened(t)),
            "reopen_rate": reopen_rate(opened),
            "first_response_median_hours": percentile(responses, 0.5),
            "unanswered_inquiries": len(waiting),
            "oldest_unanswered_inquiry_days": whole_days(_sent(waiting[0]), e) if waiting else None,
            "contacts": n_contacts,
            "contacts_per_month": n_contacts / months if months else None,
            "customers": n_customers,
            "logged_email_share": ratio(with_email, n_customers),
            "coverage": ratio(covered, n_customers),
            "median_days_since_two_way_contact": percentile(gaps, 0.5),
        }


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
#: a customer whose first deal is undated: counted in every period
_ALWAYS = np.iinfo(np.int64).min


def _us(t: dt.datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (exact, unlike ``timestamp``)."""
    return (t - _EPOCH) // _MICROSECOND


class _Segments:
    """Sorted times per customer, flat (integer microseconds) with each customer's offsets."""

    def __init__(self, cids: list[str], times: dict[str, list[dt.datetime]]) -> None:
        lengths = [len(times.get(cid, ())) for cid in cids]
        self.start = np.zeros(len(cids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.start[1:])
        self.flat = np.fromiter(
            (_us(t) for cid in cids for t in times.get(cid, ())),
            dtype=np.int64,
            count=int(self.start[-1]),
        )

    def last(self, below: int, *, inclusive: bool = False) -> tuple[Any, Any]:
        """Per customer: whether it has a time before ``below`` (at or before, ``inclusive``)
        and the latest such time (undefined where it has none): ``bisect_left`` /
        ``bisect_right`` on each customer's list."""
        hit = self.flat <= below if inclusive else self.flat < below
        before = np.zeros(len(self.flat) + 1, dtype=np.int64)
        np.cumsum(hit, out=before[1:])
        count = before[self.start[1:]] - before[self.start[:-1]]
        has = count > 0
        at = np.where(has, self.start[:-1] + count - 1, 0)
        latest = self.flat[at] if len(self.flat) else np.zeros(len(count), dtype=np.int64)
        return has, latest


class _Behaviour:
    """The company group's customers with their email, activity and two-way contact times as
    arrays, for ``KpiData._behaviour``: the same figures as its per-customer loop."""

    def __init__(self, data: KpiData, g: _Group) -> None:
        cids = list(g.customer_since)
        self.since = np.fromiter(
            (_ALWAYS if t is None else _us(t) for t in g.customer_since.values()),
            dtype=np.int64,
            count=len(cids),
        )
        self.owned = np.fromiter((cid in data.has_owner for cid in cids), dtype=bool)
        self.sent = _Segments(cids, data.sent_times)
        self.held = _Segments(cids, data.activity_times)
        self.two_way = _Segments(cids, data.two_way)

    def period(
        self, s: dt.datetime, e: dt.datetime, recent: dt.datetime, as_of: dt.datetime
    ) -> tuple[int, int, int, list[float]]:
        e_us, s_us, recent_us = _us(e), _us(s), _us(recent)
        live = self.since < e_us
        has_sent, last_sent = self.sent.last(e_us)
        emailed = live & has_sent
        with_email = int(np.count_nonzero(emailed & (last_sent >= s_us)))
        has_held, last_held = self.held.last(e_us)
        covered = int(
            np.count_nonzero(
                emailed
                & (last_sent >= recent_us)
                & self.owned
                & has_held
                & (last_held >= recent_us)
            )
        )
        has_two, last_two = self.two_way.last(_us(as_of), inclusive=True)
        gap = live & has_two
        # whole days as ``(e - t).total_seconds() // 86400``: the same float division and floor
        days = ((e_us - last_two[gap]) / 1e6) // 86400
        return int(np.count_nonzero(live)), with_email, covered, days.tolist()
