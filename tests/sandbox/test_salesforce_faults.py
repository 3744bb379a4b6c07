"""Faults injected through ``/__sandbox/faults`` come out of the Salesforce emulator in
Salesforce's own shapes, as the connectors must handle them: 403 ``REQUEST_LIMIT_EXCEEDED``
(never 429), 503 ``SERVER_UNAVAILABLE``, 401 ``INVALID_SESSION_ID`` after an expired session,
``UNABLE_TO_LOCK_ROW`` as HTTP 400 for single writes but per-record failures inside a 200 for
Collections and Bulk, and ``partial`` per-record failures with the chosen code."""

from __future__ import annotations

import csv
import io
import ssl
from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF


def fault(sb: Sandbox, **rule: Any) -> None:
    r = t.sandbox_session(sb.info).post(f"{sb.info.salesforce_url}/__sandbox/faults", json=rule)
    assert r.status_code == 200, r.text


def test_rate_limit_and_quota_are_403(sb: Sandbox, sf: Any) -> None:
    for kind in ("rate_limit", "quota_exhausted"):
        fault(sb, kind=kind, path="/query", times=1)
        with pytest.raises(SalesforceRefusedRequest) as exc:
            sf.query("SELECT Id FROM Account")
        assert exc.value.status == 403
        assert t.error_body(exc.value)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0  # times=1: it passes again


def test_server_error(sb: Sandbox, sf: Any) -> None:
    fault(sb, kind="server_error", method="GET", times=1)
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Account")
    assert exc.value.status == 503
    assert t.error_body(exc.value)[0]["errorCode"] == "SERVER_UNAVAILABLE"
    fault(sb, kind="server_error", params={"status": 500}, times=1)
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.limits()
    assert exc.value.status == 500


def test_expired_token_fault_expires_every_session(sb: Sandbox, sf: Any) -> None:
    other = t.sandbox_client(sb.info)
    fault(sb, kind="expired_token", times=1)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceExpiredSession):
        other.query("SELECT Id FROM Account")  # the fault is gone, the sessions stay expired
    assert t.sandbox_client(sb.info).query("SELECT Id FROM Account")["totalSize"] == 0


def test_row_lock_single_write_is_400(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Acme")
    fault(sb, kind="row_lock", method="PATCH", path="/sobjects/Account/", times=1)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.update(aid, {"Website": "x.example"})
    assert t.error_body(exc.value)[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    row = sb.state.get(SF, "Account", aid)
    assert row is not None and "Website" not in row["data"]
    assert sf.Account.update(aid, {"Website": "x.example"}) == 204  # the retry succeeds


def test_row_lock_in_collections_fails_chosen_records_with_200(sb: Sandbox, sf: Any) -> None:
    a = t.account(sb.state, "A")
    b = t.account(sb.state, "B")
    fault(sb, kind="row_lock", path="/composite/sobjects", times=1, params={"ids": [b]})
    res = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "id": a, "Website": "a.example"},
                {"attributes": {"type": "Account"}, "id": b, "Website": "b.example"},
            ]
        },
    )
    assert res[0] == {"id": a, "success": True, "errors": []}
    assert res[1]["success"] is False
    assert res[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    row_b = sb.state.get(SF, "Account", b)
    assert row_b is not None and "Website" not in row_b["data"]


def test_partial_fault_with_code_in_collections_and_bulk(sb: Sandbox, sf: Any) -> None:
    a = t.account(sb.state, "A")
    b = t.account(sb.state, "B")
    fault(
        sb,
        kind="partial",
        path="/composite/sobjects",
        times=1,
        params={"ids": [a], "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION"},
    )
    res = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{a},{b}"})
    assert [r["success"] for r in res] == [False, True]
    assert res[0]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    fault(sb, kind="partial", path="/jobs/ingest", method="PATCH", times=1, params={"indexes": [1]})
    out = sf.bulk2.Account.insert(records=[{"Name": "X"}, {"Name": "Y"}], wait=0)
    assert out[0]["numberRecordsFailed"] == 1
    failed = list(csv.reader(io.StringIO(sf.bulk2.Account.get_failed_records(out[0]["job_id"]))))
    assert failed[1][1].startswith("FIELD_CUSTOM_VALIDATION_EXCEPTION:") and failed[1][2] == "Y"


def test_row_lock_does_not_touch_reads(sb: Sandbox, sf: Any) -> None:
    t.account(sb.state, "A")
    fault(sb, kind="row_lock", times=1)
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1


def test_a_client_that_hung_up_leaves_no_traceback_but_an_emulator_bug_does(
    sb: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server's error hook, as socketserver calls it (inside the ``except``): a peer gone
    before its answer was written (the hub's own timeout) is not the sandbox's error."""
    server = sb.servers[SF]
    for gone in (
        ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
        BrokenPipeError(32, "Broken pipe"),
        ConnectionResetError(104, "Connection reset by peer"),
    ):
        try:
            raise gone
        except OSError:
            server.handle_error(None, ("127.0.0.1", 1))
    assert capsys.readouterr().err == ""
    try:
        raise KeyError("emulator bug")
    except KeyError:
        server.handle_error(None, ("127.0.0.1", 1))
    err = capsys.readouterr().err
    assert "Traceback" in err and "emulator bug" in err
