"""The Salesforce reader re-reads only what could have committed late, and sizes first syncs for free.

Contract checked against the sandbox with the real simple-salesforce client, by exact records and
the exact requests in the sandbox's ledger: after a burst of more than ``RECENT_CAP`` changes, a
sync long after the burst reads each changed row once and the sync after it re-reads nothing (the
minimum number of calls); a row whose transaction committed late, inside the overlap of the run
that read the burst, is still delivered by the next run. First syncs are sized by one
``limits/recordCount`` call per connector: an object counted above ``bulk_threshold`` goes straight
to one Bulk API 2.0 job (record count + create + poll + chunks); a small count keeps REST with no
call beyond the one count; a stale small count is overruled by the first REST page's
``totalSize``, and the job then starts strictly after that page, so every row arrives exactly once
even when rows share the SystemModstamp at the boundary; a refused count (403) falls back to that
sizing page. The run after a first sync reads nothing again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import pytest

from connectors.salesforce.reader import RECENT_CAP
from sandbox.http import FaultRule
from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF
from tests.connectors.salesforce_support import (
    api_calls,
    drain,
    fresh,
    insert,
    make_connector,
    sandbox,
)

V = "/services/data/v59.0"
QUERY_ALL = ("GET", f"{V}/queryAll/")
TOKEN = ("POST", "/services/oauth2/token")
DESCRIBE = ("GET", f"{V}/sobjects/Account/describe")
RECORD_COUNT = ("GET", f"{V}/limits/recordCount")
#: The account kind's second object, its owner history: a first read (describe, one page).
HISTORY_FIRST = [("GET", f"{V}/sobjects/AccountHistory/describe"), QUERY_ALL]
BURST = 2500
#: What the connector reads (``KIND_OBJECTS``): one record-count call asks for all of them.
EVERY_OBJECT = (
    "User",
    "Account",
    "AccountHistory",
    "Contact",
    "Lead",
    "Opportunity",
    "OpportunityHistory",
    "Case",
    "EmailMessage",
    "Task",
    "Event",
)
BULK_SETTINGS: dict[str, Any] = {"bulk_threshold": 1000, "bulk_max_records": 500, "page_size": 200}


@pytest.fixture(scope="module")
def shared_sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from sandbox(tmp_path_factory.mktemp("sf-overlap"))


@pytest.fixture
def sb(shared_sb: Sandbox) -> Sandbox:
    return fresh(shared_sb)


def _contacts(sb: Sandbox, n: int, at: dt.datetime, prefix: str) -> list[str]:
    with sb.state.transaction():
        return [
            insert(sb.state, "Contact", {"LastName": f"{prefix}{i}", "Name": f"{prefix}{i}"}, at)
            for i in range(n)
        ]


def _synced_org(sb: Sandbox) -> dict[str, object]:
    """Ten old contacts and one lead, read by a first sync; the contact kind's cursor."""
    day_ago = sb.state.now() - dt.timedelta(days=1)
    _contacts(sb, 10, day_ago, "Old ")
    insert(sb.state, "Lead", {"LastName": "Lead", "Name": "Lead", "Company": "L"}, day_ago)
    records, cursor, _ = drain(make_connector(sb.info), "contact", None)
    assert len(records) == 11
    return cursor


def _sync(sb: Sandbox, cursor: dict[str, object]) -> tuple[list[str], dict[str, object], list]:
    """One run of the contact kind with a fresh connector (as ``crmhub sync`` does)."""
    head = sb.state.ledger_head()
    records, after, _ = drain(make_connector(sb.info), "contact", cursor)
    return [r.source_id for r in records], after, api_calls(sb.state, head)


