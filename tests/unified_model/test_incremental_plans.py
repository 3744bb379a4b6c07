"""The incremental look-ups read what changed, not whole tables.

On SQLite (no planner statistics, as a hub database has) two look-ups of every incremental run
scanned whole tables: the customers of the rows changed since the last run (asked for as
``DISTINCT``, SQLite walked the ``customer_id`` index and tested every row's ``changed_at``)
and the rows of re-linked accounts (``source = ? AND account_source_id IN (...)`` took the
primary key's ``source`` prefix: every row of that CRM). Each statement is explained here as it
was executed, with its bound values; the answers are checked on both databases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from unified_model import incremental as changes
from unified_model import tables as t
from unified_model.store import HubStore
from unified_model.unify import _attach_by_account

BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SINCE = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
AFTER = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


@contextmanager
def _statements(store: HubStore) -> Iterator[list[tuple[str, Any]]]:
    """The statements the store's engine executes in the block, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def _plans(store: HubStore, statements: list[tuple[str, Any]], table: str) -> list[str]:
    """SQLite's plan of each executed statement that selects from or updates ``table``."""
    wanted = (f"FROM {table.upper()}", f"UPDATE {table.upper()} ")
    plans = []
    with store.engine.connect() as conn:
        for statement, params in statements:
            sql = " ".join(statement.upper().split())
            if not sql.startswith(wanted[1]) and not (
                sql.startswith("SELECT") and wanted[0] in sql
            ):
                continue
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            plans.append(" / ".join(str(r[-1]) for r in rows))
    return plans


def _date(store: HubStore, model: type[Any], when: dt.datetime, ids: list[str]) -> None:
    tbl = t.table_of(model)
    with store.engine.begin() as conn:
        conn.execute(tbl.update().where(tbl.c.source_id.in_(ids)).values(changed_at=when))


def test_changed_customers_read_the_changed_at_range(store: HubStore) -> None:
    acts = [
        {"source": "hubspot", "source_id": f"a{i}", "customer_id": f"HUB-{i % 7}", "kind": "call"}
        for i in range(40)
    ]
    acts.append({"source": "hubspot", "source_id": "a-none", "customer_id": None})
    store.upsert_rows(t.Activity, acts, newer_only=False)
    deals = [{"source": "salesforce", "source_id": f"d{i}", "customer_id": "HUB-9"} for i in (1, 2)]
    store.upsert_rows(t.Deal, deals, newer_only=False)
    _date(store, t.Activity, BEFORE, [str(a["source_id"]) for a in acts])
    _date(store, t.Deal, BEFORE, ["d1", "d2"])
    _date(store, t.Activity, AFTER, ["a3", "a10", "a17", "a5", "a-none"])  # HUB-3 thrice, HUB-5
    _date(store, t.Deal, AFTER, ["d2"])

    with _statements(store) as seen:
        found = changes.changed_customers(store, SINCE)
    with store.engine.connect() as conn:
        unified = set(changes.customers_of_changed_rows(conn, SINCE))
    assert found == unified == {"HUB-3", "HUB-5", "HUB-9"}

    if store.dialect == "sqlite":
        for table in ("activity", "deal"):
            plans = _plans(store, seen, table)
            assert plans, f"no statement read {table}"
            for plan in plans:
                assert f"ix_{table}_changed_at" in plan, plan


def test_rows_of_relinked_accounts_are_found_by_crm_and_account(store: HubStore) -> None:
    accounts = [
        {"source": "hubspot", "source_id": f"co{i}", "customer_id": f"HUB-{i}", "name": f"C{i}"}
        for i in range(6)
    ]
    store.upsert_rows(t.SourceAccount, accounts, newer_only=False)
    rows = {
        t.Activity: [
            {"source": "hubspot", "source_id": f"a{i}", "account_source_id": f"co{i % 6}"}
            for i in range(30)
        ],
        t.Deal: [
            {"source": "hubspot", "source_id": f"d{i}", "account_source_id": f"co{i % 6}"}
            for i in range(12)
        ],
        t.Ticket: [
            {"source": "hubspot", "source_id": f"k{i}", "account_source_id": f"co{i % 6}"}
            for i in range(12)
        ],
    }
    for model, values in rows.items():
        store.upsert_rows(
            model,
            [{**r, "customer_id": f"HUB-{r['account_source_id'][2:]}"} for r in values],
            newer_only=False,
        )  # type: ignore[index]
        _date(store, model, BEFORE, [str(r["source_id"]) for r in values])
    # the accounts co1 and co4 were re-linked to another customer since the last run
    acc = t.table_of(t.SourceAccount)
    with store.engine.begin() as conn:
        for sid, cid in (("co1", "HUB-40"), ("co4", "HUB-41")):
            conn.execute(
                acc.update().where(acc.c.source_id == sid).values(customer_id=cid, changed_at=AFTER)
            )
        conn.execute(
            acc.update().where(acc.c.source_id.not_in(["co1", "co4"])).values(changed_at=BEFORE)
        )

    with _statements(store) as seen:
        written = _attach_by_account(store, SINCE)
    assert written == {"deal": 4, "ticket": 4, "activity": 10}
    with store.engine.connect() as conn:
        act = t.table_of(t.Activity)
        got = dict(conn.execute(sa.select(act.c.source_id, act.c.customer_id)).all())
    assert got["a1"] == got["a7"] == "HUB-40" and got["a4"] == "HUB-41" and got["a2"] == "HUB-2"

    if store.dialect == "sqlite":
        for table in ("activity", "deal", "ticket"):
            by_account = [
                plan
                for plan in _plans(store, seen, table)
                if plan.startswith("SEARCH") and "changed_at" not in plan.split(" / ")[0]
            ]
            assert by_account, f"no look-up by account in {table}"
            for plan in by_account:
                assert plan.split(" / ")[0].startswith(
                    f"SEARCH {table} USING INDEX ix_{table}_source_account (source=? AND "
                    "account_source_id=?)"
                ), plan


def test_writeback_candidates_look_customers_up_by_customer(store: HubStore) -> None:
    from unified_model.writeback import _candidates

    accounts = [
        {"source": crm, "source_id": f"{crm[:2]}{i}", "customer_id": f"HUB-{i}", "name": f"C{i}"}
        for crm in ("salesforce", "hubspot")
        for i in range(8)
    ]
    store.upsert_rows(t.SourceAccount, accounts, newer_only=False)
    acc = t.table_of(t.SourceAccount)
    with store.engine.begin() as conn:
        conn.execute(acc.update().values(changed_at=BEFORE, hub_fields_at=BEFORE))
    states = [
        {"customer_id": f"HUB-{i}", "status": "new_sales"} for i in (2, 5, 7)
    ]  # the customers whose handover changed since the last plan
    store.upsert_rows(t.HandoverState, states, newer_only=False)
    state = t.table_of(t.HandoverState)
    with store.engine.begin() as conn:
        conn.execute(state.update().values(changed_at=AFTER))

    with _statements(store) as seen, store.session() as session:
        found = _candidates(session, "hubspot", SINCE, 0)
    assert found == ["hu2", "hu5", "hu7"]

    if store.dialect == "sqlite":
        asked = [(sql, params) for sql, params in seen if "customer_id IN" in sql]
        by_customer = _plans(store, asked, "source_account")
        assert by_customer, "no look-up of accounts by customer"
        for plan in by_customer:
            assert "USING INDEX ix_source_account_customer_id (customer_id=?)" in plan, plan
