"""REST SOQL on the Salesforce emulator behaves like a real org for the real client: paging by
``nextRecordsUrl`` (a ``/services/data/`` path) with ``totalSize`` of the whole result on every
page, ``Sforce-Query-Options: batchSize``, stable pages while records change, ``queryAll`` with
deleted rows, nested parent objects (null when unresolved), the filter/order subset the hub uses,
and the ``MALFORMED_QUERY``/``INVALID_FIELD``/``INVALID_TYPE`` errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.formats import sf_make_id
from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t
from sandbox.state import SF, fmt_ts


def _bulk_accounts(sb: Sandbox, n: int, start: dt.datetime) -> list[str]:
    """``n`` accounts, one second apart, inserted in one batch (fast)."""
    rows = []
    ids = []
    for i in range(n):
        rid = sf_make_id("001", 500_000 + i)
        ts = fmt_ts(start + dt.timedelta(seconds=i))
        rows.append((SF, "Account", rid, ts, ts, 0, f'{{"Name": "Acct {i:04d}"}}'))
        ids.append(rid)
    sb.state.insert_many(rows)
    return ids


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["Id"] for r in records]


def test_paging_next_records_url_is_a_path_and_total_size_is_whole(sb: Sandbox, sf: Any) -> None:
    ids = _bulk_accounts(sb, 450, sb.state.now() - dt.timedelta(days=1))
    first = sf.query(
        "SELECT Id, Name FROM Account ORDER BY SystemModstamp, Id",
        headers={"Sforce-Query-Options": "batchSize=200"},
    )
    assert first["totalSize"] == 450 and first["done"] is False
    assert len(first["records"]) == 200
    url = first["nextRecordsUrl"]
    assert url.startswith("/services/data/v59.0/query/01g") and url.endswith("-200")
    second = sf.query_more(url, identifier_is_url=True)
    assert second["totalSize"] == 450 and len(second["records"]) == 200
    third = sf.query_more(second["nextRecordsUrl"].rsplit("/", 1)[1])  # the id form
    assert third["done"] is True and "nextRecordsUrl" not in third
    assert _ids(first["records"] + second["records"] + third["records"]) == ids
    # the client's own paging helper walks the same path
    assert (
        _ids(sf.query_all("SELECT Id FROM Account ORDER BY SystemModstamp, Id")["records"]) == ids
    )


def test_default_page_is_2000_and_batch_size_is_clamped(sb: Sandbox, sf: Any) -> None:
    _bulk_accounts(sb, 2100, sb.state.now() - dt.timedelta(days=1))
    page = sf.query("SELECT Id FROM Account")
    assert len(page["records"]) == 2000 and page["totalSize"] == 2100
    small = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(small["records"]) == 200


def test_pages_stay_stable_while_records_change(sb: Sandbox, sf: Any) -> None:
    ids = _bulk_accounts(sb, 600, sb.state.now() - dt.timedelta(days=1))
    soql = "SELECT Id FROM Account ORDER BY SystemModstamp, Id"
    opts = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query(soql, headers=opts)
    # A record already served moves to the end; one not yet served is deleted.
    sf.Account.update(ids[0], {"Website": "moved.example"})
    sf.Account.delete(ids[300])
    seen = _ids(first["records"])
    page = first
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        assert page["totalSize"] == 600
        seen += _ids(page["records"])
    expected_unchanged = [i for i in ids if i not in (ids[0], ids[300])]
    assert [i for i in seen if i != ids[0]] == expected_unchanged  # nothing skipped, order kept


def test_locator_expires_after_idle_minutes(sb: Sandbox, sf: Any) -> None:
    _bulk_accounts(sb, 300, sb.state.now() - dt.timedelta(days=1))
    first = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
    sb.state.advance_clock(16 * 60)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert t.error_body(exc.value)[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_incremental_window_query(sb: Sandbox, sf: Any) -> None:
    base = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)
    ids = _bulk_accounts(sb, 10, base)
    rows = sf.query_all(
        "SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp >= 2026-05-01T10:00:05Z "
        "AND SystemModstamp < 2026-05-01T12:00:07.000+02:00 ORDER BY SystemModstamp, Id LIMIT 2000"
    )["records"]
    assert _ids(rows) == ids[5:7]
    assert rows[0]["SystemModstamp"] == "2026-05-01T10:00:05.000+0000"


def test_parent_paths_nested_and_null_when_unresolved(sb: Sandbox, sf: Any) -> None:
    owner = t.user(sb.state, "Ann", "Seller", "ann@example.com", Department="Sales")
    aid = t.account(sb.state, "Acme", OwnerId=owner)
    c1 = t.contact(sb.state, "Jane", "Doe", AccountId=aid)
    c2 = t.contact(sb.state, "Solo", "Person")
    rows = sf.query_all(
        "SELECT Id, Name, Account.Name, Account.Owner.Email, Account.Owner.Name FROM Contact "
        "ORDER BY Name"
    )["records"]
    by_id = {r["Id"]: r for r in rows}
    nested = by_id[c1]["Account"]
    assert nested["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v59.0/sobjects/Account/{aid}",
    }
    assert nested["Name"] == "Acme"
    assert nested["Owner"]["Email"] == "ann@example.com"
    assert nested["Owner"]["Name"] == "Ann Seller"
    assert by_id[c2]["Account"] is None
    assert list(by_id[c1]) == ["attributes", "Id", "Name", "Account"]


def test_filters(sb: Sandbox, sf: Any) -> None:
    a = t.account(sb.state, "Acme GmbH", Industry="Technology", NumberOfEmployees=250,
                  Contracted_Modules__c="Billing;Payroll", Onboarding_Completed__c=True,
                  Go_Live_Date__c="2026-01-15")  # fmt: skip
    b = t.account(sb.state, "Beta AG", Industry="Retail", NumberOfEmployees=40,
                  Contracted_Modules__c="Reporting", Onboarding_Completed__c=False)  # fmt: skip
    c = t.account(sb.state, "Gamma 50% Ltd", NumberOfEmployees=None)

    def q(where: str) -> set[str]:
        return {r["Id"] for r in sf.query_all(f"SELECT Id FROM Account WHERE {where}")["records"]}

    assert q("Name = 'acme gmbh'") == {a}  # case-insensitive equality
    assert q("Industry != 'Technology'") == {b, c}  # != includes nulls
    assert q("NumberOfEmployees > 100") == {a}
    assert q("NumberOfEmployees = null") == {c}
    assert q("NumberOfEmployees != null AND NumberOfEmployees <= 40") == {b}
    assert q("Industry IN ('Retail', 'Technology')") == {a, b}
    assert q("Industry NOT IN ('Retail')") == {a, c}
    assert q("Name LIKE 'ac%'") == {a}
    assert q("Name LIKE '%50\\% %'") == {c}
    assert q("(Industry = 'Retail' OR NumberOfEmployees > 200) AND Name LIKE '%a%'") == {a, b}
    assert q("NOT Industry = 'Retail'") == {a, c}
    assert q("Onboarding_Completed__c = true") == {a}
    assert q("Onboarding_Completed__c = false") == {b, c}
    assert q("Contracted_Modules__c INCLUDES ('Payroll')") == {a}
    assert q("Contracted_Modules__c INCLUDES ('Billing;Reporting', 'Reporting')") == {b}
    assert q("Contracted_Modules__c EXCLUDES ('Billing')") == {b, c}
    assert q("Go_Live_Date__c >= 2026-01-01 AND Go_Live_Date__c < 2026-02-01") == {a}
    assert q(f"Id = '{a[:15]}'") == {a}  # 15-character ids match their 18-character form
    assert q("CreatedDate = LAST_N_DAYS:1") == {a, b, c}
    assert q("CreatedDate < YESTERDAY") == set()
    assert q("CreatedDate = TODAY") == {a, b, c}


def test_order_by_nulls_limit_offset(sb: Sandbox, sf: Any) -> None:
    x = t.account(sb.state, "X", NumberOfEmployees=5)
    y = t.account(sb.state, "Y", NumberOfEmployees=None)
    z = t.account(sb.state, "Z", NumberOfEmployees=50)

    def q(tail: str) -> list[str]:
        return _ids(sf.query_all(f"SELECT Id FROM Account {tail}")["records"])

    assert q("ORDER BY NumberOfEmployees") == [y, x, z]  # ASC: nulls first by default
    assert q("ORDER BY NumberOfEmployees DESC") == [z, x, y]  # DESC: nulls last
    assert q("ORDER BY NumberOfEmployees ASC NULLS LAST") == [x, z, y]
    assert q("ORDER BY NumberOfEmployees DESC NULLS FIRST, Name") == [y, z, x]
    assert q("ORDER BY Name DESC LIMIT 2") == [z, y]
    assert q("ORDER BY Name LIMIT 2 OFFSET 1") == [y, z]
    res = sf.query("SELECT Id FROM Account ORDER BY Name LIMIT 2")
    assert res["totalSize"] == 2


def test_order_with_nulls_pages_without_gaps(sb: Sandbox, sf: Any) -> None:
    rows = []
    for i in range(450):
        rid = sf_make_id("001", 700_000 + i)
        emp = "null" if i % 3 == 0 else str(i % 7)
        ts = fmt_ts(sb.state.now())
        rows.append(
            (SF, "Account", rid, ts, ts, 0, f'{{"Name": "A{i}", "NumberOfEmployees": {emp}}}')
        )
    sb.state.insert_many(rows)
    soql = "SELECT Id FROM Account ORDER BY NumberOfEmployees DESC NULLS FIRST, Name"
    paged = sf.query_all(soql, headers={"Sforce-Query-Options": "batchSize=200"})["records"]
    whole = sf.query(soql + " LIMIT 450")["records"]
    assert len(paged) == 450 and _ids(paged) == _ids(whole)


def test_count_and_query_all_include_deleted(sb: Sandbox, sf: Any) -> None:
    t.account(sb.state, "Live")
    gone = t.account(sb.state, "Gone", deleted=True)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 1
    assert sf.query("SELECT COUNT() FROM Account", include_deleted=True)["totalSize"] == 2
    rows = sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True)[
        "records"
    ]
    assert _ids(rows) == [gone]
    assert sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true")["totalSize"] == 0


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Acount", "INVALID_TYPE"),
        ("SELECT Id, Bogus__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id, Bogus.Name FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD"),
        ("SELECT Id, Name, Name FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY"),
        ("SELECT Id Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
        ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY"),
    ],
)
def test_query_errors(sf: Any, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query(soql)
    assert exc.value.status == 400
    assert t.error_body(exc.value)[0]["errorCode"] == code


def test_fields_all_with_limit(sb: Sandbox, sf: Any) -> None:
    t.account(sb.state, "Acme")
    rec = sf.query("SELECT FIELDS(ALL) FROM Account LIMIT 200")["records"][0]
    assert "HubSpot_Company_Id__c" in rec and "SystemModstamp" in rec and rec["Name"] == "Acme"
