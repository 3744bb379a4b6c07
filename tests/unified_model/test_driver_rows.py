"""On SQLite the company KPIs read their rows from the driver's cursor through generated
converters (``insights._driver_rows``), not through SQLAlchemy's rows. The named tuples must be
the very values SQLAlchemy gives: same types (UTC-aware datetimes, bools, parsed JSON), same
``None``s, the same fallback for stored text ``fromisoformat`` cannot read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from tests.unified_model.test_company_kpis_window import MODELS, portfolio
from unified_model import tables as t
from unified_model.insights import (
    _EMAIL_UNUSED,
    _UNORDERED,
    _columns,
    _driver_rows,
    _row_type,
    _stream_rows,
)
from unified_model.store import HubStore

#: the KPI tables (typed for the store's signatures)
TABLES: dict[str, type[Any]] = dict(MODELS)


def _both(store: HubStore, model: type[Any], unused: set[str]) -> tuple[list[Any], list[Any]]:
    """The table's rows through SQLAlchemy's result and through the driver's cursor."""
    tbl = t.table_of(model)
    columns = _columns(tbl, unused)
    make = _row_type(model, columns)._make
    stmt = sa.select(*columns).order_by(*tbl.primary_key.columns)
    with store.engine.connect() as conn:
        through_sqlalchemy = [make(row) for row in conn.execute(stmt)]
        through_driver = list(_driver_rows(conn, stmt, columns, make))
    return through_sqlalchemy, through_driver


def _typed(rows: list[Any]) -> list[list[tuple[type, Any, Any]]]:
    """Each value with its type and, for datetimes, its zone (equal values of other types,
    ``1 == True`` or a naive and an aware time, must not pass as the same)."""
    return [[(type(v), v, getattr(v, "tzinfo", None)) for v in row] for row in rows]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=portfolio())
def test_driver_rows_are_sqlalchemys_rows(sqlite_store: HubStore, rows: dict[str, Any]) -> None:
    store = sqlite_store
    with store.engine.begin() as conn:
        for model in TABLES.values():
            conn.execute(t.table_of(model).delete())
    for name, model in TABLES.items():
        store.upsert_rows(model, [r.model_dump() for r in rows[name]], newer_only=False)
    for name, model in TABLES.items():
        # every column, and the KPIs' own choice (interned text, ids left out)
        for unused in (set(), _EMAIL_UNUSED | _UNORDERED if name == "emails" else _UNORDERED):
            expected, got = _both(store, model, unused)
            assert len(expected) == len(rows[name])
            assert _typed(got) == _typed(expected)


def _outcome(store: HubStore) -> tuple[Any, Any]:
    """Both paths' rows of the email table, or the type of the error each raised."""
    outcomes: list[Any] = []
    for take in (0, 1):
        try:
            outcomes.append(_typed(_both(store, t.Email, set())[take]))
        except Exception as exc:
            outcomes.append(type(exc))
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("2026-06-01T09:05:00", dt.datetime(2026, 6, 1, 9, 5, tzinfo=dt.UTC)),
        ("2026-06-01 09:05:00.250000", dt.datetime(2026, 6, 1, 9, 5, 0, 250000, tzinfo=dt.UTC)),
        ("2026-6-1 9:05:00", ValueError),  # another writer's text: both paths refuse it
    ],
)
def test_times_stored_by_other_writers_read_as_sqlalchemy_reads_them(
    sqlite_store: HubStore, stored: str, read: Any
) -> None:
    store = sqlite_store
    store.upsert_rows(
        t.Email,
        [{"source": "hubspot", "source_id": "e1", "direction": "inbound", "sent_at": None}],
        newer_only=False,
    )
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE email SET sent_at = ?", (stored,))
    through_sqlalchemy, through_driver = _outcome(store)
    assert through_driver == through_sqlalchemy
    if isinstance(read, dt.datetime):  # and the reader the KPIs use takes that path
        (streamed,) = _stream_rows(store, t.Email, set())
        assert streamed.sent_at == read
        assert streamed.sent_at.tzinfo is dt.UTC
    else:
        assert through_driver is read