def test_burst_then_sync_long_after_reads_each_row_once_at_the_minimum(sb: Sandbox) -> None:
    assert BURST > RECENT_CAP
    cursor = _synced_org(sb)
    sb.state.advance_clock(600)
    burst = _contacts(sb, BURST, sb.state.now(), "Burst ")  # a mass update: one instant
    sb.state.advance_clock(3600)

    started = sb.state.now()
    got, cursor, calls = _sync(sb, cursor)
    assert sorted(got) == sorted(burst) and len(got) == BURST
    # The run's read time: the org clock before its first query (a Date header, whole seconds).
    read_at = dt.datetime.fromisoformat(str(cursor["Contact"]["read_at"]))  # type: ignore[index]
    assert started - dt.timedelta(seconds=1) < read_at <= sb.state.now()
    # Contact: 2,000 + 500 rows; Lead: one empty page. Nothing before the burst is re-read.
    assert calls == [TOKEN, QUERY_ALL, QUERY_ALL, QUERY_ALL]

    # Two minutes later nothing changed: one call per object, no record (the burst lies before
    # the previous run's read time minus the overlap, so no row of it can have committed late).
    sb.state.advance_clock(120)
    got, _, calls = _sync(sb, cursor)
    assert got == []
    assert calls == [TOKEN, QUERY_ALL, QUERY_ALL]


def test_late_commit_inside_the_overlap_of_a_burst_is_still_read(sb: Sandbox) -> None:
    cursor = _synced_org(sb)
    sb.state.advance_clock(600)
    burst_at = sb.state.now()
    burst = _contacts(sb, BURST, burst_at, "Burst ")
    sb.state.advance_clock(20)
    got, cursor, _ = _sync(sb, cursor)  # reads the burst 20 s after it
    assert sorted(got) == sorted(burst)

    # A transaction that was still open during that run commits now, its SystemModstamp 5 s
    # after the burst: older than the position the run stored.
    late = _contacts(sb, 1, burst_at + dt.timedelta(seconds=5), "Late ")[0]
    sb.state.advance_clock(3600)
    got, cursor, calls = _sync(sb, cursor)
    counts = Counter(got)
    assert counts[late] == 1
    # The window (the last minute before the previous run's start) holds the burst too: the
    # RECENT_CAP newest of it were remembered and skipped; the others are read again (the
    # store's upsert absorbs them), in 2,000 + 501 rows.
    assert set(got) - {late} == set(sorted(burst)[: BURST - RECENT_CAP])
    assert max(counts.values()) == 1
    assert calls == [TOKEN, QUERY_ALL, QUERY_ALL, QUERY_ALL]

    # That run started long after every change: the next one re-reads nothing.
    got, _, calls = _sync(sb, cursor)
    assert got == []
    assert calls == [TOKEN, QUERY_ALL, QUERY_ALL]


def _bulk_load(sb: Sandbox) -> tuple[dt.datetime, list[str], list[str], str]:
    """1,200 Accounts sharing one SystemModstamp (a data load), 3 edited after, 1 deleted."""
    loaded_at = (sb.state.now() - dt.timedelta(minutes=5)).replace(microsecond=250_000)
    with sb.state.transaction():
        tied = [insert(sb.state, "Account", {"Name": f"Load {i}"}, loaded_at) for i in range(1200)]
        later = [
            insert(sb.state, "Account", {"Name": f"Edit {i}"}, loaded_at + dt.timedelta(seconds=i))
            for i in range(1, 4)
        ]
        gone = insert(sb.state, "Account", {"Name": "Gone"}, loaded_at, deleted=True)
    return loaded_at, tied, later, gone


def _job_calls(job: str, chunks: int) -> list[tuple[str, str]]:
    return [
        ("POST", f"{V}/jobs/query"),
        ("GET", f"{V}/jobs/query/{job}"),
        *[("GET", f"{V}/jobs/query/{job}/results")] * chunks,
    ]


