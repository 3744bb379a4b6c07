"""``gather_facts`` reads a chunk's child rows as the driver gives them on SQLite (named tuples
made by ``_driver_rows``, each column's result processor applied): every customer's rows must be
the values SQLAlchemy's own rows carry (timestamps aware, JSON decoded, booleans and dates
typed), in the canonical order, without tombstones, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from tests.unified_model.test_company_kpis_window import MODELS, OWNERS, portfolio
from unified_model import tables as t
from unified_model.insights import _FACT_UNUSED, gather_facts
from unified_model.store import HubStore

FACT_TABLES = {
    "deals": t.Deal,
    "tickets": t.Ticket,
    "emails": t.Email,
    "contacts": t.Contact,
    "activities": t.Activity,
}


def _expected(store: HubStore, model: type[Any], customer: str) -> list[tuple[Any, ...]]:
    """The customer's live rows of ``model`` through SQLAlchemy's rows, canonically ordered."""
    tbl = t.table_of(model)
    columns = [c for c in tbl.columns if c.name not in _FACT_UNUSED[model]]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(*columns)
            .where(tbl.c.customer_id == customer, tbl.c.deleted.is_(False))
            .order_by(tbl.c.source, tbl.c.source_id)
        ).all()
    return [tuple(r) for r in rows]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=portfolio())
def test_fact_rows_are_the_values_sqlalchemy_reads(
    store: HubStore, rows: dict[str, list[Any]]
) -> None:
    with store.engine.begin() as conn:
        for model in (*MODELS.values(), t.Owner, t.Customer):
            conn.execute(t.table_of(model).delete())
    store.upsert_rows(t.Owner, OWNERS, newer_only=False)
    for name, model in MODELS.items():
        for i, row in enumerate(rows[name]):
            row.deleted = i % 5 == 4  # some tombstones, which facts leave out
        store.upsert_rows(model, [r.model_dump() for r in rows[name]], newer_only=False)
    customers = [t.Customer(id=cid) for cid in ("c1", "c2", "c3")]
    store.upsert_rows(t.Customer, [c.model_dump() for c in customers], newer_only=False)

    with store.session() as s:
        facts = gather_facts(s, customers, {}, {})

    checked = 0
    for f in facts:
        for name, model in FACT_TABLES.items():
            got = [tuple(r) for r in getattr(f, name)]
            assert got == _expected(store, model, f.customer.id), (name, f.customer.id)
            checked += len(got)
    # every live row of the three customers, counted from what was stored
    assert checked == sum(
        not r.deleted and r.customer_id in ("c1", "c2", "c3") for name in MODELS for r in rows[name]
    )
