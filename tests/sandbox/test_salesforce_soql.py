"""The emulator's SOQL compiler keeps real SOQL's grammar and semantics and pushes the work into
SQLite indexes: parse errors are ``MALFORMED_QUERY`` with a row/column, date functions are the
right day ranges on the sandbox clock, literals are normalised to the stored forms, the
incremental-sync query (``SystemModstamp >= X ORDER BY SystemModstamp, Id``) and external-id or
parent-reference lookups are index searches, and keyset paging covers every row exactly once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sandbox.formats import sf_make_id
from sandbox.salesforce.app import SalesforceApp
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.query import compile_query, date_function_range
from sandbox.salesforce.soql import BoolOp, Compare, InList, Not, parse
from sandbox.salesforce.values import csv_cell, java_double, normalize_datetime
from sandbox.state import SF, SandboxState, fmt_ts


@pytest.fixture
def state(tmp_path: Path) -> SandboxState:
    st = SandboxState(tmp_path / "sf.db")
    SalesforceApp(st)  # creates the emulator's indexes
    return st


def test_parse_shapes() -> None:
    q = parse(
        "select Id, Account.Owner.Name from Contact where (Name like 'a%' or Email != null) "
        "and not AccountId in ('001', '002') order by Name desc nulls last, Id limit 5 offset 2"
    )
    assert q.object == "Contact"
    assert [p.parts for p in q.fields] == [("Id",), ("Account", "Owner", "Name")]
    assert isinstance(q.where, BoolOp) and q.where.op == "AND"
    assert isinstance(q.where.items[1], Not)
    assert isinstance(q.where.items[1].item, InList)
    assert (q.order[0].desc, q.order[0].nulls, q.limit, q.offset) == (True, "LAST", 5, 2)
    lit = parse("SELECT Id FROM Account WHERE CreatedDate > LAST_N_DAYS:30").where
    assert isinstance(lit, Compare) and (lit.value.kind, lit.value.n) == ("datefn", 30)
    esc = parse(r"SELECT Id FROM Account WHERE Name = 'O\'Brien \\ Co'").where
    assert isinstance(esc, Compare) and esc.value.value == "O'Brien \\ Co"


@pytest.mark.parametrize(
    "soql",
    [
        "",
        "SELECT FROM Account",
        "SELECT Id FROM",
        "SELECT Id FROM Account WHERE Name = ",
        "SELECT Id FROM Account WHERE a = 1 AND b = 2 OR c = 3",
        "SELECT Id FROM Account ORDER Name",
        "SELECT Id FROM Account LIMIT 5 LIMIT 6",
        "SELECT Id FROM Account WHERE Name = 'unterminated",
        "SELECT COUNT(), Id FROM Account",
        "SELECT Id FROM Account GROUP BY Name",
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
    ],
)
def test_malformed(soql: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse(soql)
    assert exc.value.code == "MALFORMED_QUERY" and exc.value.status == 400


def test_error_message_points_at_the_token() -> None:
    with pytest.raises(ApiError) as exc:
        parse("SELECT Id FROM Account\nWHERE Name = = 'x'")
    assert "ERROR at Row:2:Column:14" in exc.value.message


def test_date_function_ranges() -> None:
    now = dt.datetime(2026, 3, 18, 15, 30, tzinfo=dt.UTC)  # a Wednesday
    day = dt.datetime(2026, 3, 18, tzinfo=dt.UTC)
    assert date_function_range("TODAY", None, now) == (day, day + dt.timedelta(days=1))
    assert date_function_range("LAST_N_DAYS", 7, now) == (
        day - dt.timedelta(days=7),
        day + dt.timedelta(days=1),
    )
    assert date_function_range("THIS_WEEK", None, now)[0] == dt.datetime(2026, 3, 15, tzinfo=dt.UTC)
    assert date_function_range("LAST_MONTH", None, now) == (
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    )
    assert date_function_range("N_DAYS_AGO", 2, now) == (
        day - dt.timedelta(days=2),
        day - dt.timedelta(days=1),
    )


def test_value_forms() -> None:
    assert normalize_datetime("2024-01-05T12:00:00+02:00") == "2024-01-05T10:00:00.000+0000"
    assert normalize_datetime("2024-01-05T10:00:00.5Z") == "2024-01-05T10:00:00.500+0000"
    assert java_double(912260031) == "9.12260031E8"
    assert java_double(15000) == "15000.0"
    assert java_double(0.25) == "0.25"
    assert csv_cell(None, None) == "" and csv_cell(None, True) == "true"


def _accounts(state: SandboxState, n: int) -> list[str]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows, ids = [], []
    for i in range(n):
        ts = fmt_ts(start + dt.timedelta(seconds=i // 3))  # ties on SystemModstamp
        rid = sf_make_id("001", 10_000 + (i * 7919) % n)
        emp = "null" if i % 4 == 0 else str(i % 5)
        rows.append(
            (
                SF,
                "Account",
                rid,
                ts,
                ts,
                0,
                f'{{"Name": "N{i % 11}", "NumberOfEmployees": {emp}, '
                f'"HubSpot_Company_Id__c": "hs-{i}"}}',
            )
        )
        ids.append(rid)
    state.insert_many(rows)
    return ids


def _plan_text(state: SandboxState, soql: str) -> str:
    plan = compile_query(state, soql)
    sql, params = plan.select_sql(None, 2000)
    return " | ".join(str(r[3]) for r in state.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_sync_and_lookup_queries_use_indexes(state: SandboxState) -> None:
    _accounts(state, 3000)
    sync = _plan_text(
        state,
        "SELECT Id, Name FROM Account WHERE SystemModstamp >= 2026-01-01T00:05:00Z "
        "ORDER BY SystemModstamp, Id LIMIT 2000",
    )
    assert "USING INDEX sf_live" in sync and "modified>?" in sync
    assert "TEMP B-TREE" not in sync  # rows come in index order: no sort
    ext = _plan_text(state, "SELECT Id FROM Account WHERE HubSpot_Company_Id__c = 'HS-7'")
    assert "sf_ext_Account_HubSpot_Company_Id__c" in ext
    child = _plan_text(
        state, f"SELECT Id FROM Contact WHERE AccountId IN ('{sf_make_id('001', 1)}')"
    )
    assert "sf_ext_Contact_AccountId" in child


@pytest.mark.parametrize(
    "order",
    [
        "SystemModstamp, Id",
        "NumberOfEmployees",
        "NumberOfEmployees DESC",
        "NumberOfEmployees ASC NULLS LAST, Name DESC",
        "Name, NumberOfEmployees DESC NULLS FIRST",
        "Id DESC",
    ],
)
def test_keyset_pages_cover_every_row_once(state: SandboxState, order: str) -> None:
    ids = _accounts(state, 700)
    plan = compile_query(state, f"SELECT Id FROM Account ORDER BY {order}")
    whole, _ = plan.fetch(None, 10_000)
    seen: list[str] = []
    after = None
    while True:
        rows, after = plan.fetch(after, 97)
        seen += [r["b"]["id"] for r in rows]
        if len(rows) < 97:
            break
    assert seen == [r["b"]["id"] for r in whole]
    assert sorted(seen) == sorted(ids)
