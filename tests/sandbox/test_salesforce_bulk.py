"""Bulk API 2.0 on the Salesforce emulator works with simple-salesforce's ``bulk2`` (``wait=0``):
query jobs answer JSON, results are quoted CSV in SELECT order with dotted relationship columns,
empty fields for null, ``…Z`` datetimes and Java-style doubles, paged by ``Sforce-Locator`` with
``Sforce-NumberOfRecords`` on every page and the literal ``null`` on the last; ingest jobs accept
the upload with 201, complete on the first poll, count processed/failed rows and serve
``successfulResults``/``failedResults`` CSVs with ``sf__`` columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceOperationError

from sandbox.formats import sf_make_id
from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF, fmt_ts


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_query_csv_format(sb: Sandbox, sf: Any) -> None:
    owner = t.user(sb.state, "Ann", "Seller", "ann@example.com")
    a = t.account(sb.state, "Acme, Inc.", OwnerId=owner, AnnualRevenue=912260031,
                  NumberOfEmployees=250, Onboarding_Completed__c=True)  # fmt: skip
    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, Owner.Name, AnnualRevenue, NumberOfEmployees, Website, "
            "Onboarding_Completed__c, CreatedDate FROM Account",
            wait=0,
        )
    )
    assert len(pages) == 1
    text = pages[0]
    assert text.startswith('"Id","Name","Owner.Name","AnnualRevenue"')
    header, row = _rows(text)
    rec = dict(zip(header, row, strict=True))
    assert rec["Id"] == a and rec["Name"] == "Acme, Inc." and rec["Owner.Name"] == "Ann Seller"
    assert rec["AnnualRevenue"] == "9.12260031E8"
    assert rec["NumberOfEmployees"] == "250"
    assert rec["Website"] == ""
    assert rec["Onboarding_Completed__c"] == "true"
    assert rec["CreatedDate"].endswith("Z") and len(rec["CreatedDate"]) == 24


def test_query_pages_by_locator_with_null_last(sb: Sandbox, sf: Any) -> None:
    start = sb.state.now() - dt.timedelta(hours=1)
    rows = []
    for i in range(25):
        ts = fmt_ts(start + dt.timedelta(seconds=i))
        rows.append((SF, "Account", sf_make_id("001", 900 + i), ts, ts, 0, f'{{"Name": "A{i}"}}'))
    sb.state.insert_many(rows)
    pages = list(sf.bulk2.Account.query("SELECT Id, Name FROM Account", max_records=10, wait=0))
    assert [len(_rows(p)) - 1 for p in pages] == [10, 10, 5]
    ids = [r[0] for p in pages for r in _rows(p)[1:]]
    assert ids == sorted(r[2] for r in rows)
    # the raw protocol: headers on every page, literal "null" at the end
    s = t.sandbox_session(sb.info)
    s.headers["Authorization"] = f"Bearer {sf.session_id}"
    base = f"{sb.info.salesforce_url}/services/data/v59.0/jobs/query"
    job = s.post(
        base,
        json={"operation": "query", "query": "SELECT Id FROM Account"},
        headers={"Accept": "text/csv"},
    ).json()
    assert job["state"] == "UploadComplete" and job["object"] == "Account"
    assert job["id"].startswith("750")
    assert s.get(f"{base}/{job['id']}").json()["state"] == "JobComplete"
    r = s.get(f"{base}/{job['id']}/results", params={"maxRecords": 20})
    assert r.headers["Sforce-NumberOfRecords"] == "20" and r.headers["Sforce-Locator"] != "null"
    r = s.get(
        f"{base}/{job['id']}/results",
        params={"maxRecords": "20", "locator": r.headers["Sforce-Locator"]},
    )
    assert r.headers["Sforce-NumberOfRecords"] == "5" and r.headers["Sforce-Locator"] == "null"
    assert r.headers["Content-Type"].startswith("text/csv")


def test_query_where_keyset_position_counts_and_pages_only_the_matching_rows(
    sb: Sandbox, sf: Any
) -> None:
    # The hub's first sync continues a REST page with a Bulk job strictly after the page's last
    # (SystemModstamp, Id): the WHERE clause must filter the job (count and results), ties on the
    # timestamp broken by Id, datetime literals with milliseconds, deleted rows with queryAll.
    stamp = (sb.state.now() - dt.timedelta(hours=1)).replace(microsecond=250_000)
    rows = []
    for i in range(12):
        ts = fmt_ts(stamp + dt.timedelta(seconds=0 if i < 8 else i))
        rows.append((SF, "Account", sf_make_id("001", 700 + i), ts, ts, int(i == 9), "{}"))
    sb.state.insert_many(rows)
    ids = [r[2] for r in rows]
    literal = stamp.strftime("%Y-%m-%dT%H:%M:%S.250Z")
    soql = (
        f"SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp > {literal} OR "
        f"(SystemModstamp = {literal} AND Id > '{ids[4]}')"
    )
    s = t.sandbox_session(sb.info)
    s.headers["Authorization"] = f"Bearer {sf.session_id}"
    base = f"{sb.info.salesforce_url}/services/data/v59.0/jobs/query"
    job = s.post(base, json={"operation": "queryAll", "query": soql}).json()
    assert s.get(f"{base}/{job['id']}").json()["numberRecordsProcessed"] == 7
    got: list[str] = []
    locator = ""
    while True:
        params = {"maxRecords": 3, **({"locator": locator} if locator else {})}
        r = s.get(f"{base}/{job['id']}/results", params=params)
        got += [row[0] for row in _rows(r.text)[1:]]
        locator = r.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert got == ids[5:]  # 3 tied rows after ids[4], then 4 later ones (one deleted)
    live = "".join(sf.bulk2.Account.query(soql, wait=0))
    assert [row[0] for row in _rows(live)[1:]] == [i for i in ids[5:] if i != ids[9]]


def test_query_all_includes_deleted_and_errors_are_reported(sb: Sandbox, sf: Any) -> None:
    t.account(sb.state, "Live")
    gone = t.account(sb.state, "Gone", deleted=True)
    text = "".join(sf.bulk2.Account.query_all("SELECT Id, IsDeleted FROM Account", wait=0))
    assert [gone, "true"] in _rows(text)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        list(sf.bulk2.Account.query("SELECT Id, Bogus__c FROM Account", wait=0))
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest):
        list(sf.bulk2.Account.query("SELECT BillingAddress FROM Account", wait=0))
    with pytest.raises(SalesforceMalformedRequest):
        list(sf.bulk2.Account.query("SELECT COUNT() FROM Account", wait=0))


def test_ingest_insert_with_results(sb: Sandbox, sf: Any) -> None:
    res = sf.bulk2.Account.insert(
        records=[
            {"Name": "A", "NumberOfEmployees": "10"},
            {"Name": "", "NumberOfEmployees": "5"},
            {"Name": "C", "NumberOfEmployees": "lots"},
        ],
        wait=0,
    )
    assert res[0]["numberRecordsProcessed"] == 3 and res[0]["numberRecordsFailed"] == 2
    job = res[0]["job_id"]
    ok_text = sf.bulk2.Account.get_successful_records(job)
    assert _rows(ok_text)[0][:2] == ["sf__Id", "sf__Created"]
    ok = list(csv.DictReader(io.StringIO(ok_text)))
    assert [(r["sf__Created"], r["Name"], r["NumberOfEmployees"]) for r in ok] == [
        ("true", "A", "10")
    ]
    row = sb.state.get(SF, "Account", ok[0]["sf__Id"])
    assert row is not None and row["data"]["NumberOfEmployees"] == 10
    bad_text = sf.bulk2.Account.get_failed_records(job)
    assert _rows(bad_text)[0][:2] == ["sf__Id", "sf__Error"]
    bad = list(csv.DictReader(io.StringIO(bad_text)))
    assert bad[0]["sf__Error"].startswith("REQUIRED_FIELD_MISSING:")
    assert bad[0]["sf__Error"].endswith(" --") and bad[0]["sf__Id"] == ""
    assert bad[1]["sf__Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")


def test_ingest_update_upsert_delete(sb: Sandbox, sf: Any) -> None:
    a = t.account(sb.state, "A", Website="keep.example", Industry="Retail")
    res = sf.bulk2.Account.update(
        records=[{"Id": a, "Website": "", "Industry": "#N/A", "Name": "A2"}], wait=0
    )
    assert res[0]["numberRecordsFailed"] == 0
    row = sb.state.get(SF, "Account", a)
    assert row is not None
    assert row["data"]["Website"] == "keep.example"  # empty cell: unchanged
    assert row["data"]["Industry"] is None  # #N/A: null
    assert row["data"]["Name"] == "A2"
    res = sf.bulk2.Account.upsert(
        records=[
            {"HubSpot_Company_Id__c": "hs-9", "Name": "New"},
            {"HubSpot_Company_Id__c": "hs-9", "Name": "Again"},
        ],
        external_id_field="HubSpot_Company_Id__c",
        wait=0,
    )
    ok = _rows(sf.bulk2.Account.get_successful_records(res[0]["job_id"]))
    assert [r[1] for r in ok[1:]] == ["true", "false"]
    res = sf.bulk2.Account.delete(records=[{"Id": a}, {"Id": "001000000000000AAA"}], wait=0)
    assert res[0]["numberRecordsProcessed"] == 2 and res[0]["numberRecordsFailed"] == 1
    assert sb.state.get(SF, "Account", a) is None


def test_ingest_unknown_column_fails_the_job(sf: Any) -> None:
    with pytest.raises(SalesforceOperationError) as exc:
        sf.bulk2.Account.insert(records=[{"Name": "A", "Nope__c": "1"}], wait=0)
    assert "Nope__c" in str(exc.value)


def test_upload_answers_201_and_only_once(sb: Sandbox, sf: Any) -> None:
    s = t.sandbox_session(sb.info)
    s.headers["Authorization"] = f"Bearer {sf.session_id}"
    base = f"{sb.info.salesforce_url}/services/data/v59.0/jobs/ingest"
    job = s.post(base, json={"operation": "insert", "object": "Account"}).json()
    assert job["state"] == "Open"
    assert job["contentUrl"] == f"services/data/v59.0/jobs/ingest/{job['id']}/batches"
    put = s.put(
        f"{base}/{job['id']}/batches",
        data=b"Name\nA\n",
        headers={"Content-Type": "text/csv"},
    )
    assert put.status_code == 201 and put.content == b""
    again = s.put(f"{base}/{job['id']}/batches", data=b"Name\nB\n")
    assert again.status_code == 409
    closed = s.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"}).json()
    assert closed["state"] == "UploadComplete"
    polled = s.get(f"{base}/{job['id']}").json()
    assert polled["state"] == "JobComplete" and polled["numberRecordsProcessed"] == 1
    listed = s.get(base).json()
    assert [j["id"] for j in listed["records"]] == [job["id"]]


def _gated_chunks(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Small jobs thresholds, and a gate before the second chunk of an ingest job: the test
    sees the job in progress, deterministically, with the database lock free."""
    from sandbox.salesforce import bulk

    monkeypatch.setattr(bulk, "SYNC_INGEST_ROWS", 5)
    monkeypatch.setattr(bulk, "INGEST_CHUNK_ROWS", 3)
    reached, release = threading.Event(), threading.Event()
    apply_chunk = bulk.Bulk2._apply_chunk

    def gated(self: Any, job: Any, schema: Any, header: Any, body: Any, start: int, *rest: Any):
        if start == 3:
            reached.set()
            assert release.wait(20), "the test never released the job"
        return apply_chunk(self, job, schema, header, body, start, *rest)

    monkeypatch.setattr(bulk.Bulk2, "_apply_chunk", gated)
    return reached, release


