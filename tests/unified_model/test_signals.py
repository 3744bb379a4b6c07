"""The cross-CRM signals fire exactly when their definitions say: suppression from the moment a
deal enters a late stage (naming deal, stage, seller, since), a separate alert for a marketing
email sent during that negotiation (window inclusive), open deals idle for N days (inclusive), deals without any
logged email; tombstones never raise or suppress a signal."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from unified_model.handover import CustomerFacts
from unified_model.rules import HubRules, parse_rules
from unified_model.signals import (
    marketing_alert,
    negotiation_flag,
    stale_deals,
    unlogged_contact,
)
from unified_model.tables import Activity, Contact, Customer, Deal, Email, Owner

NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
RULES = HubRules()  # marketing window 14 days, stale after 30 days


def deal(sid: str = "006N", **kw: Any) -> Deal:
    base: dict[str, Any] = {
        "source": "salesforce",
        "source_id": sid,
        "customer_id": "HUB-1",
        "name": "Acme expansion",
        "stage": "Negotiation/Review",
        "modified_at": NOW - DAY,
    }
    return Deal(**{**base, **kw})


def marketed(sid: str = "h1", at: dt.datetime | None = NOW - 3 * DAY, **kw: Any) -> Contact:
    return Contact(
        source="hubspot", source_id=sid, customer_id="HUB-1", last_marketing_email_at=at, **kw
    )


def facts(**kw: Any) -> CustomerFacts:
    return CustomerFacts(customer=Customer(id="HUB-1", name="Acme"), **kw)


# ---- negotiation --------------------------------------------------------------------------


SELLER = Owner(
    source="salesforce", source_id="005S", first_name="Sam", last_name="Seller", email="s@v.example"
)
ENTERED = {"Negotiation/Review": (NOW - 5 * DAY).isoformat()}  # 2026-06-10 10:00Z


def test_suppression_starts_when_the_deal_enters_a_late_stage_before_any_email() -> None:
    d = deal(owner_id="005S", stage_entered_at=ENTERED)
    f = facts(deals=[d], owners={("salesforce", "005S"): SELLER})  # marketing never emailed
    s = negotiation_flag(f, RULES, NOW)
    assert s.flagged
    assert s.detail == (
        "suppress marketing: 'Acme expansion' in Negotiation/Review since 2026-06-10, "
        "seller Sam Seller"
    )
    assert s.evidence == ("salesforce:006N",)
    assert not marketing_alert(f, RULES, NOW).flagged


def test_marketing_email_after_the_late_stage_began_is_a_separate_alert() -> None:
    d = deal(owner_id="005S", stage_entered_at=ENTERED)
    owners = {("salesforce", "005S"): SELLER}
    during = marketed(at=NOW - 3 * DAY, email="jane@acme.example")  # 2026-06-12, after entry
    before = marketed("h2", at=NOW - 7 * DAY, email="joe@acme.example")  # before the stage
    a = marketing_alert(facts(deals=[d], contacts=[during, before], owners=owners), RULES, NOW)
    assert a.flagged
    assert a.detail == (
        "marketing emailed jane@acme.example on 2026-06-12 during 'Acme expansion' "
        "(Negotiation/Review, seller Sam Seller)"
    )
    assert a.evidence == ("hubspot:h1", "salesforce:006N")
    only_before = facts(deals=[d], contacts=[before], owners=owners)
    assert not marketing_alert(only_before, RULES, NOW).flagged
    assert negotiation_flag(only_before, RULES, NOW).flagged  # suppressed all the same


@pytest.mark.parametrize(
    ("sent", "flagged"),
    [
        (NOW - 14 * DAY, True),  # the window's first instant is inside
        (NOW - 14 * DAY - dt.timedelta(seconds=1), False),
        (None, False),  # never emailed by marketing
    ],
)
def test_marketing_window_boundary(sent: dt.datetime | None, flagged: bool) -> None:
    # an undated late stage counts from the start of the window
    s = marketing_alert(facts(deals=[deal()], contacts=[marketed(at=sent)]), RULES, NOW)
    assert s.flagged is flagged


@pytest.mark.parametrize(
    ("d", "flagged"),
    [
        (deal("9", source="hubspot", stage="decisionmakerboughtin"), True),
        (deal("9", source="hubspot", stage="contractsent"), True),
        (deal(stage="Proposal/Price Quote"), True),
        (deal(stage="Qualification"), False),  # early stage: marketing may nurture
        (deal(stage="contractsent"), False),  # a HubSpot stage id on a Salesforce deal
        (deal(stage="Negotiation/Review", is_closed=True), False),  # decided
        (deal(deleted=True), False),  # tombstone
    ],
)
def test_only_open_late_stage_deals_count(d: Deal, flagged: bool) -> None:
    assert negotiation_flag(facts(deals=[d]), RULES, NOW).flagged is flagged
    assert marketing_alert(facts(deals=[d], contacts=[marketed()]), RULES, NOW).flagged is flagged


def test_deleted_contact_and_window_from_rules() -> None:
    gone = marketed(deleted=True)
    assert not marketing_alert(facts(deals=[deal()], contacts=[gone]), RULES, NOW).flagged
    wide = parse_rules({"kpis": {"marketing_touch_window_days": 40}})
    old = marketed(at=NOW - 30 * DAY)
    assert marketing_alert(facts(deals=[deal()], contacts=[old]), wide, NOW).flagged
    assert not marketing_alert(facts(deals=[deal()], contacts=[old]), RULES, NOW).flagged


# ---- stale deals --------------------------------------------------------------------------


@pytest.mark.parametrize(("idle_days", "stale"), [(30, True), (29, False), (45, True)])
def test_stale_after_n_days_without_change(idle_days: int, stale: bool) -> None:
    d = deal(modified_at=NOW - idle_days * DAY, created_at=NOW - 100 * DAY)
    got = stale_deals(facts(deals=[d]), RULES, NOW)
    assert [(s.source_id, s.idle_days) for s in got] == ([("006N", idle_days)] if stale else [])


def test_recent_email_or_activity_keeps_a_deal_alive() -> None:
    old = deal(modified_at=NOW - 60 * DAY)
    on_deal = Email(
        source="hubspot",
        source_id="e1",
        customer_id=None,  # logged against the deal only
        deal_source_ids=["006N"],
        sent_at=NOW - 5 * DAY,
    )
    on_customer = Activity(
        source="salesforce", source_id="00T1", customer_id="HUB-1", occurred_at=NOW - 2 * DAY
    )
    other_deal = Activity(
        source="salesforce",
        source_id="00T2",
        customer_id=None,
        deal_source_id="006OTHER",
        occurred_at=NOW,
    )
    assert stale_deals(facts(deals=[old], emails=[on_deal]), RULES, NOW) == []
    assert stale_deals(facts(deals=[old], activities=[on_customer]), RULES, NOW) == []
    (s,) = stale_deals(facts(deals=[old], activities=[other_deal]), RULES, NOW)
    assert (s.last_touch_at, s.idle_days) == (NOW - 60 * DAY, 60)
    deleted_email = on_deal.model_copy(update={"deleted": True})
    assert len(stale_deals(facts(deals=[old], emails=[deleted_email]), RULES, NOW)) == 1


def test_closed_deals_are_never_stale() -> None:
    won = deal(stage="Closed Won", is_closed=True, is_won=True, modified_at=NOW - 400 * DAY)
    assert stale_deals(facts(deals=[won]), RULES, NOW) == []


# ---- unlogged contact ---------------------------------------------------------------------


def test_unlogged_contact() -> None:
    mail = Email(source="hubspot", source_id="e1", customer_id="HUB-1", sent_at=NOW)
    s = unlogged_contact(facts(deals=[deal(), deal("006B")]))
    assert (s.flagged, s.detail) == (True, "2 deals but no logged emails")
    assert s.evidence == ("salesforce:006B", "salesforce:006N")
    assert not unlogged_contact(facts(deals=[deal()], emails=[mail])).flagged
    deleted = mail.model_copy(update={"deleted": True})
    assert unlogged_contact(facts(deals=[deal()], emails=[deleted])).flagged
    assert not unlogged_contact(facts()).flagged  # no deals: nothing to log yet
    assert not unlogged_contact(facts(deals=[deal(deleted=True)])).flagged


def test_today_after_the_evaluation_instant_still_counts() -> None:
    # insights judge as of the start of the business day; a deal that entered the stage and a
    # marketing email sent later that same day are not "in the future": both count at once
    start_of_day = dt.datetime(2026, 6, 14, 22, 0, tzinfo=dt.UTC)  # 15 June, Berlin
    entered = {"Negotiation/Review": "2026-06-15T09:00:00+00:00"}
    d = deal(stage_entered_at=entered)
    jane = marketed(at=dt.datetime(2026, 6, 15, 9, 30, tzinfo=dt.UTC), email="jane@acme.example")
    f = facts(deals=[d], contacts=[jane])
    s = negotiation_flag(f, RULES, start_of_day)
    assert s.detail == (
        "suppress marketing: 'Acme expansion' in Negotiation/Review since 2026-06-15, seller "
        "unknown"
    )
    assert marketing_alert(f, RULES, start_of_day).flagged
