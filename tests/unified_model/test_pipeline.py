"""From stored CRM records to what is written back: unify links the same customer across CRMs,
the checks pass, insights store a status with reasons, and the writeback plan contains exactly the
changed fields — nothing on a second run, only the changed field after a source change."""

from __future__ import annotations

import datetime as dt

from connectors.records import (
    AccountRecord,
    DealRecord,
    FieldUpdate,
    OwnerRecord,
    TicketRecord,
    WriteResult,
)
from unified_model import tables as t
from unified_model.checks import run_checks
from unified_model.insights import compute_customer_insights
from unified_model.rules import load_rules
from unified_model.store import HubStore
from unified_model.unify import unify
from unified_model.writeback import (
    WritebackConfig,
    plan_writeback,
    record_results,
    run_writeback,
    write_intents,
)

NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=400)


def _seed(store: HubStore) -> None:
    store.upsert_records(
        "owner",
        [
            OwnerRecord(
                source="salesforce",
                object_type="User",
                source_id="005S",
                modified_at=T0,
                email="sam@vendor.example",
                department="Sales",
            ),
        ],
    )
    store.upsert_records(
        "account",
        [
            AccountRecord(
                source="salesforce",
                object_type="Account",
                source_id="001A",
                modified_at=T0,
                name="Acme GmbH",
                website="https://www.acme.de/",
                country="Germany",
                owner_id="005S",
                contracted_modules=("Billing",),
                modules_in_use=("Billing",),
                onboarding_completed=True,
            ),
            AccountRecord(
                source="hubspot",
                object_type="companies",
                source_id="901",
                modified_at=T0,
                name="ACME",
                domain="acme.de",
                country="Germany",
            ),
            AccountRecord(
                source="salesforce",
                object_type="Account",
                source_id="001B",
                modified_at=T0,
                name="Beta Oy",
                website="beta.fi",
                country="Finland",
            ),
        ],
    )
    store.upsert_records(
        "deal",
        [
            DealRecord(
                source="salesforce",
                object_type="Opportunity",
                source_id="006W",
                modified_at=T0,
                account_id="001A",
                stage="Closed Won",
                is_closed=True,
                is_won=True,
                amount=24000.0,
                close_date=(T0 + dt.timedelta(days=10)).date(),
                created_at=T0,
                contract_term_months=12.0,
            ),
        ],
    )
    store.upsert_records(
        "ticket",
        [
            TicketRecord(
                source="hubspot",
                object_type="tickets",
                source_id="77",
                modified_at=T0,
                account_id="901",
                priority="URGENT",
                category="PRODUCT_ISSUE",
                is_closed=False,
                opened_at=NOW - dt.timedelta(days=3),
            ),
        ],
    )


