"""The Salesforce connector reads every kind into exact typed records, incrementally, with deletes.

Contract checked against the real sandbox with the real simple-salesforce client: a first sync
returns exactly the org's rows as records (tombstones for recycle-bin rows); an incremental run
returns exactly what changed and costs one call per object; ties on SystemModstamp across a page
boundary lose nothing; hard deletes show up in the reconciliation id pass; large first syncs go
through Bulk API 2.0 (sized by the org's record count) and resume from their locator; a field
mapping naming an unknown field fails with a message naming it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.errors import MappingError
from connectors.records import (
    AccountRecord,
    ActivityRecord,
    ContactRecord,
    DealRecord,
    DealStageRecord,
    EmailRecord,
    OwnerRecord,
    TicketRecord,
)
from connectors.salesforce.mapping import iso_ts
from sandbox.http import FaultRule
from sandbox.runner import Sandbox
from sandbox.state import SF
from tests.connectors.salesforce_support import (
    Org,
    api_calls,
    drain,
    fresh,
    insert,
    make_connector,
    of_type,
    sandbox,
    seed_org,
)

UTC = dt.UTC


@pytest.fixture(scope="module")
def shared_sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from sandbox(tmp_path_factory.mktemp("sf-read"))


@pytest.fixture
def sb(shared_sb: Sandbox) -> Sandbox:
    return fresh(shared_sb)


@pytest.fixture
def org(sb: Sandbox) -> Org:
    return seed_org(sb.state)


def _ms(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


def test_first_sync_returns_exact_records_of_every_kind(sb: Sandbox, org: Org) -> None:
    ids, t0 = org.ids, org.t0

    def at(s: int) -> dt.datetime:
        return _ms(t0 + dt.timedelta(seconds=s))

    base: dict[str, Any] = {"source": "salesforce"}
    expected = {
        "owner": [
            OwnerRecord(
                **base,
                object_type="User",
                source_id=ids["u1"],
                modified_at=at(1),
                email="ann@acme.example",
                first_name="Ann",
                last_name="Seller",
                department="Sales",
                active=True,
            ),
            OwnerRecord(
                **base,
                object_type="User",
                source_id=ids["u2"],
                modified_at=at(2),
                email="bob@acme.example",
                first_name="Bob",
                last_name="Farmer",
                department="Account Management",
                active=False,
            ),
        ],
        "account": [
            AccountRecord(
                **base,
                object_type="Account",
                source_id=ids["a1"],
                modified_at=at(3),
                name="Nordwind Logistics AB",
                website="https://www.nordwind.se/",
                phone="+46 8 123 45",
                industry="Logistics",
                street="Hamngatan 1",
                city="Stockholm",
                postal_code="111 47",
                country="Sweden",
                employees=250,
                annual_revenue=12500000.0,
                owner_id=ids["u1"],
                created_at=at(-1000),
                cross_crm_id="10000042",
                go_live_date=dt.date(2025, 3, 1),
                onboarding_completed=True,
                contracted_modules=("Billing", "Reporting", "Payroll"),
                modules_in_use=("Billing", "Reporting"),
                usage_score=72.5,
            ),
            AccountRecord(
                **base,
                object_type="Account",
                source_id=ids["a2"],
                modified_at=at(4),
                name="Nova Systems",
                owner_id=ids["u2"],
                created_at=at(4),
                onboarding_completed=False,
            ),
            AccountRecord(
                **base,
                object_type="Account",
                source_id=ids["a3"],
                modified_at=at(5),
                deleted=True,
                name="Gone Ltd",
                created_at=at(5),
                onboarding_completed=False,
            ),
        ],
        "contact": [
            ContactRecord(
                **base,
                object_type="Contact",
                source_id=ids["c1"],
                modified_at=at(6),
                email="eva@nordwind.se",
                first_name="Eva",
                last_name="Berg",
                phone="+46 70 1",
                title="CFO",
                account_ids=(ids["a1"],),
                owner_id=ids["u1"],
                created_at=at(6),
            ),
            ContactRecord(
                **base,
                object_type="Lead",
                source_id=ids["l1"],
                modified_at=at(7),
                email="max@muster.de",
                first_name="Max",
                last_name="Muster",
                owner_id=ids["u1"],
                created_at=at(7),
                is_lead=True,
                lifecycle_stage="Open - Not Contacted",
                company_name="Muster GmbH",
                company_website="muster.de",
            ),
            ContactRecord(
                **base,
                object_type="Lead",
                source_id=ids["l2"],
                modified_at=at(8),
                email="nils@nova.example",
                first_name="Nils",
                last_name="Nova",
                account_ids=(ids["a2"],),
                owner_id=ids["u1"],
                created_at=at(8),
                is_lead=True,
                lifecycle_stage="Closed - Converted",
                company_name="Nova Systems",
            ),
        ],
        "deal": [
            DealRecord(
                **base,
                object_type="Opportunity",
                source_id=ids["o1"],
                modified_at=at(9),
                name="Nordwind - Billing",
                account_id=ids["a1"],
                stage="Closed Won",
                stage_label="Closed Won",
                is_closed=True,
                is_won=True,
                probability=1.0,
                amount=48000.0,
                close_date=dt.date(2025, 1, 15),
                created_at=at(-900),
                owner_id=ids["u1"],
                deal_type="New Business",
                contract_term_months=24.0,
                stage_entered_at={"Closed Won": at(-500)},
            ),
        ],
        "deal_stage": [
            DealStageRecord(
                **base,
                object_type="OpportunityHistory",
                source_id=ids["h1"],
                modified_at=at(10),
                deal_id=ids["o1"],
                stage="Proposal/Price Quote",
                entered_at=at(-800),
            ),
            DealStageRecord(
                **base,
                object_type="OpportunityHistory",
                source_id=ids["h2"],
                modified_at=at(11),
                deal_id=ids["o1"],
                stage="Closed Won",
                entered_at=at(-500),
            ),
        ],
        "ticket": [
            TicketRecord(
                **base,
                object_type="Case",
                source_id=ids["k1"],
                modified_at=at(12),
                subject="Invoices fail",
                account_id=ids["a1"],
                contact_id=ids["c1"],
                priority="Critical",
                category="Defect",
                status="Closed",
                is_closed=True,
                opened_at=at(-300),
                closed_at=at(-100),
                satisfaction=4.0,
                owner_id=ids["u2"],
            ),
        ],
        "email": [
            EmailRecord(
                **base,
                object_type="EmailMessage",
                source_id=ids["e1"],
                modified_at=at(13),
                direction="inbound",
                sent_at=at(-200),
                subject="Question about invoices",
                from_address="eva@nordwind.se",
                to_addresses=("ann@acme.example", "support@acme.example"),
                thread_id="thread-1",
                account_ids=(ids["a1"],),
                owner_id=ids["u1"],
            ),
            EmailRecord(
                **base,
                object_type="EmailMessage",
                source_id=ids["e2"],
                modified_at=at(14),
                direction="outbound",
                sent_at=at(-150),
                subject="Your offer",
                from_address="ann@acme.example",
                to_addresses=("eva@nordwind.se",),
                deal_ids=(ids["o1"],),
                owner_id=ids["u1"],
            ),
        ],
        "activity": [
            ActivityRecord(
                **base,
                object_type="Task",
                source_id=ids["t1"],
                modified_at=at(15),
                kind="call",
                account_id=ids["a1"],
                deal_id=ids["o1"],
                occurred_at=dt.datetime(2025, 1, 10, tzinfo=UTC),
                duration_seconds=300,
                owner_id=ids["u1"],
            ),
            ActivityRecord(
                **base,
                object_type="Task",
                source_id=ids["t2"],
                modified_at=at(16),
                kind="task",
                account_id=ids["a1"],
                occurred_at=at(-50),
                owner_id=ids["u2"],
            ),
            ActivityRecord(
                **base,
                object_type="Event",
                source_id=ids["ev1"],
                modified_at=at(17),
                kind="meeting",
                account_id=ids["a1"],
                deal_id=ids["o1"],
                occurred_at=dt.datetime(2025, 1, 12, 9, tzinfo=UTC),
                duration_seconds=45 * 60,
                owner_id=ids["u1"],
            ),
        ],
    }
    connector = make_connector(sb.info)
    for kind, records in expected.items():
        got, cursor, _ = drain(connector, kind, None)
        assert got == records, kind
        assert cursor is not None


def test_first_sync_costs_describe_and_one_page(sb: Sandbox, org: Org) -> None:
    connector = make_connector(sb.info)
    head = sb.state.ledger_head()
    drain(connector, "deal", None)
    # No COUNT(): the org's record count (one call for every object, once per connector) says
    # the object is small, so the first page is all there is.
    assert api_calls(sb.state, head) == [
        ("POST", "/services/oauth2/token"),
        ("GET", "/services/data/v59.0/sobjects/Opportunity/describe"),
        ("GET", "/services/data/v59.0/limits/recordCount"),
        ("GET", "/services/data/v59.0/queryAll/"),
    ]
    assert connector.usage().calls == 4
    assert connector.usage().calls_by_object == {"auth": 1, "recordCount": 1, "Opportunity": 2}


def test_incremental_returns_exactly_the_changes_with_one_call_per_object(
    sb: Sandbox, org: Org
) -> None:
    ids = org.ids
    _, account_cursor, _ = drain(make_connector(sb.info), "account", None)
    _, contact_cursor, _ = drain(make_connector(sb.info), "contact", None)

    # Nothing changed: a fresh connector spends its login and one query per object.
    connector = make_connector(sb.info)
    head = sb.state.ledger_head()
    records, same_cursor, _ = drain(connector, "account", account_cursor)
    assert records == []
    # Same position; only the time this run started reading moved on. The account kind reads
    # Account and its owner history (AccountHistory), one query each.
    assert set(same_cursor) == {"Account", "AccountHistory"}
    for name, before in account_cursor.items():
        after = dict(same_cursor[name])
        assert after.pop("read_at") >= before["read_at"]
        assert after == {k: v for k, v in before.items() if k != "read_at"}
    assert api_calls(sb.state, head) == [
        ("POST", "/services/oauth2/token"),
        ("GET", "/services/data/v59.0/queryAll/"),
        ("GET", "/services/data/v59.0/queryAll/"),
    ]
    head = sb.state.ledger_head()
    records, _, _ = drain(connector, "contact", contact_cursor)
    assert records == []
    assert len(api_calls(sb.state, head)) == 2  # Contact + Lead, already logged in

    # Users edit one account, delete another, create a third, and convert nothing else.
    sb.state.advance_clock(600)
    sb.state.update(SF, "Account", ids["a2"], {"Website": "nova.example"})
    assert sb.state.soft_delete(SF, "Account", ids["a1"])
    new_id = insert(sb.state, "Account", {"Name": "Fresh AG"}, sb.state.now())
    head = sb.state.ledger_head()
    records, new_cursor, _ = drain(connector, "account", account_cursor)
    assert len(api_calls(sb.state, head)) == 2  # Account + AccountHistory
    assert {(r.source_id, r.deleted) for r in records} == {
        (ids["a2"], False),
        (ids["a1"], True),
        (new_id, False),
    }
    accounts = of_type(records, AccountRecord)
    assert next(r for r in accounts if r.source_id == ids["a2"]).website == "nova.example"
    assert (
        new_cursor["Account"]["id"]
        == max(records, key=lambda r: (r.modified_at, r.source_id)).source_id
    )

    # And the run after that is empty again.
    records, _, _ = drain(connector, "account", new_cursor)
    assert records == []


def test_cursor_without_read_at_keeps_the_plain_overlap(sb: Sandbox, org: Org) -> None:
    connector = make_connector(sb.info)
    first, cursor, _ = drain(connector, "account", None)
    # A cursor as written before ``read_at`` existed: position and the rows delivered within
    # ``overlap`` of it. The run starts ``overlap`` before its position, so a row committed late
    # with a SystemModstamp 30 s behind it is still caught, and the remembered rows are skipped.
    # (An Account-only cursor, as stored before the account kind also read AccountHistory:
    # it is taken as Account's, and the owner history gets its first read.)
    old = {"ts": cursor["Account"]["ts"], "id": cursor["Account"]["id"]}
    old["recent"] = {r.source_id: iso_ts(r.modified_at) for r in first}
    cursor = old
    late = insert(sb.state, "Account", {"Name": "Late Commit"}, org.t0 - dt.timedelta(seconds=25))
    head = sb.state.ledger_head()
    records, after, _ = drain(connector, "account", cursor)
    assert [r.source_id for r in records] == [late]
    assert len(api_calls(sb.state, head)) == 1 + 1  # Account; AccountHistory's first page
    assert "read_at" in after["Account"]  # from now on the window follows the run's read time


def test_equal_timestamps_across_page_boundaries_lose_nothing(sb: Sandbox) -> None:
    stamp = (sb.state.now() - dt.timedelta(hours=1)).replace(microsecond=123000)
    ids = {insert(sb.state, "Account", {"Name": f"Tie {i}"}, stamp) for i in range(7)}
    connector = make_connector(sb.info, page_size=3)
    head = sb.state.ledger_head()
    records, _, pages = drain(connector, "account", None)
    assert [len(p.records) for p in pages] == [3, 3, 1, 0]  # then no owner history
    assert [r.source_id for r in records] == sorted(ids)
    # login, describe, count, 3 pages; then AccountHistory: describe, 1 page
    assert len(api_calls(sb.state, head)) == 1 + 1 + 1 + 3 + 2
    # Resuming from the middle page's checkpoint yields exactly the rest.
    rest, _, _ = drain(make_connector(sb.info, page_size=3), "account", pages[1].cursor)
    assert [r.source_id for r in rest] == sorted(ids)[6:]


def test_hard_delete_is_found_by_the_reconciliation_pass(sb: Sandbox, org: Org) -> None:
    ids = org.ids
    connector = make_connector(sb.info, reconcile_page_size=2)
    _, cursor, _ = drain(connector, "contact", None)
    assert sb.state.hard_delete(SF, "Lead", ids["l1"])
    records, _, _ = drain(connector, "contact", cursor)
    assert records == []  # purged rows never appear in queryAll
    head = sb.state.ledger_head()
    pages = list(connector.reconcile_ids("contact"))
    assert len(pages) == 1 and pages[0].full_pass_complete
    assert pages[0].seen_ids == frozenset({ids["c1"], ids["l2"]})
    # Contact: one page of 1 id; Lead: one page of 1 id (page size 2, short pages end each pass).
    assert len(api_calls(sb.state, head)) == 2


def test_large_first_sync_uses_bulk_api_then_switches_to_rest(sb: Sandbox) -> None:
    start = sb.state.now() - dt.timedelta(hours=2)
    ids = [
        insert(
            sb.state,
            "Task",
            {"Subject": f"Call {i}", "TaskSubtype": "Call", "CallDurationInSeconds": 60 * i},
            start + dt.timedelta(seconds=i),
        )
        for i in range(8)
    ]
    deleted = insert(sb.state, "Task", {"Subject": "old"}, start, deleted=True)
    connector = make_connector(sb.info, bulk_threshold=5, bulk_max_records=3, page_size=2)
    head = sb.state.ledger_head()
    records, cursor, pages = drain(connector, "activity", None)
    calls = api_calls(sb.state, head)
    job = calls[4][1].rsplit("/", 1)[1]
    # The org counts 8 live Tasks (> 5): one job for all 9 rows (the deleted one too), no page.
    # Then Event, the kind's second object, small (no Events): its describe and one REST page.
    assert calls == [
        ("POST", "/services/oauth2/token"),
        ("GET", "/services/data/v59.0/sobjects/Task/describe"),
        ("GET", "/services/data/v59.0/limits/recordCount"),
        ("POST", "/services/data/v59.0/jobs/query"),
        ("GET", f"/services/data/v59.0/jobs/query/{job}"),
        *[("GET", f"/services/data/v59.0/jobs/query/{job}/results")] * 3,  # 9 rows, 3 a chunk
        ("GET", "/services/data/v59.0/sobjects/Event/describe"),
        ("GET", "/services/data/v59.0/queryAll/"),
    ]
    assert [len(p.records) for p in pages] == [3, 3, 3, 0]
    assert sorted(r.source_id for r in records) == sorted([*ids, deleted])
    assert len(records) == 9
    assert {r.source_id for r in records if r.deleted} == {deleted}
    by_id = {r.source_id: r for r in of_type(records, ActivityRecord)}
    assert by_id[ids[3]].duration_seconds == 180 and by_id[ids[3]].kind == "call"
    assert [p.cursor["Task"]["bulk"]["job"] for p in pages[:2]] == [job, job]
    assert "bulk" not in cursor["Task"]
    assert cursor["Task"]["id"] == ids[-1]
    # From now on: REST keyset, one call per object (Task, Event) when nothing changed.
    head = sb.state.ledger_head()
    more, _, _ = drain(connector, "activity", cursor)
    assert more == []
    assert [p for _, p in api_calls(sb.state, head)] == ["/services/data/v59.0/queryAll/"] * 2


@pytest.mark.parametrize("counted", [True, False], ids=["record-count", "sizing-page"])
def test_bulk_first_sync_resumes_from_its_locator(sb: Sandbox, counted: bool) -> None:
    start = sb.state.now() - dt.timedelta(hours=2)
    ids = [
        insert(sb.state, "Case", {"Subject": f"c{i}"}, start + dt.timedelta(seconds=i))
        for i in range(9)
    ]
    if not counted:  # no record counts: a REST page sizes the object, a job reads the rest
        missing = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        sb.servers[SF].faults.add(
            FaultRule(
                kind="status",
                path="/limits/recordCount",
                params={"status": 404, "body": missing},
            )
        )
    settings: dict[str, Any] = {"bulk_threshold": 5, "bulk_max_records": 3, "page_size": 2}
    pages = list(make_connector(sb.info, **settings).read("ticket", None))
    assert [len(p.records) for p in pages] == ([3, 3, 3] if counted else [2, 3, 3, 1])
    # Killed after each page but the last: after chunk 1, 2 (and after the REST page).
    for killed_after in range(len(pages) - 1):
        done = [r.source_id for p in pages[: killed_after + 1] for r in p.records]
        head = sb.state.ledger_head()
        rest, cursor, _ = drain(
            make_connector(sb.info, **settings), "ticket", pages[killed_after].cursor
        )
        assert sorted([*done, *(r.source_id for r in rest)]) == sorted(ids), killed_after
        assert len(done) + len(rest) == len(ids), killed_after
        assert cursor["id"] == ids[-1]
        calls = api_calls(sb.state, head)
        # No REST query after the first page, and no size needed: the job is created (once,
        # when the run stopped before it existed) or resumed.
        assert not any(p.endswith(("/queryAll/", "/recordCount")) for _, p in calls)
        created = calls.count(("POST", "/services/data/v59.0/jobs/query"))
        assert created == (1 if killed_after == 0 and not counted else 0), killed_after


def test_unknown_mapped_field_fails_with_a_message_naming_it(sb: Sandbox, org: Org) -> None:
    connector = make_connector(sb.info, field_map={"go_live_date": "Go_Live__c"})
    with pytest.raises(MappingError) as err:
        drain(connector, "account", None)
    text = str(err.value)
    assert (
        "go_live_date" in text and "Go_Live__c" in text and "salesforce.read.go_live_date" in text
    )
    # validate() reports the same without reading anything.
    with pytest.raises(MappingError, match="Go_Live__c"):
        make_connector(sb.info, field_map={"go_live_date": "Go_Live__c"}).validate()


def test_unknown_mapped_field_at_runtime_maps_invalid_field(sb: Sandbox, org: Org) -> None:
    _, cursor, _ = drain(make_connector(sb.info), "deal", None)
    # The mapping changed after the first sync: no describe runs, the query itself fails.
    connector = make_connector(sb.info, field_map={"contract_term_months": "Term__c"})
    with pytest.raises(MappingError) as err:
        drain(connector, "deal", cursor)
    assert "contract_term_months" in str(err.value) and "Term__c" in str(err.value)


def test_mapping_key_that_is_no_attribute_is_refused_at_construction(sb: Sandbox) -> None:
    with pytest.raises(MappingError, match="golive"):
        make_connector(sb.info, field_map={"golive": "Go_Live_Date__c"})


def test_extra_fields_and_switched_off_attributes(sb: Sandbox, org: Org) -> None:
    connector = make_connector(sb.info, field_map={"extra.account_type": "Type", "usage_score": ""})
    sb.state.update(SF, "Account", org.ids["a1"], {"Type": "Customer - Direct"})
    records, _, _ = drain(connector, "account", None)
    a1 = next(r for r in of_type(records, AccountRecord) if r.source_id == org.ids["a1"])
    assert a1.extra == {"account_type": "Customer - Direct"}
    assert a1.usage_score is None
