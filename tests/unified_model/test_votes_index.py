"""Migration 0009's partial index ``ix_contact_votes`` serves unify's vote count: the count
(``unify.votes_by_host``) walks it instead of sorting every voter on SQLite, it exists with the
same expression on PostgreSQL, and the count is the one Python makes from the stored contacts."""

from __future__ import annotations

from collections import Counter

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
