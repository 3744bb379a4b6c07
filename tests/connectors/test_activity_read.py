"""Every activity both CRMs hold reaches the hub as an ``activity`` record: HubSpot calls,
meetings, notes and tasks, Salesforce Tasks and Events, read with the real client libraries from
the seeded sandbox. A first sync reads each exactly once, with its company/account and deal, at an
exact number of API calls (one properties list or describe per object, then HubSpot's list pages
with the associations inline, or one search or query page per object and one association batch per
linked type); an incremental sync after one change reads only
that change, one search or query per object; a deleted (archived / recycle-bin) activity comes
back as a tombstone."""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import calls, connector, drain

from connectors.records import ActivityRecord
from sandbox.control import set_config
from sandbox.generator import generate
from sandbox.runner import Sandbox
from sandbox.state import HS, SF
from tests.connectors.salesforce_support import api_calls, make_connector

HS_OBJECTS = {"calls": "call", "meetings": "meeting", "notes": "note", "tasks": "task"}


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    """The tiny profile in both CRMs; HubSpot limits out of the way."""
    with Sandbox(tmp_path) as sandbox:
        generate(sandbox.state, "tiny", 42)
        set_config(
            sandbox.state,
            HS,
            {"burst_limit": 100_000, "search_per_second": 100_000, "retry_after_seconds": 1},
        )
        yield sandbox


def _rows(sb: Sandbox, crm: str, objects: tuple[str, ...], *, deleted: bool) -> dict[str, str]:
    """``{id: object}`` of the sandbox's records of these objects (live only unless ``deleted``)."""
    marks = ",".join("?" * len(objects))
    sql = f"SELECT id, object FROM records WHERE crm=? AND object IN ({marks})"
    if not deleted:
        sql += " AND deleted=0"
    return {str(r[0]): str(r[1]) for r in sb.state.execute(sql, (crm, *objects))}


def _companies(sb: Sandbox, ot: str, rid: str) -> set[str]:
    return {str(a["to_id"]) for a in sb.state.associations(ot, rid, "companies")}


@pytest.mark.parametrize("plan", ["list", "search"])
def test_hubspot_first_sync_reads_every_activity_once_with_exact_calls(
    sb: Sandbox, plan: str
) -> None:
    expected = _rows(sb, HS, tuple(HS_OBJECTS), deleted=False)
    per_object = collections.Counter(expected.values())
    assert all(per_object[ot] > 0 for ot in HS_OBJECTS), per_object  # the profile seeds each
    conn = connector(sb, first_sync_plan=plan)
    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("activity", None))
    ids = [r.source_id for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    for r in records:
        assert isinstance(r, ActivityRecord) and not r.deleted
        assert r.kind == HS_OBJECTS[expected[r.source_id]]
        assert r.object_type == expected[r.source_id]
        assert r.account_id in _companies(sb, r.object_type, r.source_id)
        assert r.occurred_at is not None and r.owner_id
    calls_ = [(r.kind, r.duration_seconds, r.direction) for r in records if r.kind == "call"]
    assert any(d and d > 0 for _, d, _ in calls_)
    assert all(x in ("inbound", "outbound") for *_, x in calls_)
    assert any(r.deal_id for r in records)
    # Per object: the properties list (mapping check), then one list page per 100 (companies and
    # deals inline), or one search page (tiny profile: < 200 each) with one companies and one
    # deals association batch (207 where some have no deal). No archived list on a first sync.
    assert all(n <= conn.config.search_page_size for n in per_object.values())
    expected_calls = []
    for ot in HS_OBJECTS:
        expected_calls.append(("GET", f"/crm/v3/properties/{ot}"))
        if plan == "list":
            pages = -(-per_object[ot] // conn.config.list_page_size)
            expected_calls += [("GET", f"/crm/v3/objects/{ot}")] * pages
        else:
            expected_calls += [
                ("POST", f"/crm/v3/objects/{ot}/search"),
                ("POST", f"/crm/v4/associations/{ot}/companies/batch/read"),
                ("POST", f"/crm/v4/associations/{ot}/deals/batch/read"),
            ]
    assert [(m, p) for m, p, _ in calls(sb, head)] == expected_calls
    assert cursor is not None and set(cursor) == set(HS_OBJECTS.values())


def test_hubspot_incremental_reads_only_the_change_and_archives_become_tombstones(
    sb: Sandbox,
) -> None:
    conn = connector(sb, archived_check_interval_seconds=3600)
    _, cursor, _ = drain(conn.read("activity", None))
    live = _rows(sb, HS, tuple(HS_OBJECTS), deleted=False)
    call_id = next(i for i, ot in live.items() if ot == "calls")
    meeting_id = next(i for i, ot in live.items() if ot == "meetings")

    # Nothing changed: one search per object, nothing else.
    sb.state.advance_clock(120)
    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("activity", cursor))
    assert records == []
    assert [p for _, p, _ in calls(sb, head)] == [
        f"/crm/v3/objects/{ot}/search" for ot in HS_OBJECTS
    ]

    sb.state.update(HS, "calls", call_id, {"hs_call_duration": "90000"})
    assert sb.state.soft_delete(HS, "meetings", meeting_id)
    sb.state.advance_clock(3600)  # past the lag margin, and the archived check is due
    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("activity", cursor))
    assert [(r.source_id, r.deleted) for r in records] == [(call_id, False), (meeting_id, True)]
    changed, gone = records
    assert isinstance(changed, ActivityRecord) and changed.duration_seconds == 90
    assert isinstance(gone, ActivityRecord) and gone.kind == "meeting"
    # Per object a search and an archived list; the changed call adds its two association reads.
    expected = []
    for ot in HS_OBJECTS:
        expected.append(f"/crm/v3/objects/{ot}/search")
        if ot == "calls":
            expected += [
                "/crm/v4/associations/calls/companies/batch/read",
                "/crm/v4/associations/calls/deals/batch/read",
            ]
        expected.append(f"/crm/v3/objects/{ot}")
    assert [p for _, p, _ in calls(sb, head)] == expected


