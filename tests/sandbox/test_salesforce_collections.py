"""sObject Collections on the Salesforce emulator, driven through ``sf.restful`` as the hub does:
HTTP 200 with per-record results in input order, ``success:false`` results without an ``id``,
``allOrNone`` rollback with ``ALL_OR_NONE_OPERATION_ROLLED_BACK``, missing ids as per-record
``INVALID_CROSS_REFERENCE_KEY``, upsert's ``created`` flag and ``attributes``-first rule,
retrieve with nulls for missing ids, and 400 ``EXCEEDED_ID_LIMIT`` above 200 records."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF


def _acct(name: str | None, **extra: object) -> dict[str, object]:
    rec: dict[str, object] = {"attributes": {"type": "Account"}, **extra}
    if name is not None:
        rec["Name"] = name
    return rec


def test_create_mixed_results_in_order(sb: Sandbox, sf: Any) -> None:
    res = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": False, "records": [_acct("A"), _acct(None), _acct("C")]},
    )
    assert [r["success"] for r in res] == [True, False, True]
    assert "id" not in res[1]
    assert res[1]["errors"] == [
        {
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [Name]",
            "fields": ["Name"],
        }
    ]
    assert sb.state.count(SF, "Account") == 2
    assert sb.state.get(SF, "Account", res[0]["id"]) is not None


def test_all_or_none_rolls_everything_back(sb: Sandbox, sf: Any) -> None:
    res = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": True, "records": [_acct("A"), _acct(None), _acct("C")]},
    )
    assert [r["success"] for r in res] == [False, False, False]
    assert res[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert res[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert res[2]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert all("id" not in r for r in res)
    assert sb.state.count(SF, "Account") == 0


def test_update_with_missing_id_fails_only_that_record(sb: Sandbox, sf: Any) -> None:
    a = t.account(sb.state, "A")
    b = t.account(sb.state, "B")
    gone = "001000000000000AAA"
    res = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [
                _acct(None, id=a, Website="a.example"),
                _acct(None, id=gone, Website="x.example"),
                _acct(None, id=b, Industry="Retail"),
            ]
        },
    )
    assert res[0] == {"id": a, "success": True, "errors": []}
    assert res[1]["success"] is False and "id" not in res[1]
    assert res[1]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert res[2]["success"] is True
    row = sb.state.get(SF, "Account", b)
    assert row is not None and row["data"]["Industry"] == "Retail"
    readonly = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [_acct(None, id=a, IsDeleted=True)]},
    )
    assert readonly[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_upsert_by_external_id(sb: Sandbox, sf: Any) -> None:
    existing = t.account(sb.state, "Old", HubSpot_Company_Id__c="hs-1")
    res = sf.restful(
        "composite/sobjects/Account/HubSpot_Company_Id__c",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "HubSpot_Company_Id__c": "HS-1", "Name": "N"},
                {"attributes": {"type": "Account"}, "HubSpot_Company_Id__c": "hs-2", "Name": "M"},
                {"attributes": {"type": "Account"}, "Name": "no key"},
            ],
        },
    )
    assert res[0] == {"id": existing, "success": True, "errors": [], "created": False}
    assert res[1]["created"] is True and res[1]["success"] is True
    assert res[2]["success"] is False
    row = sb.state.get(SF, "Account", existing)
    assert row is not None and row["data"]["Name"] == "N"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful(
            "composite/sobjects/Account/HubSpot_Company_Id__c",
            method="PATCH",
            json={"records": [{"Name": "x", "attributes": {"type": "Account"}}]},
        )
    assert t.error_body(exc.value)[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_delete_and_retrieve(sb: Sandbox, sf: Any) -> None:
    a = t.account(sb.state, "A", Website="a.example")
    b = t.account(sb.state, "B")
    gone = "001000000000000AAA"
    got = sf.restful(
        "composite/sobjects/Account", params={"ids": f"{a},{gone}", "fields": "Id,Name,Website"}
    )
    assert got[0] == {
        "attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{a}"},
        "Id": a,
        "Name": "A",
        "Website": "a.example",
    }
    assert got[1] is None
    res = sf.restful(
        "composite/sobjects",
        method="DELETE",
        params={"ids": f"{a},{gone},{b}", "allOrNone": "false"},
    )
    assert [r["success"] for r in res] == [True, False, True]
    assert res[1]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert sb.state.count(SF, "Account") == 0
    rolled = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{a}", "allOrNone": "true"}
    )
    assert rolled[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_limits_and_malformed_requests(sf: Any) -> None:
    too_many = {"records": [_acct(f"A{i}") for i in range(201)]}
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json=too_many)
    assert t.error_body(exc.value)[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json={"records": [{"Name": "no type"}]})
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_TYPE"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json={"records": [_acct("A", Nope__c=1)]})
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_FIELD"


def test_two_hundred_records_in_one_call(sb: Sandbox, sf: Any) -> None:
    res = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [_acct(f"A{i}") for i in range(200)]},
    )
    assert len(res) == 200 and all(r["success"] for r in res)
    assert len({r["id"] for r in res}) == 200
