"""The Salesforce connector writes only hub-owned Account fields and reports each record's outcome.

Contract checked against the sandbox: ``ensure_fields`` creates the hub's fields with the right
types through the Tooling API, is idempotent, has a dry run and reports fields the integration
user cannot edit; ``write`` sends Collections batches (Bulk 2.0 above a threshold), converts hub
strings to Salesforce types, retries row locks, returns one ok / failed (retryable or not) /
skipped (deleted Account) result per update in order, and refuses any field outside the
``Hub_...__c`` allow-list before sending a request; ``read_hub_fields`` and Account reads return
the hub fields' current values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from connectors.errors import MappingError
from connectors.records import AccountRecord, FieldUpdate, HubFieldSpec, WriteResult
from connectors.salesforce import SalesforceConnector
from sandbox.http import FaultRule
from sandbox.runner import Sandbox
from sandbox.state import SF
from tests.connectors.salesforce_support import (
    Sleeps,
    api_calls,
    drain,
    fresh,
    insert,
    make_connector,
    of_type,
    sandbox,
)

STATUSES = ("new_sales", "onboarding", "ready_for_handover", "account_management", "at_risk")
SPECS = (
    HubFieldSpec("customer_id", "Hub customer ID", "string", "The customer's id in crmhub."),
    HubFieldSpec("handover_status", "Handover status", "enum", "Where it stands.", STATUSES),
    HubFieldSpec("handover_reasons", "Handover reasons", "text", "Why."),
    HubFieldSpec("ready_since", "Ready for handover since", "date"),
    HubFieldSpec("health_score", "Health score", "number"),
    HubFieldSpec("negotiation_flag", "In active negotiation", "bool"),
    HubFieldSpec("last_sync", "Last changed by crmhub", "datetime"),
)
NAMES = {
    "customer_id": "Hub_Customer_Id__c",
    "handover_status": "Hub_Handover_Status__c",
    "handover_reasons": "Hub_Handover_Reasons__c",
    "ready_since": "Hub_Ready_Since__c",
    "health_score": "Hub_Health_Score__c",
    "negotiation_flag": "Hub_Negotiation_Flag__c",
    "last_sync": "Hub_Last_Sync__c",
}
PATCH = ("PATCH", "/services/data/v59.0/composite/sobjects")


@pytest.fixture(scope="module")
def shared_sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from sandbox(tmp_path_factory.mktemp("sf-write"))


@pytest.fixture
def sb(shared_sb: Sandbox) -> Sandbox:
    return fresh(shared_sb)


def _connector(sb: Sandbox, sleeps: Sleeps | None = None, **kw: object) -> SalesforceConnector:
    return make_connector(sb.info, sleeps, hub_fields=SPECS, **kw)


def _provisioned(sb: Sandbox, n: int = 3) -> list[str]:
    """Create the hub fields and ``n`` Accounts (an hour old); return the Account ids."""
    results = _connector(sb).ensure_fields(SPECS)
    assert {r.action for r in results} == {"created"}
    start = sb.state.now() - dt.timedelta(hours=1)
    return [
        insert(sb.state, "Account", {"Name": f"A{i}"}, start + dt.timedelta(seconds=i))
        for i in range(n)
    ]


def _data(sb: Sandbox, rid: str) -> dict:
    row = sb.state.get(SF, "Account", rid, include_deleted=True)
    assert row is not None
    return row["data"]


def test_field_names_follow_the_convention() -> None:
    from connectors.salesforce.fields import derived_name

    assert {s.key: derived_name(s.key) for s in SPECS} == NAMES


def test_ensure_fields_dry_run_create_and_idempotent(sb: Sandbox) -> None:
    connector = _connector(sb)
    head = sb.state.ledger_head()
    dry = connector.ensure_fields(SPECS, dry_run=True)
    assert [(r.key, r.crm_name, r.action) for r in dry] == [
        (s.key, NAMES[s.key], "would_create") for s in SPECS
    ]
    assert api_calls(sb.state, head) == [
        ("POST", "/services/oauth2/token"),
        ("GET", "/services/data/v59.0/sobjects/Account/describe"),
    ]
    assert sb.state.schema(SF, "Account", "field") == []

    head = sb.state.ledger_head()
    created = connector.ensure_fields(SPECS)
    assert [(r.key, r.action) for r in created] == [(s.key, "created") for s in SPECS]
    calls = api_calls(sb.state, head)
    assert calls.count(("POST", "/services/data/v59.0/tooling/sobjects/CustomField")) == 7
    assert len(calls) == 1 + 7 + 1  # describe, one create per field, describe again

    defined = {d["name"]: d for d in sb.state.schema(SF, "Account", "field")}
    assert defined["Hub_Customer_Id__c"]["type"] == "string"
    assert defined["Hub_Customer_Id__c"]["length"] == 255
    assert defined["Hub_Handover_Status__c"]["type"] == "picklist"
    assert defined["Hub_Handover_Status__c"]["picklist"] == list(STATUSES)
    assert defined["Hub_Handover_Reasons__c"]["type"] == "textarea"
    assert defined["Hub_Handover_Reasons__c"]["length"] == 32768
    assert (defined["Hub_Health_Score__c"]["type"], defined["Hub_Health_Score__c"]["scale"]) == (
        "double",
        2,
    )
    assert defined["Hub_Negotiation_Flag__c"]["type"] == "boolean"
    assert defined["Hub_Negotiation_Flag__c"]["default"] is False
    assert defined["Hub_Ready_Since__c"]["type"] == "date"
    assert defined["Hub_Last_Sync__c"]["type"] == "datetime"

    head = sb.state.ledger_head()
    again = _connector(sb).ensure_fields(SPECS)
    assert {r.action for r in again} == {"exists"}
    assert len(api_calls(sb.state, head)) == 2  # login + one describe


def test_ensure_fields_reports_fields_the_user_cannot_edit_or_see(sb: Sandbox) -> None:
    sb.state.set_json(
        f"config:{SF}",
        {
            "fls_restricted_fields": ["Account.Hub_Health_Score__c"],
            "fls_hidden_fields": ["Account.Hub_Last_Sync__c"],
        },
    )
    results = {r.key: r for r in _connector(sb).ensure_fields(SPECS)}
    assert results["health_score"].action == "not_writable"
    assert "field-level security (Edit) on Account.Hub_Health_Score__c" in (
        results["health_score"].detail
    )
    assert "integration user's profile or permission set" in results["health_score"].detail
    assert results["last_sync"].action == "not_writable"
    assert "Read and Edit" in results["last_sync"].detail
    assert results["customer_id"].action == "created"
    # The next run finds the restricted field but still cannot write it.
    again = {r.key: r.action for r in _connector(sb).ensure_fields(SPECS)}
    assert again["health_score"] == "not_writable"


def test_write_converts_values_in_one_collections_call(sb: Sandbox) -> None:
    a0, a1, _ = _provisioned(sb)
    connector = _connector(sb)
    head = sb.state.ledger_head()
    results = connector.write(
        [
            FieldUpdate(
                a0,
                {
                    "customer_id": "cust-1",
                    "handover_status": "ready_for_handover",
                    "handover_reasons": "ready: all criteria met",
                    "ready_since": "2026-01-02",
                    "health_score": "72.5",
                    "negotiation_flag": "true",
                    "last_sync": "2026-01-03T04:05:06Z",
                },
            ),
            FieldUpdate(a1, {"health_score": "10", "negotiation_flag": None}),
        ]
    )
    assert results == [WriteResult(a0, "ok"), WriteResult(a1, "ok")]
    assert api_calls(sb.state, head) == [("POST", "/services/oauth2/token"), PATCH]
    d0 = _data(sb, a0)
    assert d0["Hub_Customer_Id__c"] == "cust-1"
    assert d0["Hub_Handover_Status__c"] == "ready_for_handover"
    assert d0["Hub_Ready_Since__c"] == "2026-01-02"
    assert d0["Hub_Health_Score__c"] == 72.5
    assert d0["Hub_Negotiation_Flag__c"] is True
    assert d0["Hub_Last_Sync__c"].startswith("2026-01-03T04:05:06")
    assert _data(sb, a1)["Hub_Negotiation_Flag__c"] is False

    # Clearing: None empties the field.
    assert connector.write([FieldUpdate(a0, {"customer_id": None})]) == [WriteResult(a0, "ok")]
    assert _data(sb, a0)["Hub_Customer_Id__c"] is None


def test_write_batches_of_at_most_the_batch_size(sb: Sandbox) -> None:
    ids = _provisioned(sb, 5)
    connector = _connector(sb, write_batch_size=2)
    connector.ensure_fields(SPECS)  # login + describe out of the way
    head = sb.state.ledger_head()
    results = connector.write([FieldUpdate(i, {"health_score": "1"}) for i in ids])
    assert [r.outcome for r in results] == ["ok"] * 5
    assert api_calls(sb.state, head) == [PATCH] * 3


def test_row_lock_is_retried_for_the_locked_record_only(sb: Sandbox) -> None:
    ids = _provisioned(sb)
    sb.servers[SF].faults.add(
        FaultRule(kind="row_lock", method="PATCH", times=1, params={"ids": [ids[1]]})
    )
    sleeps = Sleeps()
    connector = _connector(sb, sleeps)
    head = sb.state.ledger_head()
    results = connector.write([FieldUpdate(i, {"health_score": "5"}) for i in ids])
    assert [r.outcome for r in results] == ["ok", "ok", "ok"]
    assert api_calls(sb.state, head).count(PATCH) == 2
    assert sleeps.calls == [2.0]
    assert all(_data(sb, i)["Hub_Health_Score__c"] == 5.0 for i in ids)


def test_a_patch_whose_answer_is_lost_is_read_back_not_sent_twice(sb: Sandbox) -> None:
    """Salesforce executes the Collections PATCH but the answer never arrives (read timeout,
    dropped connection): the writer reads the Accounts back and confirms them instead of sending
    the same PATCH again. A 502 whose PATCH did not run is read back and then re-sent."""
    ids = _provisioned(sb)
    sleeps = Sleeps()
    connector = _connector(sb, sleeps)
    connector.ensure_fields(SPECS)  # login + describe out of the way
    sb.servers[SF].faults.add(FaultRule(kind="lost_answer", method="PATCH", nth=1, times=1))
    head = sb.state.ledger_head()
    results = connector.write([FieldUpdate(i, {"health_score": "7"}) for i in ids])
    assert [r.outcome for r in results] == ["ok", "ok", "ok"]
    assert all("read" in (r.reason or "") for r in results)
    calls = api_calls(sb.state, head)
    assert calls.count(PATCH) == 1  # executed once, never re-sent
    assert calls[1] == ("GET", "/services/data/v59.0/composite/sobjects/Account")
    assert sb.state.ledger(since=head, crm=SF)[0]["note"] == "answer lost"
    assert all(_data(sb, i)["Hub_Health_Score__c"] == 7.0 for i in ids)

    sb.servers[SF].faults.clear()
    sb.servers[SF].faults.add(
        FaultRule(kind="status", method="PATCH", nth=1, times=1, params={"status": 502})
    )
    head = sb.state.ledger_head()
    results = connector.write([FieldUpdate(i, {"health_score": "8"}) for i in ids])
    assert [r.outcome for r in results] == ["ok", "ok", "ok"]
    assert [c[0] for c in api_calls(sb.state, head)] == ["PATCH", "GET", "PATCH"]
    assert all(_data(sb, i)["Hub_Health_Score__c"] == 8.0 for i in ids)


def test_persistent_row_lock_fails_retryable_and_others_succeed(sb: Sandbox) -> None:
    ids = _provisioned(sb)
    sb.servers[SF].faults.add(FaultRule(kind="row_lock", method="PATCH", params={"ids": [ids[0]]}))
    sleeps = Sleeps()
    connector = _connector(sb, sleeps, row_lock_retries=2)
    head = sb.state.ledger_head()
    results = connector.write([FieldUpdate(i, {"health_score": "5"}) for i in ids])
    assert results[0].outcome == "failed" and results[0].retryable
    assert results[0].reason is not None and results[0].reason.startswith("UNABLE_TO_LOCK_ROW")
    assert [r.outcome for r in results[1:]] == ["ok", "ok"]
    assert api_calls(sb.state, head).count(PATCH) == 3  # first try + two retries
    assert sleeps.calls == [2.0, 4.0]


def test_deleted_account_is_skipped_and_never_recreated(sb: Sandbox) -> None:
    ids = _provisioned(sb)
    assert sb.state.soft_delete(SF, "Account", ids[1])
    results = _connector(sb).write([FieldUpdate(i, {"customer_id": "c"}) for i in ids])
    assert [r.outcome for r in results] == ["ok", "skipped", "ok"]
    assert results[1].reason is not None and "no longer exists" in results[1].reason
    assert sb.state.count(SF, "Account") == 2


def test_validation_failure_is_not_retryable(sb: Sandbox) -> None:
    ids = _provisioned(sb)
    sb.servers[SF].faults.add(
        FaultRule(kind="partial", method="PATCH", params={"ids": [ids[2]], "message": "Blocked"})
    )
    results = _connector(sb).write([FieldUpdate(i, {"customer_id": "c"}) for i in ids])
    assert results[2] == WriteResult(
        ids[2], "failed", "FIELD_CUSTOM_VALIDATION_EXCEPTION: Blocked", False
    )
    assert [r.outcome for r in results[:2]] == ["ok", "ok"]


def test_values_the_field_cannot_hold_fail_before_sending(sb: Sandbox) -> None:
    ids = _provisioned(sb)
    connector = _connector(sb)
    results = connector.write(
        [
            FieldUpdate(ids[0], {"health_score": "high"}),
            FieldUpdate(ids[1], {"handover_status": "promoted"}),
            FieldUpdate(ids[2], {"customer_id": "x" * 300}),
        ]
    )
    assert [(r.outcome, r.retryable) for r in results] == [("failed", False)] * 3
    assert "not a valid number" in (results[0].reason or "")
    assert "picklist" in (results[1].reason or "")
    assert "at most 255" in (results[2].reason or "")
    assert PATCH not in api_calls(sb.state, 0)


def test_quota_exhausted_mid_write_fails_the_rest_retryable(sb: Sandbox) -> None:
    ids = _provisioned(sb)
    sb.servers[SF].faults.add(FaultRule(kind="quota_exhausted", method="PATCH", nth=2))
    results = _connector(sb, write_batch_size=1).write(
        [FieldUpdate(i, {"customer_id": "c"}) for i in ids]
    )
    assert results[0].outcome == "ok"
    assert [(r.outcome, r.retryable) for r in results[1:]] == [("failed", True)] * 2
    assert "REQUEST_LIMIT_EXCEEDED" in (results[1].reason or "")


def test_allow_list_refuses_standard_fields_at_construction(sb: Sandbox) -> None:
    with pytest.raises(MappingError) as err:
        _connector(sb, hub_field_names={"handover_status": "Name"})
    assert str(err.value).startswith(
        "field mapping for hub field handover_status names Name, which is not a hub-owned "
        "field; hub fields must start with Hub_ and end with __c"
    )
    with pytest.raises(MappingError):
        _connector(sb, hub_field_names={"health_score": "Hub_Score"})  # no __c
    with pytest.raises(MappingError):
        _connector(sb, hub_field_names={"health_score": "Usage_Score__c"})  # not a hub field
    ok = _connector(sb, hub_field_names={"health_score": "Hub_Health__c"})
    assert ok is not None


def test_unconfigured_key_is_refused_before_any_request(sb: Sandbox) -> None:
    ids = _provisioned(sb, 1)
    connector = _connector(sb)
    head = sb.state.ledger_head()
    with pytest.raises(MappingError, match="website"):
        connector.write(
            [FieldUpdate(ids[0], {"customer_id": "c"}), FieldUpdate(ids[0], {"website": "x"})]
        )
    assert api_calls(sb.state, head) == []


def test_failed_bulk_ingest_job_fails_every_row_without_reading_results(sb: Sandbox) -> None:
    # The hub's fields were never created: the job fails on its header (unknown column).
    start = sb.state.now() - dt.timedelta(hours=1)
    ids = [insert(sb.state, "Account", {"Name": f"A{i}"}, start) for i in range(3)]
    connector = _connector(sb, bulk_write_threshold=2)
    head = sb.state.ledger_head()
    results = connector.write([FieldUpdate(i, {"health_score": "1"}) for i in ids])
    assert [(r.outcome, r.retryable) for r in results] == [("failed", False)] * 3
    reason = results[0].reason or ""
    assert "ended as FAILED" in reason and "Bulk Data Load Jobs" in reason
    calls = api_calls(sb.state, head)
    assert [m for m, _ in calls] == ["POST", "POST", "PUT", "PATCH", "GET"]  # token first
    assert not any(p.endswith(("Results", "Records")) for _, p in calls)


def test_bulk_ingest_above_the_threshold(sb: Sandbox) -> None:
    ids = _provisioned(sb, 4)
    assert sb.state.soft_delete(SF, "Account", ids[3])
    connector = _connector(sb, bulk_write_threshold=2)
    connector.write(
        [
            FieldUpdate(ids[1], {"handover_status": "at_risk"}),
            FieldUpdate(ids[2], {"ready_since": "2026-02-03"}),
        ]
    )
    head = sb.state.ledger_head()
    results = connector.write(
        [
            FieldUpdate(ids[0], {"health_score": "12.5", "handover_status": "onboarding"}),
            FieldUpdate(ids[1], {"health_score": "7"}),
            FieldUpdate(ids[2], {"negotiation_flag": "true", "ready_since": None}),
            FieldUpdate(ids[3], {"health_score": "1"}),
        ]
    )
    assert [r.outcome for r in results] == ["ok", "ok", "ok", "skipped"]
    calls = api_calls(sb.state, head)
    job = calls[1][1].split("/")[-2]
    ingest = f"/services/data/v59.0/jobs/ingest/{job}"
    # The protocol's minimum: create, upload, close, one poll, successful + failed results
    # (no second status read, no unprocessed records: the job processed every row).
    assert calls == [
        ("POST", "/services/data/v59.0/jobs/ingest"),
        ("PUT", f"{ingest}/batches"),
        ("PATCH", ingest),
        ("GET", ingest),
        ("GET", f"{ingest}/successfulResults"),
        ("GET", f"{ingest}/failedResults"),
    ]
    paths = [p for _, p in calls]
    assert PATCH[1] not in paths
    assert _data(sb, ids[0])["Hub_Health_Score__c"] == 12.5
    assert _data(sb, ids[0])["Hub_Handover_Status__c"] == "onboarding"
    assert _data(sb, ids[1])["Hub_Health_Score__c"] == 7.0
    assert _data(sb, ids[1])["Hub_Handover_Status__c"] == "at_risk"  # empty cell: unchanged
    assert _data(sb, ids[2])["Hub_Negotiation_Flag__c"] is True
    assert _data(sb, ids[2])["Hub_Ready_Since__c"] is None  # "#N/A" cleared it


def test_read_hub_fields_returns_the_hub_strings(sb: Sandbox) -> None:
    ids = _provisioned(sb)
    _connector(sb).write(
        [
            FieldUpdate(
                ids[0],
                {
                    "health_score": "72.5",
                    "negotiation_flag": "true",
                    "ready_since": "2026-01-02",
                    "last_sync": "2026-01-03T04:05:06Z",
                },
            ),
            FieldUpdate(ids[1], {"health_score": "10"}),
        ]
    )
    assert sb.state.soft_delete(SF, "Account", ids[2])
    connector = _connector(sb, retrieve_batch_size=2)
    head = sb.state.ledger_head()
    values = connector.read_hub_fields([*ids, "001000000000000AAA"])
    assert values[ids[0]] == {
        "customer_id": None,
        "handover_status": None,
        "handover_reasons": None,
        "ready_since": "2026-01-02",
        "health_score": "72.5",
        "negotiation_flag": "true",
        "last_sync": "2026-01-03T04:05:06Z",
    }
    assert values[ids[1]]["health_score"] == "10"
    assert values[ids[1]]["negotiation_flag"] == "false"
    assert set(values) == {ids[0], ids[1]}
    calls = api_calls(sb.state, head)
    assert calls.count(("GET", "/services/data/v59.0/composite/sobjects/Account")) == 2


def test_account_reads_carry_hub_fields_once_they_exist(sb: Sandbox) -> None:
    start = sb.state.now() - dt.timedelta(hours=1)
    a0 = insert(sb.state, "Account", {"Name": "A0"}, start)
    # First sync before the hub's fields exist: nothing to carry, and no error.
    records, cursor, _ = drain(_connector(sb), "account", None)
    assert of_type(records, AccountRecord)[0].hub_fields == {}
    assert cursor["Account"]["hub"] == []  # the account kind: Account and AccountHistory

    _connector(sb).ensure_fields(SPECS)
    _connector(sb).write([FieldUpdate(a0, {"health_score": "3", "customer_id": "c-1"})])
    # Within the re-check interval the cursor says the fields are missing: one call, no describe.
    head = sb.state.ledger_head()
    records, cursor, _ = drain(_connector(sb), "account", cursor)
    assert len(api_calls(sb.state, head)) == 3  # login + Account query + owner history query
    assert of_type(records, AccountRecord)[0].hub_fields == {}
    # After the interval, one describe finds them and the record carries their values.
    sb.state.advance_clock(7 * 3600)
    sb.state.update(SF, "Account", a0, {"Name": "A0 renamed"})
    head = sb.state.ledger_head()
    records, cursor, _ = drain(_connector(sb), "account", cursor)
    assert len(api_calls(sb.state, head)) == 4  # login + describe + query + history query
    assert of_type(records, AccountRecord)[0].hub_fields["health_score"] == "3"
    assert of_type(records, AccountRecord)[0].hub_fields["customer_id"] == "c-1"
    assert sorted(cursor["Account"]["hub"]) == sorted(NAMES.values())
    # From now on the cursor knows them: one query per object per run again.
    head = sb.state.ledger_head()
    drain(_connector(sb), "account", cursor)
    assert len(api_calls(sb.state, head)) == 3


def test_bulk_write_stream_sends_one_job_only_after_the_last_update(sb: Sandbox) -> None:
    """The hub hands a first writeback over as a stream, page by page: the connector must not
    send anything while it is still arriving, and must send it all in one job."""
    ids = _provisioned(sb, 4)
    assert sb.state.soft_delete(SF, "Account", ids[3])
    connector = _connector(sb, bulk_write_threshold=2)
    connector.write([FieldUpdate(ids[1], {"handover_status": "at_risk"})])
    head = sb.state.ledger_head()
    seen: list[list[tuple[str, str]]] = []

    def stream() -> Iterator[FieldUpdate]:
        for update in (
            FieldUpdate(ids[0], {"health_score": "12.5", "handover_status": "onboarding"}),
            FieldUpdate(ids[1], {"health_score": "7"}),
            FieldUpdate(ids[2], {"health_score": "not a number"}),
            FieldUpdate(ids[3], {"health_score": "1"}),
        ):
            seen.append(api_calls(sb.state, head))
            yield update

    results = {r.source_id: r for r in connector.write_stream(stream())}
    assert seen == [[]] * 4  # nothing sent while the updates came in
    assert {sid: r.outcome for sid, r in results.items()} == {
        ids[0]: "ok",
        ids[1]: "ok",
        ids[2]: "failed",  # refused before sending, not retryable
        ids[3]: "skipped",  # deleted meanwhile
    }
    assert not results[ids[2]].retryable
    calls = api_calls(sb.state, head)
    assert [m for m, p in calls if "/jobs/ingest" in p] == [
        "POST",
        "PUT",
        "PATCH",
        "GET",
        "GET",
        "GET",
    ]
    assert _data(sb, ids[0])["Hub_Health_Score__c"] == 12.5
    assert _data(sb, ids[0])["Hub_Handover_Status__c"] == "onboarding"
    assert _data(sb, ids[1])["Hub_Health_Score__c"] == 7.0
    assert _data(sb, ids[1])["Hub_Handover_Status__c"] == "at_risk"  # not in its row: unchanged
    assert _data(sb, ids[2]).get("Hub_Health_Score__c") is None


def test_bulk_write_stream_refuses_an_unconfigured_field_before_any_request(sb: Sandbox) -> None:
    ids = _provisioned(sb, 2)
    connector = _connector(sb, bulk_write_threshold=2)
    head = sb.state.ledger_head()
    updates = [FieldUpdate(ids[0], {"health_score": "1"}), FieldUpdate(ids[1], {"website": "x"})]
    with pytest.raises(MappingError, match="website"):
        connector.write_stream(iter(updates))
    assert api_calls(sb.state, head) == []


def test_failed_bulk_job_of_a_stream_fails_every_sent_row_as_not_retryable(sb: Sandbox) -> None:
    # The hub's fields were never created: the job fails on its header (unknown column).
    start = sb.state.now() - dt.timedelta(hours=1)
    ids = [insert(sb.state, "Account", {"Name": f"S{i}"}, start) for i in range(3)]
    connector = _connector(sb, bulk_write_threshold=2)
    head = sb.state.ledger_head()
    results = connector.write_stream(iter([FieldUpdate(i, {"health_score": "1"}) for i in ids]))
    assert sorted(r.source_id for r in results) == sorted(ids)
    assert {(r.outcome, r.retryable) for r in results} == {("failed", False)}
    reason = results[0].reason or ""
    assert "ended as FAILED" in reason and "Bulk Data Load Jobs" in reason
    calls = api_calls(sb.state, head)
    assert [m for m, _ in calls] == ["POST", "POST", "PUT", "PATCH", "GET"]  # token first
