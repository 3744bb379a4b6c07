"""The HubSpot connector reads every kind from the real SDK against the sandbox portal into exact
typed records with their associations, incrementally through frozen search windows keyed on
``hs_object_id`` (never past the 10,000-result cap, no loss under index lag or equal timestamps,
resumable mid-window), with archived records as tombstones and a fixed, small number of calls."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import ago, calls, connector, drain, link, sandbox_fixture, seed  # noqa: F401

from connectors.errors import MappingError
from connectors.records import (
    AccountRecord,
    ContactRecord,
    DealRecord,
    EmailRecord,
    OwnerRecord,
    TicketRecord,
)
from sandbox.control import set_config
from sandbox.runner import Sandbox
from sandbox.state import HS, fmt_ts

UTC = dt.UTC


def _portal(sb: Sandbox) -> dt.datetime:
    """A small portal: two of each object, with links; everything written an hour ago."""
    t = ago(sb, 3600).replace(microsecond=0)
    st = sb.state
    teams = [{"id": "7", "name": "Enterprise AM", "primary": True}]
    seed(
        st,
        "owners",
        {"email": "ann@x.io", "firstName": "Ann", "lastName": "Lee", "userId": 1, "teams": teams},
        rid="501",
        created=t,
    )
    seed(
        st,
        "owners",
        {"email": "bo@x.io", "firstName": "Bo", "lastName": "Ek", "userId": 2},
        rid="502",
        created=t,
        archived=True,
    )
    seed(
        st,
        "companies",
        {
            "name": "Acme Oy",
            "domain": "acme.fi",
            "website": "https://acme.fi",
            "phone": "+358 1",
            "industry": "Retail",
            "address": "Main 1",
            "city": "Espoo",
            "state": "Uusimaa",
            "zip": "02100",
            "country": "Finland",
            "numberofemployees": "120",
            "annualrevenue": "5000000.50",
            "hubspot_owner_id": "501",
            "salesforceaccountid": "001000000000001AAA",
            "go_live_date": "2024-03-01",
            "onboarding_completed": "true",
            "contracted_modules": "Billing;Payroll",
            "modules_in_use": "Billing",
            "usage_score": "0.75",
        },
        rid="101",
        created=t,
    )
    seed(
        st,
        "companies",
        {"name": "Beta AB", "onboarding_completed": "false", "numberofemployees": ""},
        rid="102",
        created=t,
    )
    seed(
        st,
        "contacts",
        {
            "email": "pia@acme.fi",
            "firstname": "Pia",
            "lastname": "Aho",
            "phone": "+358 2",
            "jobtitle": "CFO",
            "lifecyclestage": "lead",
            "company": "Acme",
            "website": "acme.fi",
            "hubspot_owner_id": "501",
            "hs_email_last_send_date": "2024-05-02T08:00:00.000Z",
        },
        rid="201",
        created=t,
    )
    seed(
        st,
        "contacts",
        {"email": "olli@beta.se", "lifecyclestage": "customer"},
        rid="202",
        created=t,
    )
    seed(
        st,
        "deals",
        {
            "dealname": "Acme renewal",
            "amount": "12000.00",
            "dealstage": "closedwon",
            "pipeline": "default",
            "closedate": "2024-04-30T00:00:00.000Z",
            "dealtype": "existingbusiness",
            "hubspot_owner_id": "501",
            "hs_is_closed": "true",
            "hs_is_closed_won": "true",
            "contract_term_months": "24",
            "hs_v2_date_entered_contractsent": "2024-04-01T09:00:00.000Z",
            "hs_v2_date_entered_closedwon": "2024-04-30T10:00:00.000Z",
        },
        rid="301",
        created=t,
    )
    seed(st, "deals", {"dealname": "Beta new", "dealstage": "contractsent"}, rid="302", created=t)
    seed(
        st,
        "tickets",
        {
            "subject": "Login fails",
            "hs_pipeline": "0",
            "hs_pipeline_stage": "4",
            "hs_ticket_priority": "HIGH",
            "hs_ticket_category": "USER_ERROR",
            "closed_date": "2024-05-03T12:00:00.000Z",
            "hs_customer_satisfaction": "4",
            "hubspot_owner_id": "501",
        },
        rid="401",
        created=t,
    )
    seed(
        st,
        "tickets",
        {"subject": "Invoice wrong", "hs_pipeline_stage": "1", "hs_ticket_priority": "URGENT"},
        rid="402",
        created=t,
    )
    seed(
        st,
        "emails",
        {
            "hs_timestamp": "2024-05-04T07:30:00.000Z",
            "hs_email_direction": "INCOMING_EMAIL",
            "hs_email_subject": "Help",
            "hs_email_from_email": "pia@acme.fi",
            "hs_email_to_email": "am@us.io",
            "hs_email_thread_id": "th-1",
            "hubspot_owner_id": "501",
        },
        rid="601",
        created=t,
    )
    seed(
        st,
        "emails",
        {
            "hs_timestamp": "2024-05-05T07:30:00.000Z",
            "hs_email_direction": "EMAIL",
            "hs_email_to_email": "a@x.io;b@y.io",
        },
        rid="602",
        created=t,
    )
    link(st, "contacts", "201", "companies", "102")
    link(st, "contacts", "201", "companies", "101", primary=True)
    link(st, "deals", "301", "companies", "101", primary=True)
    link(st, "deals", "301", "contacts", "201")
    link(st, "deals", "302", "companies", "102")
    link(st, "tickets", "401", "companies", "101", primary=True)
    link(st, "tickets", "401", "contacts", "201")
    link(st, "emails", "601", "contacts", "201")
    link(st, "emails", "601", "companies", "101")
    link(st, "emails", "601", "deals", "301")
    return t


@pytest.mark.parametrize("plan", ["list", "search"])
def test_first_sync_reads_exact_records_and_associations_with_few_calls(
    sb: Sandbox, plan: str
) -> None:
    """Both first-sync plans give the same records; the list plan reads associations inline."""
    t = _portal(sb)
    conn = connector(sb, first_sync_plan=plan)
    listed = plan == "list"
    common: dict[str, Any] = {"source": "hubspot", "modified_at": t}

    def read(kind: str) -> tuple[dict[str, object], list[tuple[str, str, int]]]:
        head = sb.state.ledger_head()
        records, _, _ = drain(conn.read(kind, None))  # type: ignore[arg-type]
        return {r.source_id: r for r in records}, calls(sb, head)

    owners, owner_calls = read("owner")
    assert owners == {
        "501": OwnerRecord(
            object_type="owners",
            source_id="501",
            email="ann@x.io",
            first_name="Ann",
            last_name="Lee",
            department="Enterprise AM",
            **common,
        ),
        "502": OwnerRecord(
            object_type="owners",
            source_id="502",
            email="bo@x.io",
            first_name="Bo",
            last_name="Ek",
            active=False,
            **common,
        ),
    }
    assert owner_calls == [("GET", "/crm/v3/owners/", 200)] * 2

    accounts, account_calls = read("account")
    assert accounts == {
        "101": AccountRecord(
            object_type="companies",
            source_id="101",
            name="Acme Oy",
            website="https://acme.fi",
            domain="acme.fi",
            phone="+358 1",
            industry="Retail",
            street="Main 1",
            city="Espoo",
            state="Uusimaa",
            postal_code="02100",
            country="Finland",
            employees=120,
            annual_revenue=5000000.5,
            owner_id="501",
            created_at=t,
            cross_crm_id="001000000000001AAA",
            go_live_date=dt.date(2024, 3, 1),
            onboarding_completed=True,
            contracted_modules=("Billing", "Payroll"),
            modules_in_use=("Billing",),
            usage_score=0.75,
            **common,
        ),
        "102": AccountRecord(
            object_type="companies",
            source_id="102",
            name="Beta AB",
            created_at=t,
            onboarding_completed=False,
            **common,
        ),
    }
    assert account_calls == [
        ("GET", "/crm/v3/properties/companies", 200),
        ("GET", "/crm/v3/objects/companies", 200)
        if listed
        else ("POST", "/crm/v3/objects/companies/search", 200),
        # when the owned company got its owner: the owner property's history, 100 a call
        ("POST", "/crm/v3/objects/companies/batch/read", 200),
    ]

    contacts, contact_calls = read("contact")
    assert contacts == {
        "201": ContactRecord(
            object_type="contacts",
            source_id="201",
            email="pia@acme.fi",
            first_name="Pia",
            last_name="Aho",
            phone="+358 2",
            title="CFO",
            account_ids=("101", "102"),
            owner_id="501",
            created_at=t,
            is_lead=True,
            lifecycle_stage="lead",
            company_name="Acme",
            company_website="acme.fi",
            last_marketing_email_at=dt.datetime(2024, 5, 2, 8, tzinfo=UTC),
            **common,
        ),
        "202": ContactRecord(
            object_type="contacts",
            source_id="202",
            email="olli@beta.se",
            created_at=t,
            lifecycle_stage="customer",
            **common,
        ),
    }
    assert [c[1] for c in contact_calls] == (
        ["/crm/v3/properties/contacts", "/crm/v3/objects/contacts"]
        if listed
        else [
            "/crm/v3/properties/contacts",
            "/crm/v3/objects/contacts/search",
            "/crm/v4/associations/contacts/companies/batch/read",
        ]
    )

    deals, deal_calls = read("deal")
    assert deals == {
        "301": DealRecord(
            object_type="deals",
            source_id="301",
            name="Acme renewal",
            account_id="101",
            stage="closedwon",
            stage_label="Closed Won",
            is_closed=True,
            is_won=True,
            probability=1.0,
            amount=12000.0,
            close_date=dt.date(2024, 4, 30),
            created_at=t,
            owner_id="501",
            deal_type="existingbusiness",
            contract_term_months=24.0,
            stage_entered_at={
                "contractsent": dt.datetime(2024, 4, 1, 9, tzinfo=UTC),
                "closedwon": dt.datetime(2024, 4, 30, 10, tzinfo=UTC),
            },
            contact_ids=("201",),
            **common,
        ),
        "302": DealRecord(
            object_type="deals",
            source_id="302",
            name="Beta new",
            account_id="102",
            stage="contractsent",
            stage_label="Contract Sent",
            probability=0.9,
            created_at=t,
            **common,
        ),
    }
    # properties and one list page; or properties, search, deals→companies, deals→contacts
    assert len(deal_calls) == (2 if listed else 4)

    tickets, ticket_calls = read("ticket")
    assert tickets == {
        "401": TicketRecord(
            object_type="tickets",
            source_id="401",
            subject="Login fails",
            account_id="101",
            contact_id="201",
            priority="HIGH",
            category="USER_ERROR",
            status="4",
            is_closed=True,
            opened_at=t,
            closed_at=dt.datetime(2024, 5, 3, 12, tzinfo=UTC),
            satisfaction=4.0,
            owner_id="501",
            **common,
        ),
        "402": TicketRecord(
            object_type="tickets",
            source_id="402",
            subject="Invoice wrong",
            priority="URGENT",
            status="1",
            opened_at=t,
            **common,
        ),
    }
    assert len(ticket_calls) == (2 if listed else 4)

    emails, email_calls = read("email")
    assert emails == {
        "601": EmailRecord(
            object_type="emails",
            source_id="601",
            direction="inbound",
            sent_at=dt.datetime(2024, 5, 4, 7, 30, tzinfo=UTC),
            subject="Help",
            from_address="pia@acme.fi",
            to_addresses=("am@us.io",),
            thread_id="th-1",
            account_ids=("101",),
            contact_ids=("201",),
            deal_ids=("301",),
            owner_id="501",
            **common,
        ),
        "602": EmailRecord(
            object_type="emails",
            source_id="602",
            direction="outbound",
            sent_at=dt.datetime(2024, 5, 5, 7, 30, tzinfo=UTC),
            to_addresses=("a@x.io", "b@y.io"),
            **common,
        ),
    }
    assert len(email_calls) == (2 if listed else 5)  # (search:) three association types

    head = sb.state.ledger_head()
    # Stage history lives on the HubSpot deal: no deal_stage kind to read, no call.
    assert drain(conn.read("deal_stage", None))[0] == []
    assert calls(sb, head) == []
    usage = conn.usage()
    # owners, companies (+1: the owner history), contacts, deals, tickets, emails
    assert usage.calls == (2 + 3 + 2 + 2 + 2 + 2 if listed else 2 + 3 + 3 + 4 + 4 + 5)
    assert usage.calls_by_object.get("associations", 0) == (0 if listed else 8)
    assert usage.quota_max == 650_000 and usage.quota_used == usage.calls
    assert usage.server_time is not None


def test_incremental_sync_reads_only_changes_at_one_call_when_nothing_changed(
    sb: Sandbox,
) -> None:
    _portal(sb)
    conn = connector(sb)
    first, cursor, _ = drain(conn.read("deal", None))
    assert {r.source_id for r in first} == {"301", "302"}
    assert cursor is not None and cursor["in_window"] is None

    sb.state.advance_clock(120)
    sb.state.update(HS, "deals", "302", {"dealstage": "closedlost", "hs_is_closed": "true"})
    sb.state.advance_clock(60)  # the edit is now older than the 30-second lag margin
    head = sb.state.ledger_head()
    changed, cursor2, pages = drain(conn.read("deal", cursor))
    assert all(isinstance(r, DealRecord) for r in changed)
    assert [(r.source_id, r.stage, r.is_closed) for r in changed] == [  # type: ignore[union-attr]
        ("302", "closedlost", True)
    ]
    assert calls(sb, head) == [
        ("POST", "/crm/v3/objects/deals/search", 200),
        ("POST", "/crm/v4/associations/deals/companies/batch/read", 200),
        # 207: deal 302 has no contacts, which HubSpot reports as a per-id error
        ("POST", "/crm/v4/associations/deals/contacts/batch/read", 207),
    ]
    assert len(pages) == 1

    sb.state.advance_clock(60)
    head = sb.state.ledger_head()
    nothing, cursor3, _ = drain(conn.read("deal", cursor2))
    # The edit lies in the overlap this window re-reads; found unchanged, it is dropped.
    assert nothing == []
    assert calls(sb, head) == [("POST", "/crm/v3/objects/deals/search", 200)]
    assert cursor3 is not None and cursor3["upper"] > cursor2["upper"]  # type: ignore[index]
    assert cursor2["seen_recent"] == {"302": fmt_ts(changed[0].modified_at)}  # type: ignore[index]


def test_window_upper_is_the_portal_clock_minus_the_lag_margin(sb: Sandbox) -> None:
    seed(sb.state, "companies", {"name": "Old"}, rid="1", created=ago(sb, 600))
    seed(sb.state, "companies", {"name": "Fresh"}, rid="2", created=ago(sb, 5))
    conn = connector(sb, first_sync_plan="search")
    records, cursor, _ = drain(conn.read("account", None))
    assert [r.source_id for r in records] == ["1"]  # "Fresh" is inside the 30 s margin
    server_now = conn.usage().server_time
    assert server_now is not None and cursor is not None
    assert cursor["upper"] == fmt_ts(server_now - dt.timedelta(seconds=30))
    sb.state.advance_clock(60)
    records, _, _ = drain(conn.read("account", cursor))
    assert [r.source_id for r in records] == ["2"]  # caught by the next window


def test_ten_thousand_result_cap_is_never_reached(sb: Sandbox) -> None:
    created = fmt_ts(ago(sb, 3600))
    sb.state.insert_many(
        (HS, "companies", str(1000 + i), created, created, 0, '{"name":"c"}') for i in range(10_050)
    )
    conn = connector(sb, first_sync_plan="search")
    head = sb.state.ledger_head()
    records, cursor, pages = drain(conn.read("account", None))
    ids = [r.source_id for r in records]
    assert len(ids) == 10_050 and set(ids) == {str(1000 + i) for i in range(10_050)}
    searches = [c for c in calls(sb, head) if c[1].endswith("/search")]
    # 51 pages of 200 at offset 0 each; the emulator would answer 400 beyond 10,000.
    assert len(searches) == 51 and {c[2] for c in searches} == {200}
    assert len(pages) == 11  # one checkpoint per 1,000 records
    assert cursor is not None and cursor["in_window"] is None


def test_deal_sync_call_count_scales_as_searches_plus_one_association_call_per_type(
    sb: Sandbox,
) -> None:
    """1,000 deals in pages of 20 with association batches of 100: the 10,000-deal target
    (50 searches + 10 association calls per type) at a tenth of the scale."""
    created = fmt_ts(ago(sb, 3600))
    sb.state.insert_many(
        (HS, "deals", str(5000 + i), created, created, 0, '{"dealname":"d"}') for i in range(1000)
    )
    sb.state.insert(HS, "companies", "1", {"name": "C"}, created=ago(sb, 3600))
    for i in range(1000):
        sb.state.associate("deals", str(5000 + i), "companies", "1", 341)
    conn = connector(sb, search_page_size=20, association_batch_size=100, first_sync_plan="search")
    head = sb.state.ledger_head()
    records, _, pages = drain(conn.read("deal", None))
    assert len(records) == 1000 and {r.account_id for r in records} == {"1"}  # type: ignore[union-attr]
    paths = [c[1] for c in calls(sb, head)]
    assert paths.count("/crm/v3/objects/deals/search") == 50
    assert paths.count("/crm/v4/associations/deals/companies/batch/read") == 10
    assert paths.count("/crm/v4/associations/deals/contacts/batch/read") == 10
    assert len(paths) == 71 and len(pages) == 10


def test_search_index_lag_is_covered_by_the_window_overlap(sb: Sandbox) -> None:
    set_config(sb.state, HS, {"search_lag_seconds": 100})
    seed(sb.state, "companies", {"name": "Old"}, rid="1", created=ago(sb, 3600))
    seed(sb.state, "companies", {"name": "Lagging"}, rid="2", created=ago(sb, 60))
    with_overlap = connector(sb, first_sync_plan="search")
    without = connector(sb, overlap_seconds=0, first_sync_plan="search")
    first, cursor, _ = drain(with_overlap.read("account", None))
    first_no, cursor_no, _ = drain(without.read("account", None))
    # "Lagging" is older than the 30 s margin but not yet indexed: neither sees it.
    assert [r.source_id for r in first] == [r.source_id for r in first_no] == ["1"]
    sb.state.advance_clock(200)
    later, _, _ = drain(with_overlap.read("account", cursor))
    later_no, _, _ = drain(without.read("account", cursor_no))
    assert [r.source_id for r in later] == ["2"]
    assert later_no == []  # without the overlap the late-indexed record is lost


def test_equal_timestamps_across_pages_and_a_killed_run_lose_nothing(sb: Sandbox) -> None:
    same = ago(sb, 3600)
    ids = [str(i) for i in range(10, 17)]
    for rid in ids:
        seed(sb.state, "companies", {"name": f"n{rid}"}, rid=rid, created=same)
    conn = connector(sb, search_page_size=2, association_batch_size=2, first_sync_plan="search")
    pages = conn.read("account", None)
    page1 = next(pages)
    page2 = next(pages)
    assert [r.source_id for r in page1.records + page2.records] == ["10", "11", "12", "13"]
    assert page2.cursor["last_id"] == "13" and page2.cursor["in_window"] is not None
    # The run is killed here; a new process resumes from the stored cursor.
    resumed = connector(sb, search_page_size=2, association_batch_size=2, first_sync_plan="search")
    rest, cursor, _ = drain(resumed.read("account", page2.cursor))
    assert [r.source_id for r in rest] == ["14", "15", "16"]
    assert cursor is not None and cursor["in_window"] is None
    # A record modified at exactly the window's upper bound is read (bounds are inclusive).
    upper = dt.datetime.fromisoformat(cursor["upper"])
    sb.state.update(HS, "companies", "12", {"name": "edited"}, modified=upper)
    sb.state.advance_clock(400)
    again, _, _ = drain(resumed.read("account", cursor))
    assert [r.source_id for r in again] == ["12"]


def test_archived_records_become_tombstones_when_the_check_is_due(sb: Sandbox) -> None:
    for rid in ("1", "2", "3"):
        seed(sb.state, "companies", {"name": rid}, rid=rid, created=ago(sb, 3600))
    conn = connector(sb, archived_check_interval_seconds=3600)
    _, cursor, _ = drain(conn.read("account", None))
    sb.state.soft_delete(HS, "companies", "2")
    archived_at = sb.state.get(HS, "companies", "2", include_deleted=True)["deleted_at"]  # type: ignore[index]
    sb.state.advance_clock(60)
    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("account", cursor))
    assert records == []  # the hourly archived check is not due yet
    assert calls(sb, head) == [("POST", "/crm/v3/objects/companies/search", 200)]

    sb.state.advance_clock(3600)
    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("account", cursor))
    assert records == [
        AccountRecord(
            source="hubspot",
            object_type="companies",
            source_id="2",
            modified_at=dt.datetime.fromisoformat(archived_at),
            deleted=True,
        )
    ]
    assert calls(sb, head) == [
        ("POST", "/crm/v3/objects/companies/search", 200),
        ("GET", "/crm/v3/objects/companies", 200),
    ]
    every_run = connector(sb, archived_check_interval_seconds=0)
    head = sb.state.ledger_head()
    records, _, _ = drain(every_run.read("account", cursor))
    assert records == []  # already reported: archived before the last check minus overlap
    assert len(calls(sb, head)) == 2


@pytest.mark.parametrize("hours", [6, 24], ids=["default-6h", "daily"])
def test_a_periodic_archived_check_trades_delete_latency_for_one_call_per_run(
    sb: Sandbox, hours: int
) -> None:
    # HubSpot's search never returns archived records and no API filters them by archive time,
    # so a delete can only be seen by listing archived records. With a periodic check, hourly runs
    # with nothing changed cost one search each; a delete arrives with the run after the
    # interval. Six hours is the default (no setting given).
    for rid in ("1", "2"):
        seed(sb.state, "companies", {"name": rid}, rid=rid, created=ago(sb, 3600))
    settings = {} if hours == 6 else {"archived_check_interval_seconds": hours * 3600}
    _, cursor, _ = drain(connector(sb, **settings).read("account", None))
    sb.state.soft_delete(HS, "companies", "2")
    for _ in range(hours - 1):
        sb.state.advance_clock(3600)
        head = sb.state.ledger_head()
        records, cursor, _ = drain(connector(sb, **settings).read("account", cursor))
        assert records == []
        assert calls(sb, head) == [("POST", "/crm/v3/objects/companies/search", 200)]
    sb.state.advance_clock(3600)
    head = sb.state.ledger_head()
    records, cursor, _ = drain(connector(sb, **settings).read("account", cursor))
    assert [(r.source_id, r.deleted) for r in records] == [("2", True)]
    assert calls(sb, head) == [
        ("POST", "/crm/v3/objects/companies/search", 200),
        ("GET", "/crm/v3/objects/companies", 200),
    ]


def test_reconcile_ids_finds_hard_deletes(sb: Sandbox) -> None:
    for rid in ("1", "2", "3"):
        seed(sb.state, "companies", {"name": rid}, rid=rid, created=ago(sb, 3600))
    sb.state.hard_delete(HS, "companies", "2")
    conn = connector(sb, search_page_size=1)
    pages = list(conn.reconcile_ids("account"))
    assert [p.full_pass_complete for p in pages] == [False, True]
    assert pages[-1].seen_ids == frozenset({"1", "3"})
    owners = list(conn.reconcile_ids("owner"))
    assert owners[-1].full_pass_complete and owners[-1].seen_ids == frozenset()


def test_field_map_is_checked_against_the_portal_once(sb: Sandbox) -> None:
    seed(sb.state, "companies", {"name": "A", "industry": "Retail"}, rid="1", created=ago(sb, 3600))
    with pytest.raises(MappingError, match=r"hubspot.read.nonsense"):
        connector(sb, field_map={"nonsense": "name"})
    bad = connector(sb, field_map={"go_live_date": "implementation_date"})
    with pytest.raises(MappingError) as err:
        drain(bad.read("account", None))
    assert "implementation_date" in str(err.value) and "hubspot.read.go_live_date" in str(err.value)
    remapped = connector(
        sb, field_map={"extra.sector": "industry", "go_live_date": "", "deal.name": "dealname"}
    )
    records, _, _ = drain(remapped.read("account", None))
    assert records[0].extra == {"sector": "Retail"}  # type: ignore[union-attr]
