"""Custom fields made through the emulator's Tooling API behave as in a real org: 201 on create,
``DUPLICATE_DEVELOPER_NAME`` on a repeat (also for shipped custom fields), visible at once in
describe, SOQL, writes and Bulk; discoverable with a Tooling SOQL query; restricted picklists
enforced; and field-level security emulated from config (restricted: ``updateable:false`` and
``INVALID_FIELD_FOR_INSERT_UPDATE``; hidden: absent and ``INVALID_FIELD``)."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.control import set_config
from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF

STATUS_FIELD: dict[str, Any] = {
    "FullName": "Account.Hub_Status__c",
    "Metadata": {
        "label": "Hub Handover Status",
        "type": "Picklist",
        "valueSet": {
            "restricted": True,
            "valueSetDefinition": {
                "value": [
                    {"fullName": "Onboarding", "label": "Onboarding", "default": False},
                    {"fullName": "Handed over", "label": "Handed over", "default": False},
                ]
            },
        },
    },
}
SCORE_FIELD: dict[str, Any] = {
    "FullName": "Account.Hub_Score__c",
    "Metadata": {"label": "Hub Score", "type": "Number", "precision": 5, "scale": 1},
}


def test_create_field_then_use_it_everywhere(sb: Sandbox, sf: Any) -> None:
    res = sf.toolingexecute("sobjects/CustomField", method="POST", data=STATUS_FIELD)
    assert res["success"] is True and res["errors"] == [] and res["id"].startswith("00N")
    sf.toolingexecute("sobjects/CustomField", method="POST", data=SCORE_FIELD)
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    status = fields["Hub_Status__c"]
    assert status["type"] == "picklist" and status["custom"] is True
    assert status["updateable"] is True and status["restrictedPicklist"] is True
    assert [p["value"] for p in status["picklistValues"]] == ["Onboarding", "Handed over"]
    assert (fields["Hub_Score__c"]["type"], fields["Hub_Score__c"]["precision"]) == ("double", 5)
    aid = t.account(sb.state, "Acme")
    assert sf.Account.get(aid)["Hub_Status__c"] is None
    sf.Account.update(aid, {"Hub_Status__c": "Onboarding", "Hub_Score__c": 72.5})
    rows = sf.query(
        "SELECT Id, Hub_Status__c, Hub_Score__c FROM Account WHERE Hub_Status__c = 'Onboarding'"
    )["records"]
    assert [(r["Id"], r["Hub_Status__c"], r["Hub_Score__c"]) for r in rows] == [
        (aid, "Onboarding", 72.5)
    ]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.update(aid, {"Hub_Status__c": "Churned"})
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    bulk = "".join(sf.bulk2.Account.query("SELECT Id, Hub_Status__c FROM Account", wait=0))
    assert f'"{aid}","Onboarding"' in bulk


def test_duplicates_and_bad_definitions(sf: Any) -> None:
    sf.toolingexecute("sobjects/CustomField", method="POST", data=SCORE_FIELD)
    cases = [
        (SCORE_FIELD, "DUPLICATE_DEVELOPER_NAME"),
        ({"FullName": "Account.Go_Live_Date__c", "Metadata": {"label": "x", "type": "Date"}},
         "DUPLICATE_DEVELOPER_NAME"),
        ({"FullName": "Account.No_Suffix", "Metadata": {"label": "x", "type": "Text", "length": 5}},
         "FIELD_INTEGRITY_EXCEPTION"),
        ({"FullName": "Nope.X__c", "Metadata": {"label": "x", "type": "Text", "length": 5}},
         "INVALID_TYPE"),
        ({"FullName": "Account.X__c", "Metadata": {"label": "x", "type": "Hologram"}},
         "FIELD_INTEGRITY_EXCEPTION"),
        ({"FullName": "Account.Y__c", "Metadata": {"type": "Text", "length": 5}},
         "REQUIRED_FIELD_MISSING"),
    ]  # fmt: skip
    for data, code in cases:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.toolingexecute("sobjects/CustomField", method="POST", data=data)
        assert t.error_body(exc.value)[0]["errorCode"] == code, data


def test_tooling_query_lists_custom_fields(sf: Any) -> None:
    created = sf.toolingexecute("sobjects/CustomField", method="POST", data=SCORE_FIELD)
    res = sf.toolingexecute(
        "query/?q=SELECT+Id,+DeveloperName+FROM+CustomField+WHERE+TableEnumOrId='Account'"
    )
    names = {r["DeveloperName"]: r["Id"] for r in res["records"]}
    assert names["Hub_Score"] == created["id"]
    assert "HubSpot_Company_Id" in names and "CSAT" not in names  # CSAT__c lives on Case
    assert res["entityTypeName"] == "CustomField" and res["totalSize"] == len(res["records"])
    one = sf.toolingexecute(
        "query/?q=SELECT+FullName+FROM+CustomField+WHERE+DeveloperName+IN+('Hub_Score')"
    )
    assert [r["FullName"] for r in one["records"]] == ["Account.Hub_Score__c"]
    got = sf.toolingexecute(f"sobjects/CustomField/{created['id']}")
    assert got["Metadata"]["label"] == "Hub Score" and got["Metadata"]["type"] == "Number"
    assert sf.toolingexecute(f"sobjects/CustomField/{created['id']}", method="DELETE") == ""
    assert "Hub_Score__c" not in {f["name"] for f in sf.Account.describe()["fields"]}


def test_field_level_security(sb: Sandbox, sf: Any) -> None:
    sf.toolingexecute("sobjects/CustomField", method="POST", data=SCORE_FIELD)
    sf.toolingexecute("sobjects/CustomField", method="POST", data=STATUS_FIELD)
    set_config(
        sb.state,
        SF,
        {
            "fls_restricted_fields": ["Account.Hub_Score__c"],
            "fls_hidden_fields": ["Account.Hub_Status__c"],
        },
    )
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert fields["Hub_Score__c"]["updateable"] is False
    assert "Hub_Status__c" not in fields
    aid = t.account(sb.state, "Acme")
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.update(aid, {"Hub_Score__c": 1})
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert t.error_body(exc.value)[0]["fields"] == ["Hub_Score__c"]
    res = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [{"attributes": {"type": "Account"}, "id": aid, "Hub_Score__c": 1}]},
    )
    assert res[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert sf.query("SELECT Hub_Score__c FROM Account")["totalSize"] == 1  # still readable
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Hub_Status__c FROM Account")
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.update(aid, {"Hub_Status__c": "Onboarding"})
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_FIELD"
