"""The blocking checks in front of writeback: each one passes on a consistent model and fails,
with the number of failing rows, on the defect it guards against (on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.unified_model.test_pipeline import NOW, _seed
from unified_model import tables as t
from unified_model.checks import run_checks
from unified_model.store import HubStore
from unified_model.unify import unify


def _failing(store: HubStore) -> dict[str, int]:
    return {name: r.failing for name, r in run_checks(store).items() if not r.passed}


def _exec(store: HubStore, stmt: sa.Executable) -> None:
    with store.engine.begin() as conn:
        conn.execute(stmt)


def test_each_check_fails_on_its_defect(store: HubStore) -> None:
    _seed(store)
    unify(store, now=NOW)
    assert _failing(store) == {}
    acc, link, deal = t.table_of(t.SourceAccount), t.table_of(t.SourceLink), t.table_of(t.Deal)
    cust = t.table_of(t.Customer)
    accounts = {a.source_id: a for a in store.live(t.SourceAccount)}
    beta, acme = accounts["001B"], accounts["001A"]
    assert beta.customer_id != acme.customer_id

    # a deal of a linked account that lost its customer
    _exec(store, deal.update().where(deal.c.source_id == "006W").values(customer_id=None))
    assert _failing(store) == {"children_resolved": 1}
    _exec(
        store, deal.update().where(deal.c.source_id == "006W").values(customer_id=acme.customer_id)
    )

    # the account row names another customer than its link: one record in two customers
    _exec(
        store,
        acc.update().where(acc.c.source_id == "001A").values(customer_id=beta.customer_id),
    )
    assert _failing(store) == {"one_link_per_record": 1}
    # ... and a linked account whose link is gone
    _exec(
        store,
        acc.update().where(acc.c.source_id == "001A").values(customer_id=acme.customer_id),
    )
    _exec(store, link.delete().where(link.c.source_id == "001B"))
    assert _failing(store) == {"one_link_per_record": 1}

    # a live account without a customer, and a customer left without a live account
    _exec(store, acc.update().where(acc.c.source_id == "001B").values(customer_id=None))
    assert _failing(store) == {"every_account_linked": 1, "no_customer_without_source": 1}

    # a customer whose only account was deleted
    _exec(store, acc.update().where(acc.c.source_id == "001B").values(customer_id=beta.customer_id))
    _exec(store, acc.update().where(acc.c.source_id == "001B").values(deleted=True))
    failing = _failing(store)
    assert failing == {"no_customer_without_source": 1}
    # the orphan is the customer, not its deleted account
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(cust.c.id).where(cust.c.id == beta.customer_id)).scalar()
