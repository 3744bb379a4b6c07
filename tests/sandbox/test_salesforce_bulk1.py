"""The Salesforce emulator serves Bulk API 1.0 query and queryAll jobs well enough that
simple-salesforce's ``sf.bulk.<Object>.query(...)``/``query_all(...)`` work unchanged: the rows
equal a REST query's (datetimes as epoch milliseconds, the 1.0 JSON form), queryAll adds deleted
rows, results span several result files without loss or repeats, CSV jobs give quoted CSV and
XML result lists, and sessions, errors (``InvalidSessionId``, ``InvalidJob``, failed batches,
``ExceededQuota``), the API quota, the request ledger and injected faults behave as for REST."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import requests
from simple_salesforce.exceptions import SalesforceGeneralError

from sandbox.control import set_config
from sandbox.generator import generate
from sandbox.http import FaultRule
from sandbox.runner import Sandbox
from sandbox.salesforce import limits
from sandbox.salesforce import testing as t
from sandbox.state import SF

SOQL = "SELECT Id, Name, CreatedDate, Owner.Name, AnnualRevenue FROM Account ORDER BY Id"


@pytest.fixture
def org(sb: Sandbox) -> Sandbox:
    generate(sb.state, "tiny", 42)
    return sb


def _ms(value: str) -> int:
    return int(dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


def test_query_all_through_simple_salesforce_equals_the_rest_query(org: Sandbox) -> None:
    sf = t.sandbox_client(org.info)
    rest = sf.query_all(SOQL)["records"]
    bulk = sf.bulk.Account.query(SOQL, wait=0)
    assert [r["Id"] for r in bulk] == [r["Id"] for r in rest] and len(rest) == 30
    for b, r in zip(bulk, rest, strict=True):
        assert b["attributes"] == r["attributes"]
        assert (b["Name"], b["AnnualRevenue"]) == (r["Name"], r["AnnualRevenue"])
        assert b["CreatedDate"] == _ms(r["CreatedDate"])  # epoch ms in Bulk 1.0 JSON
        assert b["Owner"]["Name"] == r["Owner"]["Name"]
    victim = rest[0]["Id"]
    sf.Account.delete(victim)
    live = [r["Id"] for r in sf.bulk.Account.query("SELECT Id FROM Account", wait=0)]
    every = sf.bulk.Account.query_all("SELECT Id, IsDeleted FROM Account", wait=0)
    assert victim not in live and len(live) == 29
    assert {r["Id"]: r["IsDeleted"] for r in every}[victim] is True and len(every) == 30


def test_results_span_several_result_files_without_loss_or_repeats(org: Sandbox) -> None:
    set_config(org.state, SF, {"bulk_results_max_records": 7})
    sf = t.sandbox_client(org.info)
    head = len(org.state.ledger(crm=SF))
    pages = list(sf.bulk.Contact.query("SELECT Id FROM Contact", lazy_operation=True, wait=0))
    assert [len(p) for p in pages] == [7] * 18 + [3]  # 129 contacts
    ids = [r["Id"] for p in pages for r in p]
    assert len(set(ids)) == 129 == len(ids)
    assert ids == [r["Id"] for r in sf.query_all("SELECT Id FROM Contact ORDER BY Id")["records"]]
    paths = [r["path"].split("?")[0] for r in org.state.ledger(since=head, crm=SF)]
    assert paths[0] == "/services/async/59.0/job"
    assert sum(p.endswith("/result") for p in paths) == 1
    assert sum("/result/" in p for p in paths) == 19


def _session(sb: Sandbox, content_type: str) -> requests.Session:
    session = t.sandbox_session(sb.info)
    session.headers["X-SFDC-Session"] = t.oauth_token(sb.info, session)
    session.headers["Content-Type"] = content_type
    return session


def test_csv_jobs_answer_quoted_csv_and_xml_result_lists(org: Sandbox) -> None:
    base = f"{org.info.salesforce_url}/services/async/59.0"
    js = _session(org, "application/json")
    job = js.post(
        f"{base}/job", json={"operation": "query", "object": "Opportunity", "contentType": "CSV"}
    )
    assert job.status_code == 201 and job.json()["state"] == "Open"
    job_id = job.json()["id"]
    text = _session(org, "text/csv")
    batch = text.post(f"{base}/job/{job_id}/batch", data="SELECT Id, Name, Amount FROM Opportunity")
    assert batch.status_code == 201 and "<state>Queued</state>" in batch.text
    batch_id = batch.text.split("<id>")[1].split("</id>")[0]
    info = text.get(f"{base}/job/{job_id}/batch/{batch_id}")
    assert "<state>Completed</state>" in info.text and "<numberRecordsProcessed>51<" in info.text
    listing = text.get(f"{base}/job/{job_id}/batch/{batch_id}/result")
    assert listing.headers["Content-Type"].startswith("application/xml")
    result_id = listing.text.split("<result>")[1].split("</result>")[0]
    body = text.get(f"{base}/job/{job_id}/batch/{batch_id}/result/{result_id}").text
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["Id", "Name", "Amount"] and len(rows) == 52
    assert body.startswith('"Id","Name","Amount"\n"006')
    closed = js.post(f"{base}/job/{job_id}", json={"state": "Closed"})
    assert closed.json()["state"] == "Closed" and closed.json()["numberBatchesCompleted"] == 1
    again = js.post(f"{base}/job/{job_id}/batch", data="SELECT Id FROM Opportunity")
    assert again.status_code == 400 and again.json()["exceptionCode"] == "InvalidJobState"


def test_errors_use_the_bulk_1_shape(org: Sandbox) -> None:
    base = f"{org.info.salesforce_url}/services/async/59.0"
    anonymous = t.sandbox_session(org.info)
    denied = anonymous.post(f"{base}/job", json={"operation": "query", "object": "Account"})
    assert denied.status_code == 400
    assert denied.json() == {
        "exceptionCode": "InvalidSessionId",
        "exceptionMessage": "Invalid session id",
    }
    js = _session(org, "application/json")
    write = js.post(f"{base}/job", json={"operation": "insert", "object": "Account"})
    assert write.status_code == 400 and write.json()["exceptionCode"] == "InvalidJob"
    unknown = js.post(f"{base}/job", json={"operation": "query", "object": "Nope"})
    assert unknown.json()["exceptionMessage"] == "Unable to find object: Nope"
    xml = _session(org, "application/xml").get(f"{base}/job/750000000000000AAA")
    assert xml.status_code == 400 and "<exceptionCode>InvalidJob</exceptionCode>" in xml.text
    sf = t.sandbox_client(org.info)
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.bulk.Account.query("SELECT Nope FROM Account", wait=0)
    assert "No such column 'Nope' on entity 'Account'" in str(failed.value.content)
    with pytest.raises(SalesforceGeneralError) as other:
        sf.bulk.Account.query("SELECT Id FROM Contact", wait=0)
    assert "not the job's Account" in str(other.value.content)


def test_quota_and_faults_apply_to_bulk_1(org: Sandbox) -> None:
    sf = t.sandbox_client(org.info)
    org.servers["salesforce"].faults.add(
        FaultRule(kind="server_error", path="/services/async/", times=1)
    )
    with pytest.raises(SalesforceGeneralError) as unavailable:
        sf.bulk.Account.query("SELECT Id FROM Account", wait=0)
    assert unavailable.value.status == 503
    assert len(sf.bulk.Account.query("SELECT Id FROM Account", wait=0)) == 30
    set_config(org.state, SF, {"daily_limit": limits.used(org.state) + 1})
    js = _session(org, "application/json")
    base = f"{org.info.salesforce_url}/services/async/59.0"
    js.post(f"{base}/job", json={"operation": "query", "object": "Account"})  # the last one
    spent = js.post(f"{base}/job", json={"operation": "query", "object": "Account"})
    assert spent.status_code == 403
    assert spent.json() == {
        "exceptionCode": "ExceededQuota",
        "exceptionMessage": "TotalRequests Limit exceeded.",
    }