def test_first_sync_counted_above_the_bulk_threshold_goes_straight_to_bulk(sb: Sandbox) -> None:
    _, tied, later, gone = _bulk_load(sb)
    every = [*tied, *later, gone]
    connector = make_connector(sb.info, **BULK_SETTINGS)
    head = sb.state.ledger_head()
    records, cursor, pages = drain(connector, "account", None)
    calls = api_calls(sb.state, head)
    job = calls[4][1].rsplit("/", 1)[1]
    # The org counts 1,203 live Accounts (> 1,000): record count + create + poll + 3 chunks, the
    # minimum for 1,204 rows through Bulk, and no REST page to size the object.
    assert calls == [TOKEN, DESCRIBE, RECORD_COUNT, *_job_calls(job, 3), *HISTORY_FIRST]
    recount = next(r for r in sb.state.ledger(head, crm=SF) if "/recordCount" in r["path"])
    asked = unquote_plus(recount["path"]).split("sObjects=", 1)[1].split(",")
    assert sorted(asked) == sorted(EVERY_OBJECT)
    assert [len(p.records) for p in pages] == [500, 500, 204, 0]  # then no owner history
    ids = [r.source_id for r in records]
    assert sorted(ids) == sorted(every) and len(ids) == len(every)
    assert {r.source_id for r in records if r.deleted} == {gone}
    assert cursor["Account"]["id"] == later[-1] and "bulk" not in cursor["Account"]
    assert connector.usage().calls_by_object["recordCount"] == 1

    # A sync right after: the bulk-loaded rows are older than the first sync's read time minus
    # the overlap, so nothing is read again (one call, although far more than RECENT_CAP rows
    # share the newest SystemModstamps).
    head = sb.state.ledger_head()
    more, _, _ = drain(make_connector(sb.info, **BULK_SETTINGS), "account", cursor)
    assert more == []
    assert api_calls(sb.state, head) == [TOKEN, QUERY_ALL, QUERY_ALL]  # Account, AccountHistory


def test_stale_small_count_still_switches_to_bulk_after_the_first_page(sb: Sandbox) -> None:
    # The org's periodic recount ran when it held 3 Accounts; the 1,204-row load came after.
    sb.state.set_json(f"config:{SF}", {"record_count_refresh_seconds": 86_400})
    early_at = sb.state.now() - dt.timedelta(hours=1)
    early = [insert(sb.state, "Account", {"Name": f"Early {i}"}, early_at) for i in range(3)]
    counts = t.sandbox_client(sb.info).restful("limits/recordCount", params={"sObjects": "Account"})
    assert counts == {"sObjects": [{"count": 3, "name": "Account"}]}
    _, tied, later, gone = _bulk_load(sb)
    every = [*early, *tied, *later, gone]
    connector = make_connector(sb.info, **BULK_SETTINGS)
    head = sb.state.ledger_head()
    records, cursor, pages = drain(connector, "account", None)
    calls = api_calls(sb.state, head)
    job = calls[5][1].rsplit("/", 1)[1]
    assert calls == [
        TOKEN,
        DESCRIBE,
        RECORD_COUNT,  # still says 3 (stale): REST
        QUERY_ALL,  # the first 200 rows; its totalSize (1,001 = more than 1,000) wins: Bulk
        *_job_calls(job, 3),  # 1,007 rows
        *HISTORY_FIRST,
    ]
    # The sizing page is limited to threshold + 1 rows: totalSize 1,001 means "more than 1,000".
    first_query = next(
        unquote_plus(r["path"]) for r in sb.state.ledger(head, crm=SF) if "/queryAll/" in r["path"]
    )
    assert first_query.endswith("ORDER BY SystemModstamp, Id LIMIT 1001")
    # The REST page ends inside the 1,201 rows sharing one SystemModstamp: the job continues
    # strictly after its last (SystemModstamp, Id), so no row comes twice and none is missing.
    assert [len(p.records) for p in pages] == [200, 500, 500, 7, 0]  # then no owner history
    assert pages[0].cursor["Account"]["bulk"]["job"] is None
    ids = [r.source_id for r in records]
    assert sorted(ids) == sorted(every) and len(ids) == len(every)
    assert {r.source_id for r in records if r.deleted} == {gone}
    assert cursor["Account"]["id"] == later[-1] and "bulk" not in cursor["Account"]

    head = sb.state.ledger_head()
    more, _, _ = drain(make_connector(sb.info, **BULK_SETTINGS), "account", cursor)
    assert more == []
    assert api_calls(sb.state, head) == [TOKEN, QUERY_ALL, QUERY_ALL]  # Account, AccountHistory