class FakeWriter:
    """Stands in for a CRM connector's write side: records what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[FieldUpdate] = []
        self.calls = 0

    def ensure_fields(self, specs: object, dry_run: bool = False) -> list[object]:
        return []

    def write(self, updates: list[FieldUpdate]) -> list[WriteResult]:
        self.calls += 1
        self.sent.extend(updates)
        return [WriteResult(u.source_id, "ok") for u in updates]

    def usage(self) -> object:
        return type("U", (), {"calls": self.calls})()


def test_unify_insights_writeback_roundtrip(sqlite_store: HubStore) -> None:
    store = sqlite_store
    _seed(store)
    stats = unify(store, now=NOW)
    assert stats.customers == 2 and stats.matched_across == 1
    assert all(r.passed for r in run_checks(store).values())
    accounts = {a.source_id: a for a in store.live(t.SourceAccount)}
    assert (
        accounts["001A"].customer_id == accounts["901"].customer_id != accounts["001B"].customer_id
    )
    (deal,) = store.live(t.Deal)
    (ticket,) = store.live(t.Ticket)
    assert deal.customer_id == ticket.customer_id == accounts["001A"].customer_id

    rules = load_rules(None)
    insight = compute_customer_insights(store, rules, now=NOW)
    assert insight.customers == 2
    states = {h.customer_id: h for h in store.all(t.HandoverState)}
    acme = states[accounts["001A"].customer_id]
    # a won deal and an open urgent ticket: signed, not mature
    assert acme.status == "onboarding"
    assert "critical" in acme.summary
    assert states[accounts["001B"].customer_id].status == "new_sales"

    config = WritebackConfig()
    writer = FakeWriter()
    report = run_writeback(store, writer, "salesforce", config, run_id="r1", now=NOW)
    assert report.records_changed == 2 and report.ok == 2
    sent = {u.source_id: u.values for u in writer.sent}
    assert sent["001A"]["handover_status"] == "onboarding"
    assert sent["001A"]["customer_id"] == accounts["001A"].customer_id
    assert sent["001A"]["contract_value"] == "24000"

    # nothing changed: nothing planned, no write call
    again = run_writeback(store, writer, "salesforce", config, run_id="r2", now=NOW)
    assert again.records_changed == 0 and writer.calls == 1

    # the ticket closes: only the changed fields (plus last_sync) of Acme are planned
    store.upsert_records(
        "ticket",
        [
            TicketRecord(
                source="hubspot",
                object_type="tickets",
                source_id="77",
                modified_at=NOW,
                account_id="901",
                priority="URGENT",
                category="PRODUCT_ISSUE",
                is_closed=True,
                opened_at=NOW - dt.timedelta(days=3),
                closed_at=NOW - dt.timedelta(hours=1),
            ),
        ],
    )
    unify(store, now=NOW)
    compute_customer_insights(store, rules, now=NOW)
    with store.session() as s:
        plans = plan_writeback(s, "salesforce", config, NOW)
    assert [p.source_id for p in plans] == ["001A"]
    changed = set(plans[0].changes)
    assert "open_critical_tickets" in changed and "customer_id" not in changed
    assert "last_sync" in changed


def test_failed_write_is_retried_next_run(sqlite_store: HubStore) -> None:
    store = sqlite_store
    _seed(store)
    unify(store, now=NOW)
    compute_customer_insights(store, load_rules(None), now=NOW)
    config = WritebackConfig()
    with store.session() as s:
        plans = plan_writeback(s, "hubspot", config, NOW)
    assert [p.source_id for p in plans] == ["901"]
    write_intents(store, "r1", "r1:1", plans, NOW)
    record_results(
        store, "r1", "r1:1", plans, [WriteResult("901", "failed", "UNABLE_TO_LOCK_ROW", True)], NOW
    )
    with store.session() as s:
        again = plan_writeback(s, "hubspot", config, NOW)
    assert [p.source_id for p in again] == ["901"]
    audit = store.all(t.WriteAudit)
    assert {a.outcome for a in audit} == {"failed"}
    assert store.all(t.WritebackLedger) == []


def test_customer_view_and_writeback_log(sqlite_store: HubStore) -> None:
    from unified_model.customer_view import find_customers, render_customer, writeback_log

    store = sqlite_store
    _seed(store)
    unify(store, now=NOW)
    compute_customer_insights(store, load_rules(None), now=NOW)
    run_writeback(store, FakeWriter(), "hubspot", WritebackConfig(), run_id="r1", now=NOW)
    (acme,) = find_customers(store, "http://WWW.acme.de/en")
    assert find_customers(store, "acm")[0].id == acme.id
    assert find_customers(store, acme.id)[0].id == acme.id
    text = render_customer(store, acme.id, now=NOW)
    assert "Acme GmbH" in text and "onboarding" in text
    assert "salesforce" in text and "hubspot" in text and "901" in text
    log = writeback_log(store, acme.id)
    assert any("handover_status" in line and "onboarding" in line and " ok" in line for line in log)


def test_review_decisions_are_kept(sqlite_store: HubStore) -> None:
    import pytest

    from unified_model.reviews import ReviewError, decide, pending_reviews

    store = sqlite_store
    store.upsert_rows(
        t.MatchReview,
        [
            {
                "left_source": "salesforce",
                "left_id": "001A",
                "right_source": "hubspot",
                "right_id": "901",
                "score": 85.0,
                "reason": "similar names",
                "status": "pending",
            }
        ],
        newer_only=False,
    )
    (row,) = pending_reviews(store)
    decide(store, row["id"], "rejected", now=NOW)
    assert pending_reviews(store) == []
    assert store.all(t.MatchReview)[0].status == "rejected"
    with pytest.raises(ReviewError, match="no match review"):
        decide(store, 999, "confirmed", now=NOW)
