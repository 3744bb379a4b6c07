"""evaluate_handover puts each customer in the right status for each rule, explains it with
reasons and a summary an account manager can act on, and keeps ready/handover dates across
evaluations; transition records only real status changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from unified_model.handover import CustomerFacts, LiveRows, evaluate_handover, live, transition
from unified_model.rules import HubRules, parse_rules
from unified_model.tables import Customer, Deal, HandoverState, Owner, Ticket

NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)  # a Monday
DAY = dt.timedelta(days=1)
RULES = HubRules()

AM = Owner(
    source="salesforce",
    source_id="005AM",
    email="ada@example.com",
    first_name="Ada",
    last_name="Meyer",
    department="Account Management",
)
SELLER = Owner(
    source="salesforce",
    source_id="005SE",
    email="sam@example.com",
    first_name="Sam",
    last_name="Seller",
    department="Sales",
)


def customer(**kw: Any) -> Customer:
    base: dict[str, Any] = {
        "id": "HUB-1",
        "name": "Acme",
        "contracted_modules": ["Billing", "Reporting"],
        "modules_in_use": ["Billing", "Reporting"],
        "onboarding_completed": True,
        "usage_score": 80.0,
    }
    return Customer(**{**base, **kw})


def won_deal(source_id: str = "006WON", **kw: Any) -> Deal:
    base: dict[str, Any] = {
        "source": "salesforce",
        "source_id": source_id,
        "customer_id": "HUB-1",
        "name": "Acme subscription",
        "stage": "Closed Won",
        "is_closed": True,
        "is_won": True,
        "amount": 12000.0,
        "close_date": dt.date(2026, 1, 10),
    }
    return Deal(**{**base, **kw})


def ticket(source_id: str, **kw: Any) -> Ticket:
    base: dict[str, Any] = {
        "source": "salesforce",
        "source_id": source_id,
        "customer_id": "HUB-1",
        "priority": "Low",
        "category": "Question",
        "opened_at": NOW - 60 * DAY,
    }
    return Ticket(**{**base, **kw})


def facts(**kw: Any) -> CustomerFacts:
    kw.setdefault("customer", customer())
    kw.setdefault("deals", [won_deal()])
    kw.setdefault("owner", SELLER)
    return CustomerFacts(**kw)


def prev(status: str, **kw: Any) -> HandoverState:
    return HandoverState(customer_id="HUB-1", status=status, **kw)


def rules_with(**handover: Any) -> HubRules:
    return parse_rules({"handover": handover})


def keys(decision: Any) -> dict[str, bool]:
    return {c.key: c.passed for c in decision.reasons}


# ---- new sales ----------------------------------------------------------------------------


def test_no_deal_is_new_sales() -> None:
    d = evaluate_handover(facts(deals=[]), RULES, NOW)
    assert d.status == "new_sales"
    assert d.summary == "new sales: no deal yet"
    assert d.ready_since is None and d.handed_over_on is None


def test_open_and_lost_deals_are_still_new_sales() -> None:
    deals = [
        won_deal("006OPEN", stage="Negotiation/Review", is_closed=False, is_won=False),
        won_deal("006LOST", stage="Closed Lost", is_won=False),
        won_deal("006GONE", deleted=True),  # a deleted won deal is no contract
    ]
    d = evaluate_handover(facts(deals=deals), RULES, NOW)
    assert d.status == "new_sales"
    assert keys(d) == {"won_deal": False}
    assert "2 deals in progress or lost" in d.summary


# ---- maturity -----------------------------------------------------------------------------


def test_mature_customer_with_seller_is_ready_for_handover() -> None:
    d = evaluate_handover(facts(), RULES, NOW)
    assert d.status == "ready_for_handover"
    assert d.rule_kind == "maturity"
    assert all(c.passed for c in d.reasons if c.key != "owner_is_account_manager")
    assert keys(d)["owner_is_account_manager"] is False
    # first sight: when maturity was reached is unknown, and the hub does not invent it
    assert d.ready_since is None and d.handed_over_on is None
    assert d.date_basis["ready_since"] == "first_seen"
    assert d.summary == (
        "ready for handover (first seen on 2026-06-15): owner Sam Seller (Sales) is not an "
        "account manager. Next: assign an account manager"
    )


def test_mature_customer_with_account_manager_is_handed_over() -> None:
    d = evaluate_handover(facts(owner=AM), RULES, NOW)
    assert d.status == "account_management"
    # first sight: handed over before the hub knew, on an unknown day
    assert d.ready_since is None and d.handed_over_on is None
    assert d.summary == (
        "account management (first seen on 2026-06-15; handover date not in the CRM history)"
    )
    # the usage baseline for the drop trigger is remembered
    usage = next(c for c in d.reasons if c.key == "usage_drop")
    assert usage.value == 80.0


def test_open_critical_tickets_and_missing_module_block_with_plain_summary() -> None:
    tickets = [
        ticket("500A", priority="Critical"),
        ticket("77", source="hubspot", priority="URGENT"),
        ticket("500B", priority="Critical", is_closed=True),  # closed: no longer blocks
        ticket("500C", priority="Critical", deleted=True),  # tombstone: ignored
        ticket("500D", priority="URGENT"),  # a HubSpot value on a Salesforce case: not critical
    ]
    c = customer(modules_in_use=["Reporting"])
    d = evaluate_handover(facts(customer=c, tickets=tickets), RULES, NOW)
    assert d.status == "onboarding"
    assert d.summary == (
        "blocked: 2 open critical tickets: 77, 500A; module Billing not in use. "
        "Next: close tickets 77, 500A; get module Billing into use"
    )
    assert d.ready_since is None


def test_open_serious_ticket_blocks() -> None:
    d = evaluate_handover(
        facts(tickets=[ticket("9", source="hubspot", priority="HIGH")]), RULES, NOW
    )
    assert d.status == "onboarding"
    assert d.summary == "blocked: 1 open serious ticket: 9. Next: close ticket 9"


@pytest.mark.parametrize(
    ("opened_offsets", "passed"),
    [
        # threshold 2 in 30 days: exactly 2 user errors still passes
        ([DAY, 10 * DAY], True),
        ([DAY, 10 * DAY, 20 * DAY], False),
        # the window includes its first instant (NOW - 30 days) ...
        ([DAY, 10 * DAY, 30 * DAY], False),
        # ... and not the second before it
        ([DAY, 10 * DAY, 30 * DAY + dt.timedelta(seconds=1)], True),
    ],
)
def test_user_errors_threshold_and_window(opened_offsets: list[dt.timedelta], passed: bool) -> None:
    tickets = [
        ticket(f"500U{i}", category="User Error", is_closed=True, opened_at=NOW - off)
        for i, off in enumerate(opened_offsets)
    ]
    d = evaluate_handover(facts(tickets=tickets), RULES, NOW)
    assert keys(d)["user_errors"] is passed
    assert d.status == ("ready_for_handover" if passed else "onboarding")
    if not passed:
        assert d.summary == (
            "blocked: 3 user-error tickets in 30 days (max 2): 500U0, 500U1, 500U2. "
            "Next: train the users on what the user-error tickets asked"
        )


def test_hubspot_user_error_category_counts() -> None:
    tickets = [
        ticket(f"{i}", source="hubspot", category="USER_ERROR", opened_at=NOW - DAY, is_closed=True)
        for i in range(3)
    ]
    assert keys(evaluate_handover(facts(tickets=tickets), RULES, NOW))["user_errors"] is False


@pytest.mark.parametrize(
    ("flag", "text"),
    [
        (False, "onboarding not completed. Next: complete the onboarding and mark it in the CRM"),
        (None, "onboarding status unknown. Next: record the onboarding status in the CRM"),
    ],
)
def test_onboarding_required(flag: bool | None, text: str) -> None:
    d = evaluate_handover(facts(customer=customer(onboarding_completed=flag)), RULES, NOW)
    assert d.status == "onboarding"
    assert d.summary == f"blocked: {text}"
    relaxed = rules_with(maturity={"onboarding_required": False})
    d2 = evaluate_handover(facts(customer=customer(onboarding_completed=flag)), relaxed, NOW)
    assert d2.status == "ready_for_handover"
    assert "onboarding" not in keys(d2)


def test_modules_compare_case_insensitively_and_list_all_missing() -> None:
    c = customer(contracted_modules=["Billing", "Payroll", "Reporting"], modules_in_use=["billing"])
    d = evaluate_handover(facts(customer=c), RULES, NOW)
    assert d.summary == (
        "blocked: modules Payroll, Reporting not in use. "
        "Next: get modules Payroll, Reporting into use"
    )


def test_maturity_without_contracted_modules_falls_back_to_calendar() -> None:
    # contract 2026-01-10, today 2026-06-15: 21+28+31+30+31+15 = 156 days >= 90
    d = evaluate_handover(facts(customer=customer(contracted_modules=[])), RULES, NOW)
    assert d.rule_kind == "calendar_after_contract"
    assert keys(d)["rule_fallback"] is True
    assert d.status == "ready_for_handover"
    # the calendar rule dates readiness itself: 2026-01-10 + 90 days = 2026-04-10
    assert "ready for handover since 2026-04-10" in d.summary
    assert "(calendar rule: no contracted modules known)" in d.summary
    # contract 2026-04-01: 30 (rest of April) + 31 (May) + 14 = 75 days < 90
    recent = [won_deal(close_date=dt.date(2026, 4, 1))]
    d = evaluate_handover(facts(customer=customer(contracted_modules=[]), deals=recent), RULES, NOW)
    assert d.status == "onboarding"
    assert d.summary == (
        "blocked: 75 of 90 days since contract (calendar rule: no contracted modules known). "
        "Next: wait until 2026-06-30"
    )


# ---- calendar rules -----------------------------------------------------------------------


@pytest.mark.parametrize(("days_ago", "status"), [(90, "ready_for_handover"), (89, "onboarding")])
def test_calendar_after_contract_boundary(days_ago: int, status: str) -> None:
    rules = rules_with(rule="calendar_after_contract")
    signed = NOW.date() - dt.timedelta(days=days_ago)
    # maturity blockers do not matter under the calendar rule
    f = facts(deals=[won_deal(close_date=signed)], tickets=[ticket("1", priority="Critical")])
    d = evaluate_handover(f, rules, NOW)
    assert d.rule_kind == "calendar_after_contract"
    assert d.status == status


def test_calendar_contract_date_from_stage_history_in_business_time_zone() -> None:
    # no close date: the day the deal entered Closed Won, in Berlin (23:30 UTC = 00:30 CET)
    rules = rules_with(rule="calendar_after_contract")
    entered = dt.datetime(2026, 3, 16, 23, 30, tzinfo=dt.UTC)
    deal = won_deal(close_date=None, stage_entered_at={"Closed Won": entered.isoformat()})
    d = evaluate_handover(facts(deals=[deal]), rules, NOW)
    # local day 2026-03-17: 14 (March) + 30 + 31 + 15 = 90 days before 2026-06-15
    assert d.status == "ready_for_handover"
    assert "since contract on 2026-03-17" in next(
        c.detail for c in d.reasons if c.key == "days_since_contract"
    )


def test_calendar_after_go_live() -> None:
    rules = rules_with(rule="calendar_after_go_live")
    ok = facts(customer=customer(go_live_date=NOW.date() - 60 * DAY))
    assert evaluate_handover(ok, rules, NOW).status == "ready_for_handover"
    early = facts(customer=customer(go_live_date=NOW.date() - 59 * DAY))
    assert evaluate_handover(early, rules, NOW).summary == (
        "blocked: 59 of 60 days since go-live. Next: wait until 2026-06-16"
    )
    unknown = evaluate_handover(facts(customer=customer(go_live_date=None)), rules, NOW)
    assert unknown.summary == (
        "blocked: go-live date unknown. Next: enter the go-live date in the CRM"
    )


# ---- owners -------------------------------------------------------------------------------


def test_account_manager_by_email_and_missing_owner() -> None:
    rules = rules_with(account_managers={"departments": [], "emails": ["KIM@example.com"]})
    c = customer(owner_email="kim@example.com")
    assert (
        evaluate_handover(facts(customer=c, owner=None), rules, NOW).status == "account_management"
    )
    gone = AM.model_copy(update={"deleted": True})
    d = evaluate_handover(facts(owner=gone), RULES, NOW)
    assert d.status == "ready_for_handover"
    assert d.summary.endswith("no owner. Next: assign an account manager")


# ---- memory: dates and at-risk --------------------------------------------------------------


def test_ready_since_is_kept_while_ready_and_reset_after_a_relapse() -> None:
    t0 = NOW - 10 * DAY
    d = evaluate_handover(facts(previous=prev("ready_for_handover", ready_since=t0)), RULES, NOW)
    assert d.ready_since == t0
    assert d.summary.startswith("ready for handover since 2026-06-05")
    # handing over keeps when it became ready
    d = evaluate_handover(
        facts(owner=AM, previous=prev("ready_for_handover", ready_since=t0)), RULES, NOW
    )
    assert (d.status, d.ready_since, d.handed_over_on) == ("account_management", t0, NOW)
    # ready -> blocked -> ready starts a new ready period
    d = evaluate_handover(facts(previous=prev("onboarding")), RULES, NOW)
    assert d.ready_since == NOW


def test_stored_state_round_trips_into_the_next_evaluation() -> None:
    first = evaluate_handover(facts(), RULES, NOW)
    handed = evaluate_handover(facts(owner=AM, previous=first.as_state(NOW)), RULES, NOW + DAY)
    later = evaluate_handover(
        facts(owner=AM, previous=handed.as_state(NOW + DAY)), RULES, NOW + 7 * DAY
    )
    assert later.status == "account_management"
    assert later.handed_over_on == NOW + DAY and later.ready_since is None
    assert later.status_since == NOW + DAY and later.first_seen_at == NOW
    assert later.summary == "account management since 2026-06-16"
    # the bulk row the evaluation stores is the model's row, field for field
    for d, at in ((first, NOW), (handed, NOW + DAY), (later, NOW + 7 * DAY)):
        assert d.state_row(at) == d.as_state(at).model_dump()
    assert handed.state_row(NOW)["handed_over_on"] == NOW + DAY


def handed_over(**kw: Any) -> HandoverState:
    reasons = [{"criterion": "usage_drop", "passed": True, "detail": "usage 85", "value": 85.0}]
    return prev(
        "account_management",
        handed_over_on=NOW - 45 * DAY,
        ready_since=NOW - 50 * DAY,
        reasons=reasons,
        **kw,
    )


def test_new_critical_ticket_after_handover_puts_customer_at_risk_and_back() -> None:
    new = ticket("500N", priority="Critical", opened_at=NOW - 5 * DAY)
    d = evaluate_handover(facts(owner=AM, tickets=[new], previous=handed_over()), RULES, NOW)
    assert d.status == "at_risk"
    assert d.summary == (
        "at risk since 2026-06-10: 1 new critical ticket since handover: 500N. "
        "Next: close ticket 500N"
    )
    assert d.status_since == NOW - 5 * DAY  # dated by the ticket that caused it
    assert d.handed_over_on == NOW - 45 * DAY and d.ready_since == NOW - 50 * DAY
    # a critical ticket opened before the handover is not a new trigger
    old = ticket("500O", priority="Critical", opened_at=NOW - 46 * DAY)
    d2 = evaluate_handover(facts(tickets=[old], previous=handed_over()), RULES, NOW)
    assert d2.status == "account_management"
    # once the new ticket is closed the customer is healthy again, dates kept
    closed = new.model_copy(update={"is_closed": True})
    back = evaluate_handover(facts(tickets=[closed], previous=d.as_state(NOW)), RULES, NOW + DAY)
    assert back.status == "account_management"
    assert back.handed_over_on == NOW - 45 * DAY


def test_handed_over_customer_is_not_rechecked_for_readiness() -> None:
    c = customer(onboarding_completed=False, modules_in_use=[])
    d = evaluate_handover(facts(customer=c, owner=SELLER, previous=handed_over()), RULES, NOW)
    assert d.status == "account_management"


@pytest.mark.parametrize(
    ("usage", "status", "summary"),
    [
        (
            39.5,
            "at_risk",
            "at risk since 2026-06-15: usage 39.5 below 40; usage dropped 45.5 points from 85. "
            "Next: meet the customer about low usage",
        ),
        # 85 - 65 = 20 points is exactly the drop limit, so it fires; 19.5 points does not
        (
            65.0,
            "at_risk",
            "at risk since 2026-06-15: usage dropped 20 points from 85. "
            "Next: meet the customer about low usage",
        ),
        (65.5, "account_management", "account management since 2026-05-01"),
    ],
)
def test_usage_triggers(usage: float, status: str, summary: str) -> None:
    d = evaluate_handover(
        facts(customer=customer(usage_score=usage), previous=handed_over()), RULES, NOW
    )
    assert (d.status, d.summary) == (status, summary)


def test_usage_floor_boundary_and_peak_tracking() -> None:
    no_drop = rules_with(at_risk={"usage_drop_points": None})
    at_floor = evaluate_handover(
        facts(customer=customer(usage_score=40.0), previous=handed_over()), no_drop, NOW
    )
    assert at_floor.status == "account_management"
    # a higher score raises the peak the next drop is measured from
    up = evaluate_handover(
        facts(customer=customer(usage_score=90.0), previous=handed_over()), RULES, NOW
    )
    assert next(c.value for c in up.reasons if c.key == "usage_drop") == 90.0
    down = evaluate_handover(
        facts(customer=customer(usage_score=70.0), previous=up.as_state(NOW)), RULES, NOW + DAY
    )
    assert down.summary == (
        "at risk since 2026-06-16: usage dropped 20 points from 90. "
        "Next: meet the customer about low usage"
    )


# ---- deals reopened -------------------------------------------------------------------------


def test_reopened_deal_before_handover_goes_back_to_new_sales() -> None:
    reopened = won_deal(stage="Negotiation/Review", is_closed=False, is_won=False)
    d = evaluate_handover(
        facts(deals=[reopened], previous=prev("ready_for_handover", ready_since=NOW - DAY)),
        RULES,
        NOW,
    )
    assert d.status == "new_sales"
    assert d.summary == "new sales: no closed-won deal any more (reopened or lost)"
    assert d.ready_since is None


def test_reopened_deal_after_handover_is_at_risk_with_dates_kept() -> None:
    lost = won_deal(stage="Closed Lost", is_won=False)
    d = evaluate_handover(facts(deals=[lost], previous=handed_over()), RULES, NOW)
    assert d.status == "at_risk"
    assert d.summary == (
        "at risk since 2026-06-15: no closed-won deal any more (reopened or lost). "
        "Next: check the reopened or lost deal with the seller"
    )
    assert d.handed_over_on == NOW - 45 * DAY


def test_contract_date_comes_from_the_earliest_deal_still_won() -> None:
    rules = rules_with(rule="calendar_after_contract")
    deals = [
        won_deal(
            "006OLD",
            close_date=dt.date(2026, 1, 10),
            is_won=False,
            stage="Negotiation/Review",
            is_closed=False,
        ),
        won_deal("006NEW", close_date=dt.date(2026, 4, 1)),
    ]
    d = evaluate_handover(facts(deals=deals), rules, NOW)
    # only 006NEW is won: 75 days since 2026-04-01 (see the fallback test)
    assert d.summary == "blocked: 75 of 90 days since contract. Next: wait until 2026-06-30"


# ---- transition ---------------------------------------------------------------------------


def test_transition_only_on_status_change() -> None:
    d = evaluate_handover(facts(), RULES, NOW)
    first = transition(None, d, NOW)
    assert first is not None
    assert (first.customer_id, first.from_status, first.to_status, first.at) == (
        "HUB-1",
        None,
        "ready_for_handover",
        NOW,
    )
    assert first.reasons == d.reasons_json()
    assert transition(d.as_state(NOW), d, NOW) is None
    moved = evaluate_handover(facts(owner=AM, previous=d.as_state(NOW)), RULES, NOW + DAY)
    t = transition(d.as_state(NOW), moved, NOW + DAY)
    assert t is not None and (t.from_status, t.to_status) == (
        "ready_for_handover",
        "account_management",
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_handover(facts(), RULES, NOW.replace(tzinfo=None))


# ---- first sight of a customer an account manager already owns ----------------------------


def test_first_sight_am_owned_customer_with_open_critical_ticket_is_at_risk() -> None:
    # Signed 2026-01-10 (the estimated handover day on first sight); a Critical case opened
    # 10 days ago is open: not mature, but the AM owns it, so it is handed over and at risk.
    crit = ticket("500C", priority="Critical", opened_at=NOW - 10 * DAY)
    d = evaluate_handover(facts(owner=AM, tickets=[crit]), RULES, NOW)
    assert d.status == "at_risk"
    assert keys(d)["new_critical_tickets"] is False
    # the handover day is unknown (never invented); the ticket dates the at-risk state
    assert d.handed_over_on is None and d.date_basis["handed_over_on"] == "first_seen"
    assert d.status_since == NOW - 10 * DAY
    assert "critical" in d.summary


def test_first_sight_am_owned_customer_not_mature_but_no_trigger_is_account_management() -> None:
    # Module Reporting not in use blocks maturity, but no at-risk trigger fires (no critical
    # ticket since signing, usage 80 above the floor): the AM keeps it in account management.
    d = evaluate_handover(
        facts(owner=AM, customer=customer(modules_in_use=["Billing"])), RULES, NOW
    )
    assert d.status == "account_management"


def test_seller_owned_immature_customer_stays_in_onboarding() -> None:
    crit = ticket("500C", priority="Critical", opened_at=NOW - 10 * DAY)
    d = evaluate_handover(facts(owner=SELLER, tickets=[crit]), RULES, NOW)
    assert d.status == "onboarding"


# ---- the relay zone -------------------------------------------------------------------------

ZONE = {"zone": {"anchor": "go_live", "earliest_days": 30, "latest_days": 120}}


def zone_facts(go_live: dt.date | None, **kw: Any) -> CustomerFacts:
    return facts(customer=customer(go_live_date=go_live), **kw)


def test_zone_not_before_the_earliest_day() -> None:
    # go-live 2026-06-01, today 2026-06-15 (Berlin): day 14 of a zone opening on day 30
    d = evaluate_handover(zone_facts(dt.date(2026, 6, 1)), rules_with(**ZONE), NOW)
    assert d.status == "onboarding"
    assert d.summary == (
        "blocked: day 14 after go-live: the handover zone (days 30–120) opens on 2026-07-01, in "
        "16 days. Next: prepare the handover for 2026-07-01"
    )


@pytest.mark.parametrize(
    ("go_live", "detail"),
    [
        # day 30: the zone has opened; 2026-05-16 + 120 days = 2026-09-13
        (
            dt.date(2026, 5, 16),
            "day 30 after go-live, inside the handover zone (days 30–120): 90 days left, hand "
            "over by 2026-09-13",
        ),
        # day 120 (2026-02-15 + 120 = 2026-06-15): the last day inside the zone
        (
            dt.date(2026, 2, 15),
            "day 120 after go-live, inside the handover zone (days 30–120): 0 days left, hand "
            "over by 2026-06-15",
        ),
    ],
)
def test_zone_open_until_the_latest_day(go_live: dt.date, detail: str) -> None:
    d = evaluate_handover(zone_facts(go_live, previous=prev("onboarding")), rules_with(**ZONE), NOW)
    assert d.status == "ready_for_handover"
    zone_c = next(c for c in d.reasons if c.key == "relay_zone")
    assert (zone_c.passed, zone_c.detail) == (True, detail)
    assert d.ready_since == NOW  # seen becoming ready by this evaluation


def test_past_the_latest_day_without_account_manager_is_overdue_dated_by_the_due_day() -> None:
    # go-live 2026-02-14: 2026-06-15 is day 121; due by 2026-06-14, overdue from 2026-06-15
    # (Berlin midnight = 2026-06-14 22:00 UTC), mature or not
    crit = ticket("500C", priority="Critical", subject="Login fails")
    d = evaluate_handover(zone_facts(dt.date(2026, 2, 14), tickets=[crit]), rules_with(**ZONE), NOW)
    assert d.status == "overdue"
    assert d.label == "Handover overdue"
    assert d.status_since == dt.datetime(2026, 6, 14, 22, 0, tzinfo=dt.UTC)
    assert d.summary == (
        "handover overdue since 2026-06-15: 1 open critical ticket: 500C 'Login fails'; owner "
        "Sam Seller (Sales) is not an account manager. Next: close ticket 500C; assign an "
        "account manager"
    )
    # the account manager takes over, late and not mature: handed over (the latest day rules)
    later = evaluate_handover(
        zone_facts(dt.date(2026, 2, 14), tickets=[crit], owner=AM, previous=d.as_state(NOW)),
        rules_with(**ZONE),
        NOW + DAY,
    )
    assert later.status == "account_management"
    assert later.handed_over_on == NOW + DAY


def test_zone_without_anchor_date_blocks_with_a_next_step() -> None:
    d = evaluate_handover(zone_facts(None), rules_with(**ZONE), NOW)
    assert d.status == "onboarding"
    assert d.summary == (
        "blocked: go-live date unknown: the handover zone cannot start. "
        "Next: enter the go-live date in the CRM"
    )


@pytest.mark.parametrize(
    ("mature_since", "status", "detail"),
    [
        # 2026-05-01 to 2026-06-15 = 45 days held of 60
        (
            dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC),
            "onboarding",
            "stable for 45 of 60 days (since 2026-05-01)",
        ),
        # 2026-04-16 to 2026-06-15 = 60 days: the minimum stable period is met
        (
            dt.datetime(2026, 4, 16, 8, tzinfo=dt.UTC),
            "ready_for_handover",
            "stable for 60 days since 2026-04-16 (60 required)",
        ),
    ],
)
def test_minimum_stable_period(mature_since: dt.datetime, status: str, detail: str) -> None:
    rules = rules_with(zone={"stable_days": 60})
    p = prev("onboarding", mature_since=mature_since)
    d = evaluate_handover(facts(previous=p), rules, NOW)
    assert d.status == status
    c = next(c for c in d.reasons if c.key == "stable_period")
    assert c.detail == detail
    assert d.mature_since == mature_since
    if status == "onboarding":
        assert c.next_step == "keep it stable until 2026-06-30"
    # a relapse (an open critical ticket) restarts the stable period
    crit = ticket("500C", priority="Critical")
    relapsed = evaluate_handover(facts(previous=p, tickets=[crit]), rules, NOW)
    assert relapsed.mature_since is None


def test_calendar_rule_in_a_contract_zone_is_ready_from_the_later_of_both_days() -> None:
    # contract 2026-01-10: 90 days met on 2026-04-10; the zone opens on day 100 = 2026-04-20;
    # both dates come from records, so readiness is dated even on first sight
    rules = rules_with(
        rule="calendar_after_contract", zone={"anchor": "contract", "earliest_days": 100}
    )
    d = evaluate_handover(facts(), rules, NOW)
    assert d.status == "ready_for_handover"
    assert d.ready_since == dt.datetime(2026, 4, 19, 22, 0, tzinfo=dt.UTC)  # Berlin midnight
    assert d.summary.startswith("ready for handover since 2026-04-20:")


# ---- segments -------------------------------------------------------------------------------

SEGMENTS = {
    "segments": [
        {
            "name": "SMB",
            "when": {"employees_max": 50},
            "rule": "calendar_after_go_live",
            "days": 30,
        },
        {"name": "Payroll", "when": {"product_lines": ["payroll"]}, "zone": {"latest_days": 90}},
        {"name": "Retail AM", "when": {"industries": ["Retail"], "owner_teams": ["Sales"]}},
    ]
}


def test_segment_by_size_uses_its_own_rule() -> None:
    rules = rules_with(**SEGMENTS)
    # 20 employees, go-live 2026-05-01: 45 days >= 30 under the SMB calendar rule, although the
    # module Reporting is not in use (maturity does not apply to this segment)
    c = customer(employees=20, go_live_date=dt.date(2026, 5, 1), modules_in_use=["Billing"])
    d = evaluate_handover(facts(customer=c), rules, NOW)
    assert (d.status, d.rule_kind, d.segment) == (
        "ready_for_handover",
        "calendar_after_go_live",
        "SMB",
    )
    assert keys(d)["segment"] is True
    # 500 employees: no segment matches, the default maturity rule blocks on the module
    big = c.model_copy(update={"employees": 500})
    d2 = evaluate_handover(facts(customer=big), rules, NOW)
    assert (d2.status, d2.rule_kind, d2.segment) == ("onboarding", "maturity", "")
    # unknown size matches no size condition
    unknown = c.model_copy(update={"employees": None})
    assert evaluate_handover(facts(customer=unknown), rules, NOW).segment == ""


def test_segment_by_product_line_and_by_industry_and_team() -> None:
    rules = rules_with(**SEGMENTS)
    # contracted Payroll (any case): the segment's zone (latest day 90 after go-live) applies;
    # go-live 2026-03-01 -> day 106 > 90: overdue under a seller
    c = customer(
        employees=900,
        go_live_date=dt.date(2026, 3, 1),
        contracted_modules=["Payroll"],
        modules_in_use=["Payroll"],
    )
    d = evaluate_handover(facts(customer=c), rules, NOW)
    assert (d.segment, d.status) == ("Payroll", "overdue")
    # Retail and owned by the Sales team: both conditions hold
    r = customer(employees=900, industry="retail")
    assert evaluate_handover(facts(customer=r), rules, NOW).segment == "Retail AM"
    # Retail, but owned by an account manager: the team condition fails
    assert evaluate_handover(facts(customer=r, owner=AM), rules, NOW).segment == ""


def test_reasons_are_byte_identical_whatever_the_input_order() -> None:
    tickets = [
        ticket("500B", priority="Critical", subject="Export broken"),
        ticket("42", source="hubspot", priority="HIGH", subject="Slow"),
        ticket("500A", priority="Critical", subject="Login fails"),
    ]
    c = customer(modules_in_use=[], contracted_modules=["Reporting", "Billing"])
    one = evaluate_handover(facts(customer=c, tickets=tickets), RULES, NOW)
    c2 = customer(modules_in_use=[], contracted_modules=["Billing", "Reporting"])
    two = evaluate_handover(facts(customer=c2, tickets=tickets[::-1]), RULES, NOW)
    assert one.summary == two.summary
    assert one.reasons_json() == two.reasons_json()
    assert one.summary == (
        "blocked: 2 open critical tickets: 500A 'Login fails', 500B 'Export broken'; 1 open "
        "serious ticket: 42 'Slow'; modules Billing, Reporting not in use. Next: close tickets "
        "500A, 500B; close ticket 42; get modules Billing, Reporting into use"
    )


def test_rows_prepared_once_give_every_rule_the_same_live_rows() -> None:
    """The hub's evaluation hands the rules rows already filtered and sorted (``LiveRows``);
    ``live`` must give exactly what it gives for the raw rows, as a copy a rule may change."""
    raw = [
        Ticket(source="hubspot", source_id="9", priority="LOW", is_closed=False),
        Ticket(source="salesforce", source_id="500B", priority="HIGH", deleted=True),
        Ticket(source="hubspot", source_id="10", priority="HIGH", is_closed=True),
        Ticket(source="salesforce", source_id="500A", priority="URGENT", is_closed=False),
    ]
    prepared = LiveRows.of(reversed(raw))
    assert [(r.source, r.source_id) for r in prepared] == [
        ("hubspot", "10"),
        ("hubspot", "9"),
        ("salesforce", "500A"),
    ]
    once = live(prepared)
    assert once == live(raw) and once is not prepared
    once.clear()
    assert len(live(prepared)) == 3
    # and a decision from prepared rows equals the one from the raw rows
    customer = Customer(id="HUB-1", owner_email=SELLER.email)
    a = evaluate_handover(CustomerFacts(customer=customer, tickets=raw), RULES, NOW)
    b = evaluate_handover(CustomerFacts(customer=customer, tickets=prepared), RULES, NOW)
    assert a == b
