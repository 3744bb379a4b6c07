"""``HubStore.iter_pages(plain=True)`` gives the values SQLAlchemy's rows give, page after page.

Why: unify reads every live contact, account and link through it; on SQLite the plain rows come
from the driver with the columns' result processors applied by the hub itself, and a processor
left out would hand unify a time as text or an id list as a string without anyone noticing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from unified_model import tables as t
from unified_model.store import HubStore

AT = dt.datetime(2026, 12, 7, 9, 15, 30, 250000, tzinfo=dt.UTC)


def _pages(store: HubStore, table: sa.Table, columns: list[Any], **kw: Any) -> list[list[Any]]:
    return [list(map(tuple, page)) for page in store.iter_pages(table, columns, **kw)]


def test_plain_pages_equal_sqlalchemy_rows(store: HubStore) -> None:
    accounts = [
        {
            "source": "salesforce" if i % 2 else "hubspot",
            "source_id": f"{i:05d}",
            "name": f"Acme {i}",
            "website": None if i % 4 == 0 else f"https://acme{i}.example",
            "modified_at": AT + dt.timedelta(minutes=i),
            "deleted": i % 7 == 0,
        }
        for i in range(53)
    ]
    store.upsert_rows(t.SourceAccount, accounts)
    contacts = [
        {
            "source": "hubspot",
            "source_id": f"c{i:04d}",
            "email": f"p{i}@acme{i % 5}.example",
            "account_source_ids": [f"{i % 9:05d}", f"{i % 11:05d}"] if i % 3 else [],
            "created_at": AT - dt.timedelta(days=i),
        }
        for i in range(41)
    ]
    store.upsert_rows(t.Contact, contacts)
    acc, con = t.table_of(t.SourceAccount), t.table_of(t.Contact)
    cases: list[tuple[sa.Table, list[Any], Any]] = [
        (acc, [acc.c.source, acc.c.source_id, acc.c.name, acc.c.modified_at], None),
        (acc, list(acc.columns), acc.c.deleted.is_(False)),  # every type the table has
        (con, list(con.columns), None),  # the JSON id lists decoded
        (con, [con.c.source, con.c.source_id, con.c.account_source_ids], None),
    ]
    for table, columns, where in cases:
        rows = _pages(store, table, columns, where=where, size=10)
        plain = _pages(store, table, columns, where=where, size=10, plain=True)
        assert plain == rows
        assert sum(map(len, plain)) == (45 if where is not None else len(_all(store, table)))
    # the values are the decoded ones, not the stored text
    first = _pages(store, acc, [acc.c.source, acc.c.source_id, acc.c.modified_at], plain=True)
    assert first[0][0][2] == AT  # hubspot 00000: an aware datetime, not its stored text
    ids = _pages(store, con, [con.c.source, con.c.source_id, con.c.account_source_ids], plain=True)
    assert ids[0][1][2] == ["00001", "00001"]


def _all(store: HubStore, table: sa.Table) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(table)))
