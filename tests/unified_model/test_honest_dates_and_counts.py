"""The five defects of issue 15 stay fixed, through the store as the hub runs them: business dates
are days in the business time zone, a forwarded HubSpot email is no reply to the customer, the
critical-ticket field counts what it says (with the serious count next to it), no date is
invented on first sight ("first seen on" instead), and a status change is dated by its event."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlmodel import select

from connectors.records import (
    AccountRecord,
    DealRecord,
    EmailRecord,
    OwnerRecord,
    TicketRecord,
)
from sandbox.hubspot.testing import link, seed
from sandbox.runner import Sandbox
from unified_model import tables as t
from unified_model.handover import CustomerFacts
from unified_model.insights import compute_customer_insights
from unified_model.kpis import customer_kpis
from unified_model.rules import HubRules
from unified_model.store import HubStore
from unified_model.unify import unify
from unified_model.writeback import HUB_FIELDS, WritebackConfig, desired_values

RULES = HubRules()  # business time zone Europe/Berlin
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
SF = "salesforce"


def owner(sid: str, department: str) -> OwnerRecord:
    return OwnerRecord(
        source=SF,
        object_type="User",
        source_id=sid,
        modified_at=T0,
        email=f"{sid}@vendor.example",
        first_name=sid,
        department=department,
    )


def account(owner_id: str, at: dt.datetime = T0, **kw: Any) -> AccountRecord:
    base: dict[str, Any] = {
        "source": SF,
        "object_type": "Account",
        "source_id": "001A",
        "modified_at": at,
        "name": "Acme GmbH",
        "website": "acme.de",
        "owner_id": owner_id,
        "contracted_modules": ("Billing",),
        "modules_in_use": ("Billing",),
        "onboarding_completed": True,
    }
    return AccountRecord(**{**base, **kw})


def won(close: dt.date) -> DealRecord:
    return DealRecord(
        source=SF,
        object_type="Opportunity",
        source_id="006W",
        modified_at=T0,
        account_id="001A",
        stage="Closed Won",
        is_closed=True,
        is_won=True,
        amount=1000.0,
        close_date=close,
    )


def ticket(sid: str, priority: str, opened: dt.datetime) -> TicketRecord:
    return TicketRecord(
        source=SF,
        object_type="Case",
        source_id=sid,
        modified_at=opened,
        account_id="001A",
        subject=f"Problem {sid}",
        priority=priority,
        opened_at=opened,
    )


def seeded(store: HubStore, owner_id: str, **account_kw: Any) -> None:
    store.upsert_records("owner", [owner("005S", "Sales"), owner("005A", "Account Management")])
    store.upsert_records("account", [account(owner_id, **account_kw)])
    store.upsert_records("deal", [won(dt.date(2026, 5, 19))])


def run(store: HubStore, now: dt.datetime) -> tuple[t.HandoverState, dict[str, str | None]]:
    unify(store, now=now)
    compute_customer_insights(store, RULES, now=now)
    with store.session() as s:
        (customer,) = s.exec(select(t.Customer)).all()
        state = s.get(t.HandoverState, customer.id)
        metrics = s.get(t.CustomerMetrics, customer.id)
        values = desired_values(customer, state, metrics, WritebackConfig())
    assert state is not None
    return state, values


def test_first_seen_account_manager_customer_gets_no_invented_handover_day(
    sqlite_store: HubStore,
) -> None:
    # Signed 2026-05-19, already owned by an account manager when the hub first looks: the
    # handover day is not in any record. It was written as 2026-05-18 (the contract day at
    # Berlin midnight printed as a UTC date): a date that is wrong twice.
    seeded(sqlite_store, "005A")
    now = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)
    state, values = run(sqlite_store, now)
    assert state.status == "account_management"
    assert values["handed_over_on"] is None
    assert values["handover_reasons"] == (
        "account management (first seen on 2026-06-15; handover date not in the CRM history)"
    )
    # not mature (module not in use) yet owned by the AM: the same, no contract-day estimate
    sqlite_store.upsert_records("account", [account("005A", modules_in_use=(), at=now)])
    with sqlite_store.session() as s:
        for row in s.exec(select(t.HandoverState)).all():
            s.delete(row)
        s.commit()
    state, values = run(sqlite_store, now)
    assert state.status == "account_management"
    assert values["handed_over_on"] is None


def test_observed_handover_is_written_as_the_business_day(sqlite_store: HubStore) -> None:
    # Ready under a seller; the AM takes over and the hub sees it at 22:30 UTC on 15 June,
    # which is 00:30 on 16 June in Berlin: the business's handover day is 16 June.
    seeded(sqlite_store, "005S")
    first, _ = run(sqlite_store, dt.datetime(2026, 6, 10, 9, 0, tzinfo=dt.UTC))
    assert first.status == "ready_for_handover"
    later = dt.datetime(2026, 6, 15, 22, 30, tzinfo=dt.UTC)
    sqlite_store.upsert_records("account", [account("005A", at=later)])
    state, values = run(sqlite_store, later)
    assert state.status == "account_management"
    assert values["handed_over_on"] == "2026-06-16"
    assert values["handover_reasons"] == "account management since 2026-06-16"


def test_first_sight_ready_customer_says_first_seen_and_onboarding_is_dated_by_contract(
    sqlite_store: HubStore,
) -> None:
    seeded(sqlite_store, "005S")
    now = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)
    state, values = run(sqlite_store, now)
    assert state.status == "ready_for_handover"
    assert values["ready_since"] is None  # not the day of the hub's first run
    assert values["handover_reasons"].startswith("ready for handover (first seen on 2026-06-15)")
    # a customer first seen in onboarding: onboarding since the contract day (a record says so)
    sqlite_store.upsert_records("account", [account("005S", modules_in_use=(), at=now)])
    with sqlite_store.session() as s:
        for row in s.exec(select(t.HandoverState)).all():
            s.delete(row)
        s.commit()
    state, values = run(sqlite_store, now)
    assert state.status == "onboarding"
    assert values["handover_status_since"] == "2026-05-19"


def test_critical_field_counts_critical_only_and_serious_is_written_next_to_it(
    sqlite_store: HubStore,
) -> None:
    seeded(sqlite_store, "005S")
    opened = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    sqlite_store.upsert_records(
        "ticket",
        [ticket("500C", "Critical", opened), ticket("500H", "High", opened)],
    )
    _, values = run(sqlite_store, dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC))
    assert (values["open_critical_tickets"], values["open_serious_tickets"]) == ("1", "1")
    description = HUB_FIELDS["open_critical_tickets"][0].description
    assert "serious" not in description and "critical" in description


def test_at_risk_transition_is_dated_by_the_ticket_that_caused_it(sqlite_store: HubStore) -> None:
    seeded(sqlite_store, "005S")
    run(sqlite_store, dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC))
    sqlite_store.upsert_records(
        "account", [account("005A", at=dt.datetime(2026, 6, 2, 9, 0, tzinfo=dt.UTC))]
    )
    handed, _ = run(sqlite_store, dt.datetime(2026, 6, 2, 9, 0, tzinfo=dt.UTC))
    assert handed.status == "account_management"
    opened = dt.datetime(2026, 6, 15, 8, 0, tzinfo=dt.UTC)
    sqlite_store.upsert_records("ticket", [ticket("500N", "Critical", opened)])
    state, values = run(sqlite_store, dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC))
    assert state.status == "at_risk"
    (moved,) = [x for x in sqlite_store.all(t.HandoverTransition) if x.to_status == "at_risk"]
    assert moved.at == opened  # not 00:00 of the evaluation day, before the ticket existed
    assert values["handover_status_since"] == "2026-06-15"
    assert values["handover_next_step"] == "close ticket 500N"


def test_forwarded_hubspot_email_is_not_a_reply(tmp_path: Path) -> None:
    # Read through the HubSpot connector from the sandbox portal: an inquiry, then a forward to a
    # colleague. The forward was counted as the reply (first response 0.5 business hours).
    from connectors.hubspot import HubSpotConfig, HubSpotConnector

    with Sandbox(tmp_path) as sb:
        st = sb.state
        hour_ago = st.now() - dt.timedelta(hours=1)  # older than the connector's search lag
        inbound = {"hs_email_direction": "INCOMING_EMAIL", "hs_timestamp": "2026-06-15T08:00:00Z"}
        forward = {"hs_email_direction": "FORWARDED_EMAIL", "hs_timestamp": "2026-06-15T08:30:00Z"}
        seed(st, "companies", {"name": "Acme", "domain": "acme.de"}, rid="101", created=hour_ago)
        for rid, props in (("601", inbound), ("602", forward)):
            seed(st, "emails", {**props, "hs_email_thread_id": "th"}, rid=rid, created=hour_ago)
            link(st, "emails", rid, "companies", "101")
        info = sb.info
        config = HubSpotConfig(
            base_url=info.hubspot_url, ca_bundle=info.ca_bundle, access_token=info.hs_token
        )
        conn = HubSpotConnector(config)
        records = [r for page in conn.read("email", None) for r in page.records]
    by_id = {r.source_id: r for r in records}
    assert (by_id["601"].direction, by_id["602"].direction) == ("inbound", "forwarded")
    emails = [
        t.Email(
            source="hubspot",
            source_id=r.source_id,
            customer_id="HUB-1",
            direction=r.direction,
            sent_at=r.sent_at,
            thread_id=r.thread_id,
        )
        for r in records
        if isinstance(r, EmailRecord)
    ]
    facts = CustomerFacts(customer=t.Customer(id="HUB-1"), emails=emails)
    kpis = customer_kpis(facts, RULES, dt.datetime(2026, 6, 17, 10, 0, tzinfo=dt.UTC))
    assert kpis["first_response_median_hours"] is None
    assert kpis["last_two_way_contact_at"] is None
    assert kpis["unanswered_inquiries"] == 1