def _ingest(sb: Sandbox, sf: Any, ids: list[str]) -> tuple[Any, str, dict[str, Any]]:
    s = t.sandbox_session(sb.info)
    s.headers["Authorization"] = f"Bearer {sf.session_id}"
    base = f"{sb.info.salesforce_url}/services/data/v59.0/jobs/ingest"
    job = s.post(base, json={"object": "Account", "operation": "update"}).json()
    body = "Id,Industry\n" + "".join(f"{rid},Energy\n" for rid in ids)
    put = s.put(f"{base}/{job['id']}/batches", data=body, headers={"Content-Type": "text/csv"})
    assert put.status_code == 201
    closed = s.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"})
    return s, f"{base}/{job['id']}", closed.json()


def test_a_large_ingest_job_runs_in_the_background_while_hubspot_answers(
    sb: Sandbox, sf: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job above ``SYNC_INGEST_ROWS`` is closed at once and processed in batches: polls say
    ``InProgress``, the other APIs answer meanwhile (one lock, held per batch only), and the
    job then completes with every row. Before, a 150,000-row job held the sandbox for 80 s."""
    reached, release = _gated_chunks(monkeypatch)
    ids = [t.account(sb.state, f"A{i}") for i in range(8)]
    s, url, closed = _ingest(sb, sf, ids)
    assert closed["state"] == "UploadComplete"
    assert reached.wait(10)
    assert s.get(url).json()["state"] == "InProgress"
    hs = t.sandbox_session(sb.info)
    hs.headers["Authorization"] = f"Bearer {sb.info.hs_token}"
    answer = hs.get(
        f"{sb.info.hubspot_url}/crm/v3/objects/companies", params={"limit": 1}, timeout=5
    )
    assert answer.status_code == 200
    release.set()
    deadline = time.monotonic() + 10
    while (job := s.get(url).json())["state"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job["state"] == "JobComplete" and job["numberRecordsProcessed"] == 8
    ok = list(csv.DictReader(io.StringIO(s.get(f"{url}/successfulResults").text)))
    assert sorted(r["sf__Id"] for r in ok) == sorted(ids)
    assert all(sb.state.get(SF, "Account", rid)["data"]["Industry"] == "Energy" for rid in ids)


def test_aborting_a_job_in_progress_stops_it_at_the_next_batch(
    sb: Sandbox, sf: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reached, release = _gated_chunks(monkeypatch)
    ids = [t.account(sb.state, f"A{i}") for i in range(8)]
    s, url, _ = _ingest(sb, sf, ids)
    assert reached.wait(10)
    assert s.patch(url, json={"state": "Aborted"}).json()["state"] == "Aborted"
    release.set()
    deadline = time.monotonic() + 10
    while s.get(url).json().get("numberRecordsProcessed", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    job = s.get(url).json()
    # the batch under way when the abort came finishes (as an org's does); the third never starts
    assert job["state"] == "Aborted" and job["numberRecordsProcessed"] == 6
    industries = [sb.state.get(SF, "Account", rid)["data"].get("Industry") for rid in ids]
    assert industries.count("Energy") == 6 and industries[6:] == [None, None]
