"""``period_kpis`` indexes rows by time once and binary-searches each period; a straightforward
reference (every row list filtered per period and group, through the same public helpers) must
give the same table on generated data: several customers, owners, periods, threads and replies.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.unified_model.test_insights_properties import (
    NOW,
    PROPS,
    activities,
    contacts,
    deals,
    emails,
    tickets,
)
from unified_model.handover import as_utc, live
from unified_model.kpis import (
    DAYS_PER_MONTH,
    UNASSIGNED,
    FirstResponse,
    KpiValue,
    OwnerKey,
    _in,
    _sent,
    activity_cost,
    annualised_value,
    decided_at,
    first_responses,
    handling_hours,
    is_new_lead,
    last_two_way_contact,
    mean,
    percentile,
    period_kpis,
    periods,
    quote_entered_at,
    ratio,
    reached_quote,
    reopen_rate,
    reopened,
    unanswered_inquiries,
    whole_days,
)
from unified_model.rules import HubRules, parse_rules
from unified_model.tables import Activity, Contact, Deal, Email, Ticket


class _Naive:
    """The straightforward form: every row list filtered for every period and group (the
    form before the time indexes; kept here as the reference they must agree with)."""

    def __init__(
        self,
        rules: HubRules,
        deals: list[Deal],
        tickets: list[Ticket],
        emails: list[Email],
        contacts: list[Contact],
        activities: list[Activity],
    ) -> None:
        self.rules = rules
        self._parts: dict[str, dict[str, list[Any]]] | None = None
        self.deals = deals
        self.tickets = tickets
        self.emails = [e for e in emails if e.sent_at is not None]
        self.contacts = contacts
        self.activities = activities
        self.responses = first_responses(self.emails, rules)
        self.emails_by_customer: dict[str, list[Email]] = defaultdict(list)
        for em in self.emails:
            if em.customer_id:
                self.emails_by_customer[em.customer_id].append(em)
        self.has_owner = {d.customer_id for d in deals if d.customer_id and d.owner_id}
        self.activity_times: dict[str, list[dt.datetime]] = defaultdict(list)
        self.conversations: dict[str, list[dt.datetime]] = defaultdict(list)
        talks = {k.casefold() for k in rules.kpis.two_way_contact.activity_kinds}
        for a in activities:
            if a.customer_id and (t := as_utc(a.occurred_at)) is not None:
                self.activity_times[a.customer_id].append(t)
                if (a.kind or "").casefold() in talks:
                    self.conversations[a.customer_id].append(t)

    def _by_owner(self, owner_key: OwnerKey) -> dict[str, dict[str, list[Any]]]:
        """Every row kind split by owner, in the canonical order: built on the first call."""
        if self._parts is None:
            parts: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
            for r in self.responses:
                parts[owner_key(r.reply) or UNASSIGNED]["responses"].append(r)
            for name, rows in (
                ("deals", self.deals),
                ("tickets", self.tickets),
                ("contacts", self.contacts),
                ("activities", self.activities),
                ("emails", self.emails),
            ):
                for row in rows:
                    parts[owner_key(row) or UNASSIGNED][name].append(row)
            self._parts = parts
        return self._parts

    def values(
        self, s: dt.datetime, e: dt.datetime, group: str | None, owner_key: OwnerKey | None
    ) -> dict[str, KpiValue]:
        rules = self.rules
        k = rules.kpis

        def mine(row: Any) -> bool:
            return group is None or (
                owner_key is not None and (owner_key(row) or UNASSIGNED) == group
            )

        responded: list[FirstResponse] = self.responses
        if group is None or owner_key is None:
            deals, tickets, contacts = self.deals, self.tickets, self.contacts
            activities, emails = self.activities, self.emails
        else:  # the owner's rows, split once for all owners (not one pass per owner and period)
            part = self._by_owner(owner_key).get(group, {})
            deals, tickets = part.get("deals", []), part.get("tickets", [])
            contacts, activities = part.get("contacts", []), part.get("activities", [])
            emails = part.get("emails", [])
            responded = part.get("responses", [])

        decided = [d for d in deals if _in(decided_at(d, rules), s, e)]
        won = [d for d in decided if d.is_won]
        lost = [d for d in decided if not d.is_won]
        quoted = [d for d in decided if reached_quote(d, rules)]
        as_of_end = e - dt.timedelta(microseconds=1)
        waiting = [
            m
            for m in unanswered_inquiries(emails, rules, as_of_end)
            if _in(as_utc(m.sent_at), s, e)
        ]
        value = math.fsum(d.amount or 0.0 for d in won)
        acts = [a for a in activities if _in(as_utc(a.occurred_at), s, e)]
        cost = math.fsum(activity_cost(a, rules) for a in acts)
        opened = [t for t in tickets if _in(as_utc(t.opened_at), s, e)]
        closed = [t for t in tickets if t.is_closed and _in(as_utc(t.closed_at), s, e)]
        resolved = [
            t for t in opened if t.is_closed and (c := as_utc(t.closed_at)) is not None and c < e
        ]
        handling = [h for t in closed if (h := handling_hours(t)) is not None]
        responses = [
            r.business_hours for r in responded if _in(r.inbound_at, s, e) and mine(r.reply)
        ]
        kinds = {x.casefold() for x in k.contact_activity_kinds}
        n_contacts = sum(1 for m in emails if _in(as_utc(m.sent_at), s, e)) + sum(
            1 for a in acts if (a.kind or "").casefold() in kinds
        )
        months = (e - s).total_seconds() / 86400 / DAYS_PER_MONTH

        # The customers of the period (an owner's: those with one of the owner's deals) and the
        # behaviour indicators over them. "Has an owner" is the customer's: any deal has one.
        customers = sorted(
            {
                d.customer_id
                for d in deals
                if d.customer_id and ((c := as_utc(d.created_at)) is None or c < e)
            }
        )
        recent = e - dt.timedelta(days=k.recent_activity_days)
        as_of = e - dt.timedelta(microseconds=1)
        with_email = covered = 0
        gaps: list[float] = []
        for cid in customers:
            cem = self.emails_by_customer.get(cid, [])
            times = [as_utc(m.sent_at) for m in cem]
            with_email += any(_in(t, s, e) for t in times)
            covered += (
                cid in self.has_owner
                and any(_in(t, recent, e) for t in times)
                and any(_in(t, recent, e) for t in self.activity_times.get(cid, []))
            )
            last = last_two_way_contact(
                cem, k.two_way_contact.window_days, as_of, self.conversations.get(cid, [])
            )
            if last is not None:
                gaps.append((e - last).total_seconds() // 86400)
        n_customers = len(customers)

        return {
            "new_leads": sum(
                1 for c in contacts if is_new_lead(c, rules) and _in(as_utc(c.created_at), s, e)
            ),
            "new_quotes": sum(1 for d in deals if _in(quote_entered_at(d, rules), s, e)),
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


def _reference(
    rows: dict[str, list[Any]],
    rules: HubRules,
    start: dt.datetime,
    end: dt.datetime,
    owner_key: Any,
) -> list[tuple[str, str | None, dict[str, Any]]]:
    data = _Naive(
        rules,
        live(rows["deals"]),
        live(rows["tickets"]),
        live(rows["emails"]),
        live(rows["contacts"]),
        live(rows["activities"]),
    )
    groups: list[str | None] = [None]
    if owner_key is not None:
        seen = {
            owner_key(r) or UNASSIGNED
            for r in [*data.deals, *data.tickets, *data.emails, *data.contacts, *data.activities]
        }
        groups.extend(sorted(seen))
    return [
        (s.isoformat(), g, data.values(s, e, g, owner_key))
        for s, e in periods(start, end, rules)
        for g in groups
    ]


def _spread(items: list[Any], customers: list[str], owners: list[str], draw: st.DrawFn) -> None:
    """Give generated rows (one customer's by construction) several customers and owners."""
    for row in items:
        row.customer_id = draw(st.sampled_from(customers))
        if hasattr(row, "owner_id"):
            row.owner_id = draw(st.sampled_from(owners))


@st.composite
def portfolio(draw: st.DrawFn) -> dict[str, list[Any]]:
    customers = ["c1", "c2", "c3"]
    owners = ["o1", "o2", ""]
    rows = {
        "deals": draw(deals()),
        "tickets": draw(tickets()),
        "emails": draw(emails()) + draw(emails()),
        "contacts": draw(contacts()),
        "activities": draw(activities()),
    }
    for items in rows.values():
        _spread(items, customers, owners, draw)
    for i, em in enumerate(rows["emails"]):
        em.source_id = f"e{i}"
        em.thread_id = draw(st.sampled_from([None, "th1", "th2"]))
    return rows


RULES = (HubRules(), parse_rules({"kpis": {"period": "week"}}))


@PROPS
@given(rows=portfolio(), rules=st.sampled_from(RULES), by_owner=st.booleans())
def test_indexed_period_kpis_equal_the_straightforward_form(
    rows: dict[str, list[Any]], rules: HubRules, by_owner: bool
) -> None:
    start, end = NOW - dt.timedelta(days=150), NOW + dt.timedelta(hours=5)
    owner_key = (lambda r: getattr(r, "owner_id", None) or None) if by_owner else None
    table = period_kpis(
        rows["deals"],
        rows["tickets"],
        rows["emails"],
        rows["contacts"],
        rows["activities"],
        rules,
        start,
        end,
        owner_key=owner_key,
    )
    got = [(r.period_start.isoformat(), r.owner, dict(r.values)) for r in table.rows]
    assert got == _reference(rows, rules, start, end, owner_key)


def test_an_owners_reply_in_the_period_answers_the_owners_inquiry() -> None:
    """The owner table cuts each owner's rows from the company's period slices: a reply sent in
    the period by the same owner answers the inquiry; one by another owner, or none, does not
    (the owner table counts what the owner left unanswered)."""
    day = dt.timedelta(days=1)

    def mail(sid: str, direction: str, at: dt.datetime, thread: str, owner: str) -> Email:
        return Email(
            source="hubspot",
            source_id=sid,
            customer_id="c1",
            direction=direction,
            sent_at=at,
            thread_id=thread,
            owner_id=owner,
        )

    start = NOW - 30 * day
    mails = [
        mail("in1", "inbound", NOW - 10 * day, "t1", "o1"),
        mail("out1", "outbound", NOW - 9 * day, "t1", "o1"),  # o1 answers o1's inquiry
        mail("in2", "inbound", NOW - 8 * day, "t2", "o1"),
        mail("out2", "outbound", NOW - 7 * day, "t2", "o2"),  # another owner answers
        mail("in3", "inbound", NOW - 6 * day, "t3", "o2"),  # nobody answers
    ]
    rules = HubRules()
    table = period_kpis(
        [], [], mails, [], [], rules, start, NOW, owner_key=lambda r: r.owner_id or None
    )
    last = table.rows[-3:]  # the current period: company, o1, o2
    assert [(r.owner, r.values["unanswered_inquiries"]) for r in last] == [
        (None, 1),
        ("o1", 1),
        ("o2", 1),
    ]
    got = [(r.period_start.isoformat(), r.owner, dict(r.values)) for r in table.rows]
    rows = {"deals": [], "tickets": [], "emails": mails, "contacts": [], "activities": []}
    assert got == _reference(rows, rules, start, NOW, lambda r: r.owner_id or None)
