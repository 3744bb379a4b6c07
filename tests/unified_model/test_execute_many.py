"""``execute_many`` writes what SQLAlchemy's own executemany writes, and the audit's settlement
query finds a batch's pending rows through the (batch_id, outcome) index.

Why: the writeback ledger and audit go through ``execute_many`` (values every row shares
processed once, the driver given tuples on SQLite); a processor skipped there would store a
time or a JSON document in another form than every other writer, and nothing else would notice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from unified_model import tables as t
from unified_model.store import HubStore, execute_many

NOW = dt.datetime(2026, 12, 7, 6, 30, 15, 123456, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "source": "hubspot",
            "source_id": f"{i:04d}",
            "customer_id": None if i % 3 == 0 else f"HUB-{i}",
            "changes": {"health": [None, str(i)], "status": ["a", None]},
        }
        for i in range(n)
    ]


def _stored(store: HubStore, table: sa.Table) -> list[tuple[Any, ...]]:
    """The rows as stored, as SQLAlchemy reads them back (types processed)."""
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def _raw(store: HubStore, table: sa.Table) -> list[tuple[Any, ...]]:
    """The rows as the database holds them (no type processing): the stored form itself."""
    cols = ", ".join(f'"{c.name}"' for c in table.columns if c.name != "id")
    with store.engine.connect() as conn:
        return [
            tuple(r) for r in conn.exec_driver_sql(f"SELECT {cols} FROM {table.name} ORDER BY id")
        ]


def test_execute_many_stores_what_sqlalchemy_stores(store: HubStore) -> None:
    audit = t.table_of(t.WriteAudit)
    shared = {"run_id": "run-1", "batch_id": "run-1:1", "outcome": "pending", "at": NOW}
    rows = _rows(7)
    with store.engine.begin() as conn:
        execute_many(conn, audit.insert(), rows, shared=shared)
    ours_raw, ours = _raw(store, audit), _stored(store, audit)
    with store.engine.begin() as conn:
        conn.execute(audit.delete())
        conn.execute(audit.insert(), [{**r, **shared} for r in rows])
    assert _raw(store, audit) == ours_raw  # the same stored text of times and JSON
    assert [r[1:] for r in _stored(store, audit)] == [r[1:] for r in ours]
    assert ours[0][1:4] == ("run-1", "run-1:1", "hubspot")

    # an update keyed by a bound name, with a value the statement itself holds (``source``)
    # and a shared time in another zone: stored as UTC like every other writer stores it
    update = (
        audit.update()
        .where(audit.c.source == "hubspot", audit.c.source_id == sa.bindparam("b_sid"))
        .values(outcome=sa.bindparam("outcome"), settled_at=sa.bindparam("settled"))
    )
    params = [{"b_sid": f"{i:04d}", "outcome": "ok" if i % 2 else "failed"} for i in range(5)]
    with store.engine.begin() as conn:
        execute_many(conn, update, params, shared={"settled": LATER})
    ours_raw = _raw(store, audit)
    with store.engine.begin() as conn:
        conn.execute(audit.update().values(outcome="pending", settled_at=None))
        conn.execute(update, [{**p, "settled": LATER} for p in params])
    assert _raw(store, audit) == ours_raw
    settled = {r.source_id: (r.outcome, r.settled_at) for r in store.all(t.WriteAudit)}
    assert settled["0001"] == ("ok", LATER.astimezone(dt.UTC))
    assert settled["0000"][0] == "failed" and settled["0006"] == ("pending", None)


def test_execute_many_upserts_the_ledger_as_the_writeback_does(store: HubStore) -> None:
    ledger = t.table_of(t.WritebackLedger)
    insert = postgresql.insert(ledger) if store.dialect == "postgresql" else sqlite.insert(ledger)
    stmt = insert.on_conflict_do_update(
        index_elements=["source", "source_id", "field_key"],
        set_={"value": insert.excluded.value, "run_id": insert.excluded.run_id},
    )
    first = [
        {"source": "salesforce", "source_id": "001", "field_key": k, "value": v}
        for k, v in (("health", "80"), ("status", "new"))
    ]
    with store.engine.begin() as conn:
        execute_many(conn, stmt, first, shared={"confirmed_at": NOW, "run_id": "r1"})
        execute_many(
            conn,
            stmt,
            [{**first[0], "value": "81"}],
            shared={"confirmed_at": NOW, "run_id": "r2"},
        )
    held = {(r.field_key, r.value, r.run_id, r.confirmed_at) for r in store.all(t.WritebackLedger)}
    assert held == {("health", "81", "r2", NOW), ("status", "new", "r1", NOW)}


# migration 0009's expression index is the migrations' own (``env.MIGRATION_ONLY_INDEXES``);
# SQLAlchemy does not reflect expression indexes on SQLite and says so
@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index ix_contact_votes"
)
def test_the_migrated_schema_is_the_models_and_settling_a_batch_uses_its_index(
    sqlite_store: HubStore,
) -> None:
    with sqlite_store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id, source_id FROM write_audit "
            "WHERE batch_id = 'b' AND outcome = 'pending' AND id BETWEEN 1 AND 9"
        ).fetchall()
    assert "ix_write_audit_batch_outcome" in " ".join(str(r) for r in plan)
