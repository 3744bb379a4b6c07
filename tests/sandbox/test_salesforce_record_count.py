"""``GET V/limits/recordCount`` answers the unmodified simple-salesforce client as a real org does:
``{"sObjects": [{"count", "name"}]}`` for the objects asked (unknown names ignored, objects
without live rows left out, the recycle bin not counted), every object with rows when none is
asked, a cached snapshot when the emulator is told to refresh it only now and then (stale counts,
as Salesforce's are), 404 before API 40.0, 401 without a session, faults injected like on every
other path, and each request in the ledger and the daily API usage."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF

PATH = "/services/data/v59.0/limits/recordCount"


def _org(sb: Sandbox) -> None:
    for i in range(3):
        t.account(sb.state, f"Acme {i}")
    t.account(sb.state, "Gone", deleted=True)  # in the recycle bin: not counted
    t.contact(sb.state, "Eva", "Berg")


def _counts(sf: Any, objects: str | None) -> Any:
    params = {"sObjects": objects} if objects is not None else None
    return sf.restful("limits/recordCount", params=params)


def test_counts_of_the_objects_asked_in_the_order_asked(sb: Sandbox, sf: Any) -> None:
    _org(sb)
    head = sb.state.ledger_head()
    body = _counts(sf, "Contact,Account,Lead,NoSuchObject__c")
    # Lead has no records and NoSuchObject__c is no object: both left out.
    assert body == {"sObjects": [{"count": 1, "name": "Contact"}, {"count": 3, "name": "Account"}]}
    ledger = sb.state.ledger(head, crm=SF)
    assert [(r["method"], r["path"].split("?")[0], r["status"]) for r in ledger] == [
        ("GET", PATH, 200)
    ]
    assert "sObjects=Contact%2CAccount%2CLead%2CNoSuchObject__c" in ledger[0]["path"]
    # Counted in the org's daily usage like every other request.
    assert sf.api_usage["api-usage"].used == 1  # the token request does not count
    assert sf.limits()["DailyApiRequests"]["Remaining"] == 100_000 - 2


def test_without_sobjects_every_object_with_rows_by_name(sb: Sandbox, sf: Any) -> None:
    _org(sb)
    t.user(sb.state, "Ann", "Seller", "ann@acme.example")
    assert _counts(sf, None) == {
        "sObjects": [
            {"count": 3, "name": "Account"},
            {"count": 1, "name": "Contact"},
            {"count": 1, "name": "User"},
        ]
    }


def test_a_refresh_interval_serves_stale_counts_until_it_passes(sb: Sandbox, sf: Any) -> None:
    session = t.sandbox_session(sb.info)
    config = f"{sb.info.salesforce_url}/__sandbox/config/salesforce"
    assert session.post(config, json={"record_count_refresh_seconds": 3600}).status_code == 200
    _org(sb)
    assert _counts(sf, "Account")["sObjects"] == [{"count": 3, "name": "Account"}]
    for i in range(5):
        t.account(sb.state, f"New {i}")
    sb.state.advance_clock(1800)
    assert _counts(sf, "Account")["sObjects"] == [{"count": 3, "name": "Account"}]  # stale
    sb.state.advance_clock(1800)
    assert _counts(sf, "Account")["sObjects"] == [{"count": 8, "name": "Account"}]


def test_not_before_api_40(sb: Sandbox) -> None:
    old = t.sandbox_client(sb.info, version="39.0")
    with pytest.raises(SalesforceResourceNotFound) as caught:
        _counts(old, "Account")
    assert t.error_body(caught.value)[0]["errorCode"] == "NOT_FOUND"
    assert _counts(t.sandbox_client(sb.info, version="40.0"), "Account") == {"sObjects": []}


def test_needs_a_session(sb: Sandbox, sf: Any) -> None:
    sf.session_id = "not-a-token"
    sf.headers["Authorization"] = "Bearer not-a-token"
    with pytest.raises(SalesforceExpiredSession) as caught:
        _counts(sf, "Account")
    assert t.error_body(caught.value)[0]["errorCode"] == "INVALID_SESSION_ID"


def test_a_refused_permission_injected_as_a_fault(sb: Sandbox, sf: Any) -> None:
    body = [{"message": "Insufficient Privileges", "errorCode": "INSUFFICIENT_ACCESS"}]
    rule = {
        "kind": "status",
        "path": "/limits/recordCount",
        "params": {"status": 403, "body": body},
    }
    r = t.sandbox_session(sb.info).post(f"{sb.info.salesforce_url}/__sandbox/faults", json=rule)
    assert r.status_code == 200
    with pytest.raises(SalesforceRefusedRequest) as caught:
        _counts(sf, "Account")
    assert t.error_body(caught.value) == body
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0  # other paths unaffected
