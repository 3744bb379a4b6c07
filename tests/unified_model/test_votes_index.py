"""Migration 0009's partial index ``ix_contact_votes`` serves unify's vote count: the count
(``unify.votes_by_host``) walks it instead of sorting every voter on SQLite, it exists with the
same expression on PostgreSQL, and the count is the one Python makes from the stored contacts."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from unified_model import tables as t
from unified_model.store import HubStore
from unified_model.unify import votes_by_host


def _contact(i: int, **extra: object) -> dict[str, object]:
    host = ("acme.com", "mail.acme.com", "beta.io", "gmail.com")[i % 4]
    return {
        "source": ("salesforce", "hubspot")[i % 2],
        "source_id": f"c{i:03d}",
        "email": f"P{i}@{host.upper()}",
        "email_normalized": f"p{i}@{host}",
        "customer_id": ("HUB-1", "HUB-2", None)[i % 3],
        "linked_via": (None, None, "domain", "none")[i % 4 if i % 5 else 0],
        "deleted": i % 7 == 6,
        **extra,
    }


def test_vote_count_reads_the_partial_index(store: HubStore) -> None:
    rows = [_contact(i) for i in range(60)]
    rows.append(_contact(60, email_normalized=""))  # no normalised address: not a host vote
    store.upsert_rows(t.Contact, rows, newer_only=False)
    query = votes_by_host(store.dialect)

    with store.engine.connect() as conn:
        counted = {(h, cid): n for h, cid, n in conn.execute(query)}
        if store.dialect == "sqlite":
            # as executed: with its bound parameter (SQLite plans partial indexes with the
            # values bound)
            compiled = query.compile(conn)
            plan = " ".join(
                str(r[-1])
                for r in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
                )
            )
            assert "ix_contact_votes" in plan and "TEMP B-TREE" not in plan, plan
        else:
            indexdef = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_contact_votes'")
            ).scalar()
            assert indexdef is not None and "substring" in indexdef and "WHERE" in indexdef

    expected = Counter(
        (str(r["email_normalized"]).rpartition("@")[2], r["customer_id"])
        for r in rows
        if not r["deleted"]
        and r["linked_via"] is None
        and r["customer_id"]
        and r["email_normalized"]
    )
    assert counted == dict(expected)
    assert len(counted) > 3  # several hosts and customers, so the grouping was exercised


def _plan_uses_index(store: HubStore) -> bool:
    query = votes_by_host(store.dialect)
    with store.engine.connect() as conn:
        if store.dialect != "sqlite":
            return (
                conn.execute(
                    sa.text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_contact_votes'")
                ).scalar()
                is not None
            )
        compiled = query.compile(conn)
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
        ).fetchall()
    return "ix_contact_votes" in " ".join(str(r[-1]) for r in plan)


def test_a_first_linking_of_many_contacts_rebuilds_the_index_after_its_writes(
    store: HubStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync links every contact: the index is dropped before those writes and built
    again after them (the statements seen on the connection), and ends usable; a linking of a
    few contacts keeps it in place."""
    from tests.unified_model.test_contact_relink import ACCOUNTS, CONTACTS, NOW
    from unified_model import unify as unify_module

    store.upsert_records("account", list(ACCOUNTS.values()))
    store.upsert_records("contact", list(CONTACTS.values()))
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "ix_contact_votes" in statement:
            seen.append(statement.split(" ix_contact_votes")[0].strip())

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        monkeypatch.setattr(unify_module, "REINDEX_FROM", len(CONTACTS) // 2)
        unify_module.unify(store, now=NOW)
        assert seen == ["DROP INDEX IF EXISTS", "CREATE INDEX IF NOT EXISTS"]
        assert _plan_uses_index(store)
        seen.clear()
        store.upsert_records(
            "contact",
            [dataclasses.replace(CONTACTS["c1"], email="j@acme.com", modified_at=NOW)],
        )
        unify_module.unify(store, now=NOW)
        assert "DROP INDEX IF EXISTS" not in seen
        assert _plan_uses_index(store)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