def test_hubspot_reconcile_covers_all_four_objects(sb: Sandbox) -> None:
    conn = connector(sb)
    pages = list(conn.reconcile_ids("activity"))
    assert [p.full_pass_complete for p in pages] == [False] * 4 + [True]
    assert pages[-1].seen_ids == frozenset(_rows(sb, HS, tuple(HS_OBJECTS), deleted=False))


def test_salesforce_first_sync_reads_every_task_and_event_once_with_exact_calls(
    sb: Sandbox,
) -> None:
    expected = _rows(sb, SF, ("Task", "Event"), deleted=True)
    assert {"Task", "Event"} <= set(expected.values())
    conn = make_connector(sb.info)
    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("activity", None))
    ids = [r.source_id for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    events = [r for r in records if r.object_type == "Event"]
    assert events and all(isinstance(r, ActivityRecord) for r in events)
    for r in events:
        row = sb.state.get(SF, "Event", r.source_id, include_deleted=True)
        assert row is not None
        data = row["data"]
        assert r.account_id == data["AccountId"]
        assert r.kind == ("call" if data["Type"] == "Call" else "meeting")
        assert r.duration_seconds == int(data["DurationInMinutes"]) * 60
        assert r.occurred_at is not None and r.owner_id == data["OwnerId"]
    # Login; per object its describe and one queryAll page (tiny profile: small objects); the
    # org's record count, asked once per connector for every object before the first first sync.
    paths = [p for _, p in api_calls(sb.state, head)]
    assert paths == [
        "/services/oauth2/token",
        "/services/data/v59.0/sobjects/Task/describe",
        "/services/data/v59.0/limits/recordCount",
        "/services/data/v59.0/queryAll/",
        "/services/data/v59.0/sobjects/Event/describe",
        "/services/data/v59.0/queryAll/",
    ]
    assert cursor is not None and set(cursor) == {"Task", "Event"}


def test_salesforce_incremental_reads_only_the_changed_event_and_its_delete(sb: Sandbox) -> None:
    conn = make_connector(sb.info)
    _, cursor, _ = drain(conn.read("activity", None))
    events = list(_rows(sb, SF, ("Event",), deleted=False))
    sb.state.advance_clock(600)
    sb.state.update(SF, "Event", events[0], {"DurationInMinutes": 15})
    assert sb.state.soft_delete(SF, "Event", events[1])
    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("activity", cursor))
    assert {(r.source_id, r.deleted) for r in records} == {(events[0], False), (events[1], True)}
    changed = next(r for r in records if r.source_id == events[0])
    assert isinstance(changed, ActivityRecord) and changed.duration_seconds == 15 * 60
    assert [p for _, p in api_calls(sb.state, head)] == ["/services/data/v59.0/queryAll/"] * 2
    # And a cursor written when activity was Task alone still resumes Task without a re-read.
    task_only = dict(cursor["Task"])
    records, _, _ = drain(conn.read("activity", task_only))
    assert {r.object_type for r in records} <= {"Event"}
