"""Each KPI and behaviour indicator, per customer and per period, equals the value worked out by
hand from its documented definition, including boundaries, business hours across time zones and
daylight saving time, deleted rows and reopened deals."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from unified_model.handover import CustomerFacts
from unified_model.kpis import (
    business_hours_between,
    customer_kpis,
    first_responses,
    owner_key_by_email,
    period_kpis,
    period_label,
    periods,
)
from unified_model.rules import HubRules, parse_rules
from unified_model.tables import Activity, Contact, Customer, Deal, Email, Owner, Ticket

BERLIN = ZoneInfo("Europe/Berlin")
RULES = HubRules()  # business hours 08-17 Mon-Fri Europe/Berlin
UTC_RULES = parse_rules({"kpis": {"business_hours": {"timezone": "UTC"}}})
NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)  # a Monday
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
# June 2026 in the business time zone: [2026-05-31 22:00Z, 2026-06-30 22:00Z)
JUNE_START = dt.datetime(2026, 6, 1, tzinfo=BERLIN).astimezone(dt.UTC)
JUNE_END = dt.datetime(2026, 7, 1, tzinfo=BERLIN).astimezone(dt.UTC)
IN_JUNE = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)
IN_MAY = dt.datetime(2026, 5, 20, 12, 0, tzinfo=dt.UTC)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]


def deal(sid: str, **kw: Any) -> Deal:
    return Deal(**{"source": "salesforce", "source_id": sid, "customer_id": "HUB-1", **kw})


def ticket(sid: str, **kw: Any) -> Ticket:
    return Ticket(**{"source": "salesforce", "source_id": sid, "customer_id": "HUB-1", **kw})


def email(sid: str, direction: str, sent_at: dt.datetime, **kw: Any) -> Email:
    base = {"source": "hubspot", "source_id": sid, "customer_id": "HUB-1"}
    return Email(**{**base, "direction": direction, "sent_at": sent_at, **kw})


def activity(sid: str, kind: str, **kw: Any) -> Activity:
    return Activity(
        **{"source": "salesforce", "source_id": sid, "customer_id": "HUB-1", "kind": kind, **kw}
    )


def contact(sid: str, **kw: Any) -> Contact:
    return Contact(**{"source": "hubspot", "source_id": sid, **kw})


def june(**rows: Any) -> dict[str, Any]:
    """The company row of June 2026 for the given rows."""
    args = {k: rows.get(k, []) for k in ("deals", "tickets", "emails", "contacts", "activities")}
    table = period_kpis(
        **args, rules=rows.get("rules", RULES), period_start=JUNE_START, period_end=JUNE_END
    )
    (row,) = table.company()
    return row.values


WON = Deal(
    source="salesforce", source_id="006WON", customer_id="HUB-1", is_closed=True, is_won=True
)


def cust(**kw: Any) -> dict[str, Any]:
    c = kw.pop("customer", Customer(id="HUB-1"))
    return customer_kpis(CustomerFacts(customer=c, **kw), RULES, NOW)


# ---- sales --------------------------------------------------------------------------------


def test_new_leads() -> None:
    contacts = [
        contact("00Q1", source="salesforce", is_lead=True, created_at=IN_JUNE),  # SF lead
        contact("h1", lifecycle_stage="marketingqualifiedlead", created_at=IN_JUNE),  # MQL
        # came in as a lead in June and is a customer now: still one of June's new leads
        contact("h2", lifecycle_stage="customer", created_at=IN_JUNE),
        contact("h6", lifecycle_stage="subscriber", created_at=IN_JUNE),  # never a lead
        contact("h3", lifecycle_stage="lead", created_at=IN_MAY),  # other period
        contact("h4", lifecycle_stage="lead", created_at=IN_JUNE, deleted=True),  # tombstone
        contact("h5", lifecycle_stage="lead", created_at=JUNE_END),  # end is exclusive
    ]
    assert june(contacts=contacts)["new_leads"] == 3


def test_new_quotes() -> None:
    deals = [
        deal("006A", stage_entered_at={"Proposal/Price Quote": IN_JUNE.isoformat()}),
        deal("9", source="hubspot", stage_entered_at={"contractsent": "2026-06-02T08:00:00Z"}),
        deal("006B", stage_entered_at={"Proposal/Price Quote": IN_MAY.isoformat()}),
        deal("006C", stage_entered_at={"Negotiation/Review": IN_JUNE.isoformat()}),
        # entered at 23:30Z on 31 May = 01:30 on 1 June in Berlin: June
        deal("006D", stage_entered_at={"Proposal/Price Quote": "2026-05-31T23:30:00+00:00"}),
    ]
    assert june(deals=deals)["new_quotes"] == 3


def test_quote_hit_rate_and_contract_value() -> None:
    won = {"is_closed": True, "is_won": True, "stage": "Closed Won"}
    lost = {"is_closed": True, "is_won": False, "stage": "Closed Lost"}
    deals = [
        deal(
            "006W1", **won, amount=12000.0, contract_term_months=24, close_date=dt.date(2026, 6, 3)
        ),
        deal("006W2", **won, amount=5000.0, close_date=dt.date(2026, 6, 20)),
        deal("006W3", **won, amount=1000.0, stage_entered_at={"Closed Won": IN_JUNE.isoformat()}),
        deal("006L1", **lost, close_date=dt.date(2026, 6, 4)),
        deal("006L2", **lost, close_date=dt.date(2026, 5, 4)),  # decided in May
        deal("006O", stage="Negotiation/Review", close_date=dt.date(2026, 6, 30)),  # still open
        deal("006X", **won, amount=99.0, close_date=dt.date(2026, 6, 3), deleted=True),
    ]
    v = june(deals=deals)
    # decided in June: 3 won, 1 lost -> win rate 3 / 4; none of them reached the quote stage
    assert (v["won_deals"], v["lost_deals"], v["win_rate"]) == (3, 1, 0.75)
    assert v["quote_hit_rate"] is None
    # 12000 + 5000 + 1000
    assert v["contract_value"] == 18000.0
    # 12000 * 12 / 24 = 6000 (recurring) + 5000 + 1000 (one-off: at face value)
    assert v["contract_value_annualised"] == 12000.0
    assert june(deals=[d for d in deals if not d.is_closed])["win_rate"] is None


def test_quote_hit_rate_counts_only_deals_that_reached_the_quote_stage() -> None:
    quote = {"Proposal/Price Quote": IN_MAY.isoformat()}
    won = {"is_closed": True, "is_won": True, "stage": "Closed Won"}
    lost = {"is_closed": True, "is_won": False, "stage": "Closed Lost"}
    deals = [
        deal("006Q1", **won, close_date=dt.date(2026, 6, 3), stage_entered_at=quote),
        deal("006Q2", **lost, close_date=dt.date(2026, 6, 4), stage_entered_at=quote),
        deal("006Q3", **lost, close_date=dt.date(2026, 6, 5), stage_entered_at=quote),
        # lost before any quote: counts in the win rate only
        deal("006N1", **lost, close_date=dt.date(2026, 6, 6)),
        deal("006N2", **lost, close_date=dt.date(2026, 6, 7)),
    ]
    v = june(deals=deals)
    assert v["quote_hit_rate"] == pytest.approx(1 / 3)  # 1 won of 3 quoted
    assert v["win_rate"] == pytest.approx(1 / 5)  # 1 won of 5 decided
    c = cust(deals=deals)
    assert (c["quote_hit_rate"], c["win_rate"]) == (pytest.approx(1 / 3), pytest.approx(1 / 5))


def test_cost_of_sale() -> None:
    acts = [
        activity(
            "00T1", "call", occurred_at=IN_JUNE, duration_seconds=1800
        ),  # 15 + 0.5 h * 80 = 55
        activity("00T2", "email", occurred_at=IN_JUNE),  # 5
        activity("00T3", "task", occurred_at=IN_JUNE, duration_seconds=7200),  # 10 + 2 h * 80 = 170
        activity("00T4", "meeting", occurred_at=IN_JUNE),  # unknown kind costs as a task: 10
        activity("00T5", "call", occurred_at=IN_MAY, duration_seconds=3600),  # May
    ]
    won = deal("006W", is_closed=True, is_won=True, amount=12000.0, close_date=dt.date(2026, 6, 3))
    v = june(deals=[won], activities=acts)
    assert v["cost_of_sale"] == pytest.approx(240.0)  # 55 + 5 + 170 + 10
    assert v["cost_of_sale_ratio"] == pytest.approx(0.02)  # 240 / 12000
    assert june(activities=acts)["cost_of_sale_ratio"] is None  # nothing won


# ---- service ------------------------------------------------------------------------------


def closed_ticket(sid: str, hours: float, **kw: Any) -> Ticket:
    opened = IN_JUNE - dt.timedelta(hours=hours)
    return ticket(sid, opened_at=opened, closed_at=IN_JUNE, is_closed=True, **kw)


def test_customer_satisfaction() -> None:
    tickets = [
        closed_ticket("1", 1, satisfaction=5.0),
        closed_ticket("2", 1, satisfaction=4.0),
        closed_ticket("3", 1),  # no rating
        closed_ticket("4", 1, satisfaction=2.0),
        ticket("5", opened_at=IN_MAY, closed_at=IN_MAY, is_closed=True, satisfaction=1.0),  # May
    ]
    assert june(tickets=tickets)["csat_mean"] == pytest.approx(11 / 3)  # (5 + 4 + 2) / 3
    assert june(tickets=[])["csat_mean"] is None


def test_case_handling_time() -> None:
    tickets = [closed_ticket(str(h), h) for h in (1, 2, 3, 4, 10)]
    v = june(tickets=tickets)
    assert v["case_handling_median_hours"] == 3.0
    # p90: rank (5 - 1) * 0.9 = 3.6 -> 4 + 0.6 * (10 - 4) = 7.6
    assert v["case_handling_p90_hours"] == pytest.approx(7.6)
    assert june()["case_handling_median_hours"] is None  # no tickets at all


def test_resolution_rate() -> None:
    tickets = [
        ticket("1", opened_at=IN_JUNE, closed_at=IN_JUNE + HOUR, is_closed=True),
        ticket("2", opened_at=IN_JUNE, closed_at=IN_JUNE + DAY, is_closed=True),
        ticket("3", opened_at=IN_JUNE, closed_at=JUNE_END + HOUR, is_closed=True),  # after June
        ticket("4", opened_at=IN_JUNE),  # open
        ticket("5", opened_at=IN_MAY, closed_at=IN_JUNE, is_closed=True),  # opened in May
    ]
    v = june(tickets=tickets)
    assert (v["tickets_opened"], v["tickets_closed"]) == (4, 3)
    assert v["resolution_rate"] == 0.5  # 2 of the 4 opened in June closed by its end


def test_reopen_rate_per_owner_and_per_customer() -> None:
    owners = [
        Owner(source="salesforce", source_id="005A", email="ann@example.com"),
        Owner(source="salesforce", source_id="005B", email="bob@example.com"),
    ]
    tickets = [
        # Ann: 3 opened in June; 1 closed, 1 reopened and open again, 1 open never closed
        ticket("1", owner_id="005A", opened_at=IN_JUNE, closed_at=IN_JUNE, is_closed=True),
        ticket("2", owner_id="005A", opened_at=IN_JUNE, reopened_count=1),
        ticket("3", owner_id="005A", opened_at=IN_JUNE),
        # Bob: 2 opened in June, both closed, one of them after a reopen (closed again)
        ticket("4", owner_id="005B", opened_at=IN_JUNE, is_closed=True, reopened_count=2),
        ticket("5", owner_id="005B", opened_at=IN_JUNE, is_closed=True),
        # opened in May: not June's cohort, whatever happened to it
        ticket("6", owner_id="005B", opened_at=IN_MAY, reopened_count=1),
    ]
    table = period_kpis(
        [], tickets, [], [], [], RULES, JUNE_START, JUNE_END, owner_key_by_email(owners)
    )
    rows = {r.owner: r.values for r in table.rows}
    # Ann: closed at least once: 1 and 2; reopened: 2 -> 1/2. Bob: 4 and 5; reopened 4 -> 1/2
    assert (
        rows["ann@example.com"]["tickets_reopened"],
        rows["ann@example.com"]["reopen_rate"],
    ) == (
        1,
        0.5,
    )
    assert rows["bob@example.com"]["reopen_rate"] == 0.5
    # the company: 2 reopened of 4 closed at least once
    assert (rows[None]["tickets_reopened"], rows[None]["reopen_rate"]) == (2, 0.5)
    # per customer, all its tickets: closed at least once 1, 2, 4, 5, 6; reopened 2, 4, 6
    v = cust(tickets=tickets)
    assert (v["reopened_tickets"], v["reopen_rate"]) == (3, 0.6)
    # nothing ever closed: no rate (not 0)
    assert june(tickets=[ticket("7", opened_at=IN_JUNE)])["reopen_rate"] is None


# ---- first response (business hours) --------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "berlin", "in_utc"),
    [
        # Monday 30 March (CEST, UTC+2): 07:30Z = 09:30 local, 14:30Z = 16:30 local -> 7 h;
        # in UTC business hours it counts from 08:00Z -> 6.5 h
        (utc(2026, 3, 30, 7, 30), utc(2026, 3, 30, 14, 30), 7.0, 6.5),
        # across the DST change (Sun 29 March): Fri 15:30Z = 16:30 CET -> 0.5 h until 17:00,
        # Mon 06:30Z = 08:30 CEST -> 0.5 h from 08:00: 1.0 h; in UTC: Fri 15:30-17:00 = 1.5 h
        (utc(2026, 3, 27, 15, 30), utc(2026, 3, 30, 6, 30), 1.0, 1.5),
        # Saturday inquiry answered Monday 09:00 local (07:00Z): 1 h in Berlin, 0 h in UTC
        (utc(2026, 6, 13, 9, 0), utc(2026, 6, 15, 7, 0), 1.0, 0.0),
        # reply before the inquiry (clock skew) counts as nothing
        (utc(2026, 6, 15, 9, 0), utc(2026, 6, 15, 8, 0), 0.0, 0.0),
    ],
)
def test_business_hours_between(
    start: dt.datetime, end: dt.datetime, berlin: float, in_utc: float
) -> None:
    assert business_hours_between(start, end, RULES.kpis.business_hours) == pytest.approx(berlin)
    assert business_hours_between(start, end, UTC_RULES.kpis.business_hours) == pytest.approx(
        in_utc
    )


def test_first_response_pairs_threads_and_counts_waiting_once() -> None:
    mon = dt.datetime(2026, 6, 15, tzinfo=BERLIN)  # local Monday midnight (CEST)
    emails = [
        # thread T1: two inquiries (09:00, 10:00) wait for the 12:00 reply -> one response, 3 h
        email("i1", "inbound", mon + 9 * HOUR, thread_id="T1"),
        email("i2", "inbound", mon + 10 * HOUR, thread_id="T1"),
        email("x", "outbound", mon + 11 * HOUR, thread_id="T2"),  # another thread: no reply
        email("r1", "outbound", mon + 12 * HOUR, thread_id="T1"),
        # no thread id: any later outbound email to the customer answers; 13:00 -> 13:30
        email("i3", "inbound", mon + 13 * HOUR),
        email("r2", "outbound", mon + 13.5 * HOUR, thread_id="T9"),
        # unanswered inquiry: not counted
        email("i4", "inbound", mon + 16 * HOUR, thread_id="T3"),
        # a deleted reply does not answer
        email("i5", "inbound", mon + 9 * HOUR, thread_id="T4"),
        email("r5", "outbound", mon + 10 * HOUR, thread_id="T4", deleted=True),
    ]
    got = [(r.reply.source_id, r.business_hours) for r in first_responses(emails, RULES)]
    assert got == [("r1", 3.0), ("r2", 0.5)]
    # median of [3.0, 0.5] = 1.75
    assert cust(emails=emails)["first_response_median_hours"] == pytest.approx(1.75)
    assert cust(emails=emails[6:])["first_response_median_hours"] is None


def test_first_response_in_period_is_attributed_to_the_replying_owner() -> None:
    mon = dt.datetime(2026, 6, 15, tzinfo=BERLIN)
    emails = [
        email("i1", "inbound", mon + 9 * HOUR, thread_id="T1"),
        email("r1", "outbound", mon + 11 * HOUR, thread_id="T1", owner_id="o1"),
        email("i2", "inbound", mon + 9 * HOUR, thread_id="T2"),
        email("r2", "outbound", mon + 15 * HOUR, thread_id="T2", owner_id="o2"),
    ]
    table = period_kpis(
        [], [], emails, [], [], RULES, JUNE_START, JUNE_END, owner_key=lambda r: r.owner_id
    )
    by_owner = {r.owner: r.values["first_response_median_hours"] for r in table.rows}
    # company: median(2, 6) = 4; o1 answered in 2 h, o2 in 6 h; inbound emails have no owner
    assert by_owner == {None: 4.0, "o1": 2.0, "o2": 6.0, "unassigned": None}


# ---- contact behaviour --------------------------------------------------------------------


def test_days_since_last_two_way_contact() -> None:
    emails = [
        email("a", "inbound", utc(2026, 6, 1, 10, 0)),
        email("b", "outbound", utc(2026, 6, 5, 10, 0)),  # 4 days after a: two-way at 5 June
        email("c", "outbound", utc(2026, 6, 12, 10, 0)),  # last inbound 11 days before: one-way
        email("d", "inbound", utc(2026, 6, 16, 9, 0)),  # after now: not yet
    ]
    v = cust(emails=emails)
    assert v["last_two_way_contact_at"] == "2026-06-05T10:00:00+00:00"
    assert v["days_since_two_way_contact"] == 10  # 5 June 10:00 -> 15 June 10:00
    # exactly 7 days apart still counts: inbound 8 June 10:00, outbound 15 June 10:00 = 0 days
    edge = [email("e", "inbound", utc(2026, 6, 8, 10, 0)), email("f", "outbound", NOW)]
    assert cust(emails=edge)["days_since_two_way_contact"] == 0
    late = [email("e", "inbound", utc(2026, 6, 8, 9, 59)), email("f", "outbound", NOW)]
    assert cust(emails=late)["days_since_two_way_contact"] is None
    assert cust()["days_since_two_way_contact"] is None  # no emails at all


def test_contacts_per_month() -> None:
    emails = [
        email(f"e{i}", "inbound" if i % 2 else "outbound", NOW - i * 10 * DAY) for i in range(6)
    ]
    emails.append(email("old", "inbound", NOW - 91 * DAY))  # outside the 90-day window
    acts = [activity(f"c{i}", "call", occurred_at=NOW - i * DAY) for i in range(3)]
    acts.append(activity("t", "task", occurred_at=NOW))  # tasks are not customer contacts
    v = cust(emails=emails, activities=acts)
    assert v["contacts_per_month"] == pytest.approx(9 * 30.4375 / 90)  # (6 + 3) per 90 days
    assert v["logged_emails"] == 7
    # per period: June has 30 days -> 9 contacts * 30.4375 / 30
    in_june = [e.model_copy(update={"sent_at": IN_JUNE}) for e in emails[:6]]
    acts_june = [a.model_copy(update={"occurred_at": IN_JUNE}) for a in acts]
    p = june(emails=in_june, activities=acts_june)
    assert p["contacts"] == 9
    assert p["contacts_per_month"] == pytest.approx(9 * 30.4375 / 30)


def test_logged_email_share_and_coverage_per_period() -> None:
    deals = [
        deal("006A", customer_id="HUB-1", owner_id="005X"),
        deal("006B", customer_id="HUB-2", owner_id="005X"),
        deal("006C", customer_id="HUB-3"),
        deal("006D", customer_id="HUB-4", owner_id="005X", created_at=JUNE_END),  # after June
    ]
    emails = [
        email("e1", "outbound", IN_JUNE, customer_id="HUB-1"),
        email("e2", "outbound", IN_JUNE, customer_id="HUB-2"),
        email("e3", "outbound", IN_JUNE, customer_id="HUB-3", deleted=True),
    ]
    acts = [
        activity("a1", "call", customer_id="HUB-1", occurred_at=JUNE_END - 2 * DAY),
        activity("a2", "call", customer_id="HUB-2", occurred_at=JUNE_END - 31 * DAY),  # not recent
    ]
    v = june(deals=deals, emails=emails, activities=acts)
    assert v["customers"] == 3  # HUB-4's only deal was created after June
    assert v["logged_email_share"] == pytest.approx(2 / 3)  # HUB-1, HUB-2
    assert v["coverage"] == pytest.approx(1 / 3)  # only HUB-1: owner + recent call + email


def test_customer_coverage_needs_owner_activity_and_email() -> None:
    c = Customer(id="HUB-1", owner_email="ada@example.com")
    e = [email("e", "outbound", NOW - 3 * DAY)]
    a = [activity("a", "task", occurred_at=NOW - 29 * DAY)]
    assert cust(customer=c, emails=e, activities=a)["coverage"] == 1
    assert cust(customer=Customer(id="HUB-1"), emails=e, activities=a)["coverage"] == 0
    assert cust(customer=c, emails=e)["coverage"] == 0
    old = [activity("a", "task", occurred_at=NOW - 31 * DAY)]
    assert cust(customer=c, emails=e, activities=old)["coverage"] == 0


# ---- per customer: values, health ---------------------------------------------------------


def test_customer_deal_and_ticket_figures_ignore_tombstones_and_follow_reopened_deals() -> None:
    deals = [
        deal("006W", is_closed=True, is_won=True, amount=6000.0, contract_term_months=6),
        deal("006R", stage="Negotiation/Review", amount=9000.0),  # won once, now reopened
        deal("006L", is_closed=True, is_won=False),
        deal("006D", is_closed=True, is_won=True, amount=1.0, deleted=True),
    ]
    tickets = [
        ticket("1", priority="Critical"),
        ticket("2", is_closed=True, opened_at=NOW - 2 * HOUR, closed_at=NOW, satisfaction=4.0),
        ticket("3", priority="Critical", deleted=True),
    ]
    acts = [activity("a", "call", duration_seconds=3600)]  # 15 + 80 = 95
    v = cust(deals=deals, tickets=tickets, activities=acts)
    assert (v["won_deals"], v["open_deals"]) == (1, 1)
    assert v["contract_value"] == 6000.0
    assert v["contract_value_annualised"] == 12000.0  # 6000 * 12 / 6
    assert v["win_rate"] == 0.5  # 1 won / (1 won + 1 lost)
    assert v["quote_hit_rate"] is None  # no deal reached the quote stage
    assert v["cost_of_sale_ratio"] == pytest.approx(95 / 6000)
    assert (v["open_tickets"], v["open_critical_tickets"]) == (1, 1)
    assert v["resolution_rate"] == 0.5
    assert v["case_handling_median_hours"] == 2.0
    assert v["csat_mean"] == 4.0


def test_health_score_weights() -> None:
    c = Customer(id="HUB-1", usage_score=80.0)
    tickets = [
        ticket("1", priority="Critical"),  # open critical: tickets component 1 - 0.5 = 0.5
        ticket("2", is_closed=True, satisfaction=5.0),  # CSAT 5 -> (5 - 1) / 4 = 1.0
    ]
    emails = [
        email("i", "inbound", NOW - 10 * DAY),
        email("o", "outbound", NOW - 9 * DAY),  # two-way 9 days ago -> 1 - 9 / 90 = 0.9
    ]
    v = cust(customer=c, tickets=tickets, emails=emails, deals=[WON])
    # 100 * (0.35 * 0.5 + 0.30 * 0.8 + 0.20 * 0.9 + 0.15 * 1.0) = 100 * 0.745
    assert v["health_score"] == pytest.approx(74.5)


def test_health_score_leaves_out_components_without_data() -> None:
    # no tickets (1.0), no usage, no CSAT, never a two-way contact (0.0):
    # 100 * (0.35 * 1.0 + 0.20 * 0.0) / (0.35 + 0.20) = 63.636... -> 63.6
    assert cust(deals=[WON])["health_score"] == pytest.approx(63.6)


def test_prospects_have_no_health_score() -> None:
    # the same never-contacted, ticket-free company scores 63.6 as a customer (above); as a
    # prospect it gets none, so it cannot outrank a paying customer with a critical ticket
    assert cust()["health_score"] is None
    assert cust(deals=[deal("006O", stage="Prospecting")])["health_score"] is None
    paying = cust(deals=[WON], tickets=[ticket("1", priority="Critical")])
    assert paying["health_score"] == pytest.approx(100 * 0.35 * 0.5 / 0.55, abs=0.05)


# ---- periods and owners -------------------------------------------------------------------


def test_periods_are_calendar_months_in_the_business_time_zone() -> None:
    got = periods(utc(2026, 1, 15), utc(2026, 3, 10), RULES)
    assert got == [
        (utc(2026, 1, 15), utc(2026, 1, 31, 23)),  # Berlin midnight 1 Feb = 23:00Z (CET)
        (utc(2026, 1, 31, 23), utc(2026, 2, 28, 23)),
        (utc(2026, 2, 28, 23), utc(2026, 3, 10)),
    ]
    quarters = parse_rules({"kpis": {"period": "quarter"}})
    assert [e for _, e in periods(utc(2026, 2, 1), utc(2026, 8, 1), quarters)] == [
        utc(2026, 3, 31, 22),  # 1 April 00:00 CEST
        utc(2026, 6, 30, 22),
        utc(2026, 8, 1),
    ]
    weeks = parse_rules({"kpis": {"period": "week", "business_hours": {"timezone": "UTC"}}})
    assert periods(NOW, NOW + 8 * DAY, weeks)[0] == (NOW, utc(2026, 6, 22))  # next Monday
    # labels name the local calendar period: June starts on 31 May in UTC
    assert period_label(JUNE_START, RULES) == "2026-06"
    assert period_label(utc(2026, 3, 31, 22), quarters) == "2026-Q2"
    assert period_label(NOW, weeks) == "2026-W25"
    table = period_kpis([], [], [], [], [], RULES, JUNE_START, JUNE_END)
    assert [r["period"] for r in table.as_records()] == ["2026-06"]


def test_owner_rows_merge_one_person_across_both_crms() -> None:
    owners = [
        Owner(source="salesforce", source_id="005A", email="Alice@Example.com"),
        Owner(source="hubspot", source_id="77", email="alice@example.com"),
        Owner(source="hubspot", source_id="88"),  # no email
    ]
    won = {"is_closed": True, "is_won": True, "close_date": dt.date(2026, 6, 3)}
    deals = [
        deal("006A", owner_id="005A", amount=100.0, **won),
        deal("9", source="hubspot", owner_id="77", amount=50.0, **won),
        deal("10", source="hubspot", owner_id="88", amount=7.0, **won),
        deal("006Z", amount=1.0, **won),
    ]
    table = period_kpis(
        deals, [], [], [], [], RULES, JUNE_START, JUNE_END, owner_key_by_email(owners)
    )
    values = {r.owner: r.values["contract_value"] for r in table.rows}
    assert values == {None: 158.0, "alice@example.com": 150.0, "hubspot:88": 7.0, "unassigned": 1.0}
    assert [r["owner"] for r in table.as_records()] == [
        None,
        "alice@example.com",
        "hubspot:88",
        "unassigned",
    ]


def test_a_call_or_meeting_is_a_two_way_contact_and_a_note_is_not() -> None:
    emails = [
        email("a", "inbound", utc(2026, 6, 1, 10, 0)),
        email("b", "outbound", utc(2026, 6, 2, 10, 0)),  # two-way by email on 2 June
    ]
    acts = [
        activity("call1", "call", occurred_at=utc(2026, 6, 9, 15, 0)),  # a conversation
        activity("note1", "note", occurred_at=utc(2026, 6, 12, 9, 0)),  # one-way: not counted
        activity("meet1", "meeting", occurred_at=utc(2026, 6, 16, 9, 0)),  # after now: not yet
        activity("call0", "call", occurred_at=utc(2026, 6, 11, 9, 0), deleted=True),  # tombstone
    ]
    v = cust(emails=emails, activities=acts)
    assert v["last_two_way_contact_at"] == "2026-06-09T15:00:00+00:00"
    assert v["days_since_two_way_contact"] == 5  # 9 June 15:00 -> 15 June 10:00
    # a meeting alone, no email at all
    only = [activity("meet2", "meeting", occurred_at=utc(2026, 6, 14, 11, 0))]
    assert cust(activities=only)["days_since_two_way_contact"] == 0
    # configured to count emails only
    k = RULES.kpis
    no_talks = replace(k.two_way_contact, activity_kinds=())
    rules = replace(RULES, kpis=replace(k, two_way_contact=no_talks))
    c = Customer(id="HUB-1")
    got = customer_kpis(CustomerFacts(customer=c, emails=emails, activities=acts), rules, NOW)
    assert got["last_two_way_contact_at"] == "2026-06-02T10:00:00+00:00"


def test_last_two_way_contact_day_is_the_business_day() -> None:
    # a reply at 23:30 UTC on 10 June is 01:30 on 11 June in Berlin: the written day is 11 June
    emails = [
        email("i", "inbound", utc(2026, 6, 10, 20, 0)),
        email("o", "outbound", utc(2026, 6, 10, 23, 30)),
    ]
    v = cust(emails=emails)
    assert v["last_two_way_contact_at"] == "2026-06-10T23:30:00+00:00"
    assert v["last_two_way_contact_on"] == "2026-06-11"


def test_unanswered_inquiries_count_and_age() -> None:
    emails = [
        # answered in its thread
        email("i1", "inbound", NOW - 5 * DAY, thread_id="a"),
        email("o1", "outbound", NOW - 4 * DAY, thread_id="a"),
        # a forward to a colleague is no answer: waiting since 3 days (Friday 12 June)
        email("i2", "inbound", NOW - 3 * DAY, thread_id="b"),
        email("f2", "forwarded", NOW - 3 * DAY + HOUR, thread_id="b"),
        # an outbound email in another thread does not answer thread "c"
        email("i3", "inbound", NOW - 2 * DAY, thread_id="c"),
        # 23 hours old: within the 24-hour grace, not counted yet
        email("i4", "inbound", NOW - 23 * HOUR, thread_id="d"),
        email("i5", "inbound", NOW - 9 * DAY, thread_id="e", deleted=True),  # tombstone
    ]
    v = cust(emails=emails)
    assert v["unanswered_inquiries"] == 2
    assert v["oldest_unanswered_inquiry_on"] == "2026-06-12"
    assert v["oldest_unanswered_inquiry_days"] == 3
    # without a thread id, any later reply to the same customer answers it
    loose = [email("i", "inbound", NOW - 3 * DAY), email("o", "outbound", NOW - 2 * DAY)]
    assert cust(emails=loose)["unanswered_inquiries"] == 0


def test_unanswered_inquiries_per_owner_in_the_period() -> None:
    emails = [
        email("i1", "inbound", IN_JUNE, thread_id="a", owner_id="o1"),
        email("i2", "inbound", IN_JUNE + HOUR, thread_id="b", owner_id="o2"),
        email("r2", "outbound", IN_JUNE + 2 * HOUR, thread_id="b", owner_id="o2"),
    ]
    table = period_kpis(
        [], [], emails, [], [], RULES, JUNE_START, JUNE_END, owner_key=lambda r: r.owner_id
    )
    by_owner = {r.owner: r.values for r in table.rows}
    assert by_owner[None]["unanswered_inquiries"] == 1
    assert (by_owner["o1"]["unanswered_inquiries"], by_owner["o2"]["unanswered_inquiries"]) == (
        1,
        0,
    )
    # at the period's end (30 June 24:00 Berlin) the inquiry of 10 June 12:00Z has waited 20 days
    assert by_owner["o1"]["oldest_unanswered_inquiry_days"] == 20