def test_refused_record_count_falls_back_to_the_sizing_page(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    _, tied, later, gone = _bulk_load(sb)
    case = insert(sb.state, "Case", {"Subject": "c"}, sb.state.now() - dt.timedelta(hours=1))
    # The integration user lacks "View Setup and Configuration".
    refused = [{"message": "Insufficient Privileges", "errorCode": "INSUFFICIENT_ACCESS"}]
    sb.servers[SF].faults.add(
        FaultRule(
            kind="status", path="/limits/recordCount", params={"status": 403, "body": refused}
        )
    )
    connector = make_connector(sb.info, **BULK_SETTINGS)
    head = sb.state.ledger_head()
    with caplog.at_level(logging.INFO, logger="connectors.salesforce.reader"):
        records, cursor, _ = drain(connector, "account", None)
        tickets, _, _ = drain(connector, "ticket", None)
    calls = api_calls(sb.state, head)
    job = calls[5][1].rsplit("/", 1)[1]
    assert calls == [
        TOKEN,
        DESCRIBE,
        RECORD_COUNT,  # 403
        QUERY_ALL,  # sizes Account as before: 1,204 > 1,000
        *_job_calls(job, 3),
        *HISTORY_FIRST,
        ("GET", f"{V}/sobjects/Case/describe"),
        QUERY_ALL,  # no second record-count call: the refusal is kept for the connector's life
    ]
    statuses = [r["status"] for r in sb.state.ledger(head, crm=SF)]
    assert statuses[2] == 403 and statuses.count(403) == 1
    ids = [r.source_id for r in records]
    assert sorted(ids) == sorted([*tied, *later, gone]) and len(ids) == len(tied) + 4
    assert cursor["Account"]["id"] == later[-1] and "bulk" not in cursor["Account"]
    assert [r.source_id for r in tickets] == [case]
    notes = [r for r in caplog.records if "recordCount" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert "View Setup and Configuration" in notes[0].getMessage()
    assert connector.usage().calls == len(calls)


def test_first_sync_below_the_bulk_threshold_stays_on_rest(sb: Sandbox) -> None:
    at = sb.state.now() - dt.timedelta(hours=1)
    ids = [insert(sb.state, "Case", {"Subject": f"c{i}"}, at) for i in range(5)]
    deals = [insert(sb.state, "Opportunity", {"Name": f"o{i}"}, at) for i in range(3)]
    connector = make_connector(sb.info, bulk_threshold=5, page_size=2)
    head = sb.state.ledger_head()
    records, _, pages = drain(connector, "ticket", None)
    assert [r.source_id for r in records] == sorted(ids)
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert all("bulk" not in p.cursor for p in pages)
    assert api_calls(sb.state, head) == [
        TOKEN,
        ("GET", f"{V}/sobjects/Case/describe"),
        RECORD_COUNT,  # 5 Cases: not above the threshold
        *[QUERY_ALL] * 3,
    ]
    # The next first sync of the same connector uses the same counts: no call beyond its pages.
    head = sb.state.ledger_head()
    got, _, _ = drain(connector, "deal", None)
    assert sorted(r.source_id for r in got) == sorted(deals)
    assert api_calls(sb.state, head) == [
        ("GET", f"{V}/sobjects/Opportunity/describe"),
        *[QUERY_ALL] * 2,
    ]
    assert connector.usage().calls_by_object["recordCount"] == 1
