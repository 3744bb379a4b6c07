"""The Salesforce emulator answers the unmodified simple-salesforce client as a real org does:
sObject rows (all fields with nulls, ``attributes``), 201/204/200/300/404 statuses, upsert's
``created`` flag, describe/metadata, ``updated``/``deleted`` windows, ``limits``, error arrays
(``INVALID_FIELD``, ``INVALID_FIELD_FOR_INSERT_UPDATE``, ``REQUIRED_FIELD_MISSING``…), derived
fields and OpportunityHistory rows, and ``Sforce-Limit-Info``/``Date`` on every response."""

from __future__ import annotations

import datetime as dt
import email.utils
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF


def test_https_with_the_sandbox_ca_even_when_the_environment_points_elsewhere(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A REQUESTS_CA_BUNDLE that does not contain the sandbox CA (like the machine's own).
    other = tmp_path / "other-ca.pem"
    other.write_text(Path(certifi.where()).read_text())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    url = f"{sb.info.salesforce_url}/services/data/"
    env_trusting = requests.Session()
    env_trusting.verify = sb.info.ca_bundle  # silently overridden by the environment
    with pytest.raises(requests.exceptions.SSLError):
        env_trusting.get(url, timeout=5)
    assert t.sandbox_session(sb.info).get(url, timeout=5).status_code == 200
    default_trust = requests.Session()
    default_trust.trust_env = False  # the public CAs only: the self-signed sandbox is refused
    with pytest.raises(requests.exceptions.SSLError):
        default_trust.get(url, timeout=5)


def test_get_returns_every_field_with_nulls_and_attributes(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Acme GmbH", Industry="Technology")
    rec = sf.Account.get(aid)
    assert next(iter(rec)) == "attributes"
    assert rec["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v59.0/sobjects/Account/{aid}",
    }
    assert rec["Id"] == aid and rec["Name"] == "Acme GmbH"
    assert rec["Website"] is None and "Website" in rec  # nulls present, never omitted
    assert rec["IsDeleted"] is False
    assert rec["Onboarding_Completed__c"] is False  # checkboxes are never null
    assert rec["CreatedDate"].endswith("+0000") and len(rec["CreatedDate"]) == 28
    assert rec["SystemModstamp"] == rec["LastModifiedDate"]
    assert rec["BillingAddress"] is None


def test_compound_address_next_to_its_components(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Nordwind AB", BillingCity="Malmö", BillingCountry="Sweden")
    addr = sf.Account.get(aid)["BillingAddress"]
    assert addr["city"] == "Malmö" and addr["country"] == "Sweden" and addr["street"] is None


def test_get_missing_and_deleted_are_404(sb: Sandbox, sf: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.get("001000000000000AAA")
    assert t.error_body(exc.value)[0]["errorCode"] == "NOT_FOUND"
    aid = t.account(sb.state, "Gone", deleted=True)
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.get(aid)
    assert t.error_body(exc.value)[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_create_201_update_204_delete_204(sb: Sandbox, sf: Any) -> None:
    created = sf.Account.create({"Name": "Acme", "NumberOfEmployees": "250"})
    assert created["success"] is True and created["errors"] == []
    aid = created["id"]
    assert aid.startswith("001") and len(aid) == 18
    row = sb.state.get(SF, "Account", aid)
    assert row is not None and row["data"]["NumberOfEmployees"] == 250
    before = row["modified"]
    sb.state.advance_clock(5)
    assert sf.Account.update(aid, {"Website": "https://acme.example"}) == 204
    after = sb.state.get(SF, "Account", aid)
    assert after is not None and after["modified"] > before
    assert after["data"]["Website"] == "https://acme.example"
    assert sf.Account.delete(aid) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.delete(aid)
    assert sf.query_all("SELECT Id FROM Account")["totalSize"] == 0
    rows = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(aid, True)]


def test_write_errors_are_salesforce_error_arrays(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Acme")
    cases = [
        (lambda: sf.Account.create({"Name": "X", "Bogus__c": 1}), "INVALID_FIELD"),
        (lambda: sf.Account.update(aid, {"CreatedDate": "2020-01-01T00:00:00Z"}),
         "INVALID_FIELD_FOR_INSERT_UPDATE"),
        (lambda: sf.Account.create({"Website": "x.com"}), "REQUIRED_FIELD_MISSING"),
        (lambda: sf.Account.create({"Name": "X" * 256}), "STRING_TOO_LONG"),
        (lambda: sf.Account.update(aid, {"NumberOfEmployees": "many"}), "JSON_PARSER_ERROR"),
        (lambda: sf.Contact.create({"LastName": "D", "AccountId": "001000000000000AAA"}),
         "INVALID_CROSS_REFERENCE_KEY"),
        (lambda: sf.Contact.create({"LastName": "D", "AccountId": aid[:3] + "x"}),
         "MALFORMED_ID"),
    ]  # fmt: skip
    for call, code in cases:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            call()
        assert exc.value.status == 400
        assert t.error_body(exc.value)[0]["errorCode"] == code, code
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.create({"Name": "X", "Id": aid})
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_FIELD"


def test_derived_fields_and_opportunity_history(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Acme")
    cid = sf.Contact.create({"FirstName": "Jane", "LastName": "Doe", "AccountId": aid})["id"]
    assert sf.Contact.get(cid)["Name"] == "Jane Doe"
    oid = sf.Opportunity.create(
        {
            "Name": "Acme new",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "AccountId": aid,
        }
    )["id"]
    opp = sf.Opportunity.get(oid)
    assert (opp["Probability"], opp["IsClosed"], opp["IsWon"]) == (10, False, False)
    sb.state.advance_clock(60)
    sf.Opportunity.update(oid, {"StageName": "Closed Won"})
    opp = sf.Opportunity.get(oid)
    assert (opp["Probability"], opp["IsClosed"], opp["IsWon"]) == (100, True, True)
    assert opp["LastStageChangeDate"] == opp["SystemModstamp"]
    hist = sf.query(
        "SELECT StageName, CreatedDate FROM OpportunityHistory "
        f"WHERE OpportunityId = '{oid}' ORDER BY CreatedDate"
    )["records"]
    assert [h["StageName"] for h in hist] == ["Prospecting", "Closed Won"]
    assert hist[1]["CreatedDate"] == opp["LastStageChangeDate"]
    case = sf.Case.create({"Subject": "Broken", "Status": "New", "AccountId": aid})["id"]
    c1 = sf.Case.get(case)
    assert c1["CaseNumber"] and c1["IsClosed"] is False and c1["ClosedDate"] is None
    sf.Case.update(case, {"Status": "Closed"})
    c2 = sf.Case.get(case)
    assert c2["IsClosed"] is True and c2["ClosedDate"] is not None
    task = sf.Task.create({"Subject": "Call", "WhoId": cid})["id"]
    assert sf.Task.get(task)["AccountId"] == aid


def test_account_delete_cascades_to_contacts(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Acme")
    cid = t.contact(sb.state, "Jane", "Doe", AccountId=aid)
    sf.Account.delete(aid)
    rows = sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)["records"]
    assert rows == [
        {
            "attributes": {
                "type": "Contact",
                "url": f"/services/data/v59.0/sobjects/Contact/{cid}",
            },
            "Id": cid,
            "IsDeleted": True,
        }
    ]


def test_upsert_by_external_id_created_flag_and_status(sb: Sandbox, sf: Any) -> None:
    r = sf.Account.upsert("HubSpot_Company_Id__c/hs-1", {"Name": "Acme"}, raw_response=True)
    assert r.status_code == 201 and r.json()["created"] is True
    aid = r.json()["id"]
    r = sf.Account.upsert("HubSpot_Company_Id__c/HS-1", {"Website": "acme.io"}, raw_response=True)
    assert r.status_code == 200 and r.json() == {
        "id": aid,
        "success": True,
        "errors": [],
        "created": False,
    }
    assert sf.Account.get_by_custom_id("HubSpot_Company_Id__c", "hs-1")["Website"] == "acme.io"
    t.account(sb.state, "Dup 1", HubSpot_Company_Id__c="hs-2")
    t.account(sb.state, "Dup 2", HubSpot_Company_Id__c="hs-2")
    with pytest.raises(SalesforceMoreThanOneRecord) as exc:
        sf.Account.upsert("HubSpot_Company_Id__c/hs-2", {"Name": "x"})
    assert all(
        u.startswith("/services/data/v59.0/sobjects/Account/") for u in t.error_body(exc.value)
    )
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Account.get_by_custom_id("HubSpot_Company_Id__c", "hs-2")
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.upsert("Website/x", {"Name": "x"})  # not an external id field
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get_by_custom_id("HubSpot_Company_Id__c", "nope")


def test_describe_global_object_and_metadata(sf: Any) -> None:
    glob = sf.describe()
    assert glob["maxBatchSize"] == 200 and glob["encoding"] == "UTF-8"
    names = {o["name"]: o for o in glob["sobjects"]}
    assert names["Account"]["keyPrefix"] == "001" and names["Lead"]["keyPrefix"] == "00Q"
    d = sf.Account.describe()
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["Id"]["type"] == "id" and fields["Id"]["updateable"] is False
    assert fields["OwnerId"]["referenceTo"] == ["User"]
    assert fields["OwnerId"]["relationshipName"] == "Owner"
    assert fields["HubSpot_Company_Id__c"]["externalId"] is True
    assert fields["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert [p["value"] for p in fields["Contracted_Modules__c"]["picklistValues"]][:2] == [
        "Billing",
        "Reporting",
    ]
    assert any(c["childSObject"] == "Contact" for c in d["childRelationships"])
    meta = sf.Account.metadata()
    assert meta["objectDescribe"]["name"] == "Account" and meta["recentItems"] == []


def test_updated_and_deleted_windows(sb: Sandbox, sf: Any) -> None:
    start = sb.state.now() - dt.timedelta(minutes=5)
    a = t.account(sb.state, "A")
    b = t.account(sb.state, "B")
    sf.Account.delete(b)
    sb.state.advance_clock(120)
    end = sb.state.now()
    upd = sf.Account.updated(start, end)
    assert upd["ids"] == [a]
    assert upd["latestDateCovered"].endswith(":00.000+0000")
    dele = sf.Account.deleted(start, end)
    assert [d["id"] for d in dele["deletedRecords"]] == [b]
    assert dele["deletedRecords"][0]["deletedDate"].endswith("+0000")
    assert "earliestDateAvailable" in dele
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.updated(end - dt.timedelta(days=31), end)
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_recycle_bin_empties_after_fifteen_days(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Old")
    sf.Account.delete(aid)
    assert sf.query_all("SELECT Id FROM Account", include_deleted=True)["totalSize"] == 1
    sb.state.advance_clock(16 * 86400)
    sf = t.sandbox_client(sb.info)  # the old session expired long ago
    assert sf.query_all("SELECT Id FROM Account", include_deleted=True)["totalSize"] == 0


def test_limits_and_usage_headers_on_every_response(sb: Sandbox, sf: Any) -> None:
    body = sf.limits()
    assert body["DailyApiRequests"]["Max"] == 100_000
    used = 100_000 - body["DailyApiRequests"]["Remaining"]
    assert used == 1
    assert "DailyBulkV2QueryJobs" in body
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == 2 and sf.api_usage["api-usage"].total == 100_000
    s = t.sandbox_session(sb.info)
    r = s.get(f"{sb.info.salesforce_url}/services/data/v59.0/sobjects/Account/describe")
    assert r.status_code == 401  # no token: still carries the limit header and the date
    assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")
    sb.state.advance_clock(3 * 86400)
    r = s.get(f"{sb.info.salesforce_url}/services/data/", timeout=5)
    served = email.utils.parsedate_to_datetime(r.headers["Date"])
    assert abs((served - sb.state.now()).total_seconds()) < 5  # the sandbox clock, not real time
    assert len(r.raw.headers.getlist("Date")) == 1


def test_unknown_paths_versions_and_methods(sb: Sandbox, sf: Any) -> None:
    s = t.sandbox_session(sb.info)
    s.headers["Authorization"] = f"Bearer {sf.session_id}"
    base = sb.info.salesforce_url
    r = s.get(f"{base}/services/data/v59.0/nope")
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
    r = s.get(f"{base}/services/data/vX/sobjects")
    assert r.status_code == 404
    r = s.put(f"{base}/services/data/v59.0/sobjects/Account/001000000000000AAA", json={})
    assert r.status_code == 405 and r.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    r = s.get(f"{base}/services/data/v59.0/sobjects/Nope__c/describe")
    assert r.status_code == 404
    versions = s.get(f"{base}/services/data/").json()
    assert {"label": "v59.0", "url": "/services/data/v59.0", "version": "59.0"} in versions
    r = s.post(
        f"{base}/services/data/v59.0/sobjects/Account/",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_smaller_endpoints(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Acme", Website="acme.example")
    s = t.sandbox_session(sb.info)
    s.headers["Authorization"] = f"Bearer {sf.session_id}"
    v = f"{sb.info.salesforce_url}/services/data/v59.0"
    assert set(s.get(f"{v}/").json()) >= {"query", "sobjects", "limits", "jobs", "tooling"}
    part = s.get(f"{v}/sobjects/Account/{aid}", params={"fields": "Name,Website"}).json()
    assert list(part) == ["attributes", "Name", "Website"]
    got = s.post(f"{v}/composite/sobjects/Account", json={"ids": [aid], "fields": ["Name"]}).json()
    assert got[0]["Name"] == "Acme" and set(got[0]) == {"attributes", "Name"}
    jobs = f"{v}/jobs/query"
    job = s.post(jobs, json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    aborted = s.patch(f"{jobs}/{job['id']}", json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    assert s.delete(f"{jobs}/{job['id']}").status_code == 204
    assert s.get(f"{jobs}/{job['id']}").status_code == 404
    r = s.post(f"{v}/tooling/sobjects/ApexClass", json={})
    assert r.status_code == 404
