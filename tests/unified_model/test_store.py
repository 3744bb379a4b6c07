"""The hub store upserts idempotently by (source, id), never moves a row back in time, keeps
cursors, turns tombstones and missing ids into deletions, keeps erased people out, and does all of
it identically on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.records import (
    AccountRecord,
    ContactRecord,
    DealRecord,
    DealStageRecord,
    EmailRecord,
    TicketRecord,
)
from unified_model import tables as t
from unified_model.erasure import erase_email
from unified_model.store import HubStore

T0 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)


def _account(sid: str, name: str, at: dt.datetime, **kw: object) -> AccountRecord:
    return AccountRecord(
        source="salesforce", object_type="Account", source_id=sid, modified_at=at, name=name, **kw
    )  # type: ignore[arg-type]


def test_upsert_is_idempotent_and_updates_in_place(store: HubStore) -> None:
    page = [
        _account("001A", "Acme", T0, contracted_modules=("Billing",)),
        _account("001B", "Beta", T0),
    ]
    store.upsert_records("account", page)
    store.upsert_records("account", page)
    assert store.count(t.SourceAccount) == 2
    store.upsert_records("account", [_account("001A", "Acme GmbH", T0 + dt.timedelta(hours=1))])
    rows = {r.source_id: r for r in store.live(t.SourceAccount)}
    assert rows["001A"].name == "Acme GmbH"
    assert rows["001A"].contracted_modules == []  # the newer version has no modules
    assert rows["001B"].name == "Beta"
    assert rows["001A"].modified_at == T0 + dt.timedelta(hours=1)
    assert rows["001A"].modified_at.tzinfo is not None


def test_older_version_never_overwrites_newer(store: HubStore) -> None:
    store.upsert_records("account", [_account("001A", "New name", T0 + dt.timedelta(days=1))])
    store.upsert_records("account", [_account("001A", "Old name", T0)])
    (row,) = store.live(t.SourceAccount)
    assert row.name == "New name"


def test_tombstone_marks_deleted_and_keeps_fields(store: HubStore) -> None:
    store.upsert_records("account", [_account("001A", "Acme", T0, website="acme.com")])
    tomb = AccountRecord(
        source="salesforce",
        object_type="Account",
        source_id="001A",
        modified_at=T0 + dt.timedelta(minutes=5),
        deleted=True,
    )
    counts = store.upsert_records("account", [tomb])
    assert counts == {"upserted": 0, "tombstoned": 1, "suppressed": 0}
    assert store.live(t.SourceAccount) == []
    (row,) = store.all(t.SourceAccount)
    assert row.deleted is True and row.website == "acme.com"


def test_stage_event_tombstones_of_unseen_and_stored_events(store: HubStore) -> None:
    # An OpportunityHistory row created and deleted between two syncs arrives only as a
    # tombstone; its NOT NULL deal column must not fail the page (and so block the cursor).
    def event(sid: str, at: dt.datetime, deleted: bool = False) -> DealStageRecord:
        return DealStageRecord(
            source="salesforce",
            object_type="OpportunityHistory",
            source_id=sid,
            modified_at=at,
            deleted=deleted,
            deal_id="" if deleted else "006A",
            stage="Prospecting",
            entered_at=T0,
        )

    store.upsert_records("deal_stage", [event("008A", T0)])
    later = T0 + dt.timedelta(minutes=5)
    counts = store.upsert_records(
        "deal_stage", [event("008A", later, True), event("008B", later, True)]
    )
    assert counts["tombstoned"] == 2
    rows = {r.source_id: r for r in store.all(t.DealStageEvent)}
    assert rows["008A"].deleted and rows["008A"].deal_source_id == "006A"
    assert rows["008B"].deleted and rows["008B"].deal_source_id == ""


def test_mark_missing_deleted_after_full_pass(store: HubStore) -> None:
    store.upsert_records("account", [_account(f"001{i}", f"A{i}", T0) for i in range(5)])
    removed = store.mark_missing_deleted("account", "salesforce", {"0010", "0012", "0014"})
    assert removed == 2
    assert sorted(r.source_id for r in store.live(t.SourceAccount)) == ["0010", "0012", "0014"]


def test_cursor_roundtrip_and_reset(store: HubStore) -> None:
    assert store.get_cursor("hubspot", "deal") is None
    store.save_cursor("hubspot", "deal", {"upper": "2026-01-01T00:00:00Z", "last_id": "7"})
    store.save_cursor("hubspot", "deal", {"upper": "2026-01-02T00:00:00Z", "last_id": None})
    assert store.get_cursor("hubspot", "deal") == {"upper": "2026-01-02T00:00:00Z", "last_id": None}
    store.reset_cursor("hubspot", "deal")
    assert store.get_cursor("hubspot", "deal") is None


def test_json_and_dates_roundtrip(store: HubStore) -> None:
    deal = DealRecord(
        source="hubspot",
        object_type="deals",
        source_id="9",
        modified_at=T0,
        amount=1200.5,
        close_date=dt.date(2026, 2, 1),
        stage_entered_at={"contractsent": T0},
    )
    store.upsert_records("deal", [deal])
    (row,) = store.live(t.Deal)
    assert row.close_date == dt.date(2026, 2, 1)
    assert row.stage_entered_at == {"contractsent": T0.isoformat()}
    assert row.amount == 1200.5


def test_erasure_removes_person_and_blocks_recreation(store: HubStore) -> None:
    jane = ContactRecord(
        source="hubspot",
        object_type="contacts",
        source_id="51",
        modified_at=T0,
        email="Jane.Doe@Acme.com",
        first_name="Jane",
    )
    other = ContactRecord(
        source="hubspot",
        object_type="contacts",
        source_id="52",
        modified_at=T0,
        email="bob@acme.com",
    )
    mail = EmailRecord(
        source="hubspot",
        object_type="emails",
        source_id="e1",
        modified_at=T0,
        direction="inbound",
        from_address="jane.doe@acme.com",
    )
    store.upsert_records("contact", [jane, other])
    store.upsert_records("email", [mail])
    result = erase_email(store, "jane.doe@acme.com")
    assert result["contacts"] == 1 and result["emails"] == 1
    assert [c.source_id for c in store.live(t.Contact)] == ["52"]
    # a stale source row does not bring her back
    counts = store.upsert_records("contact", [jane])
    assert counts["suppressed"] == 1
    assert [c.source_id for c in store.live(t.Contact)] == ["52"]
    audits = store.all(t.ErasureAudit)
    assert len(audits) == 1 and "jane" not in audits[0].pseudonym.lower()


def test_deleted_contact_is_scrubbed(store: HubStore) -> None:
    jane = ContactRecord(
        source="salesforce",
        object_type="Contact",
        source_id="003J",
        modified_at=T0,
        email="jane@acme.com",
        first_name="Jane",
        last_name="Doe",
    )
    store.upsert_records("contact", [jane])
    tomb = ContactRecord(
        source="salesforce",
        object_type="Contact",
        source_id="003J",
        modified_at=T0 + dt.timedelta(hours=1),
        deleted=True,
    )
    store.upsert_records("contact", [tomb])
    (row,) = store.all(t.Contact)
    assert row.deleted and row.email is None and row.first_name is None


def test_migrate_twice_keeps_data(store: HubStore) -> None:
    store.upsert_records("account", [_account("001A", "Acme", T0)])
    store.migrate()
    assert store.count(t.SourceAccount) == 1
    with store.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0010_rows_by_account_index"


def test_large_batch_upsert(store: HubStore) -> None:
    page = [_account(f"001{i:06d}", f"Company {i}", T0) for i in range(2500)]
    store.upsert_records("account", page)
    assert store.count(t.SourceAccount) == 2500


def test_hub_field_only_change_keeps_content_time(store: HubStore) -> None:
    """Our own writeback bumps the CRM's modification time; the business content time stays."""
    store.upsert_records("account", [_account("001A", "Acme", T0)])
    later = T0 + dt.timedelta(hours=2)
    store.upsert_records(
        "account", [_account("001A", "Acme", later, hub_fields={"handover_status": "onboarding"})]
    )
    (row,) = store.live(t.SourceAccount)
    assert row.modified_at == later and row.content_modified_at == T0
    store.upsert_records("account", [_account("001A", "Acme AG", later + dt.timedelta(hours=1))])
    (row,) = store.live(t.SourceAccount)
    assert row.content_modified_at == later + dt.timedelta(hours=1)


def test_a_ticket_read_closed_then_open_again_counts_as_reopened(store: HubStore) -> None:
    def case(at: dt.datetime, closed: bool) -> TicketRecord:
        return TicketRecord(
            source="salesforce",
            object_type="Case",
            source_id="500A",
            modified_at=at,
            is_closed=closed,
            status="Closed" if closed else "Working",
        )

    hour = dt.timedelta(hours=1)
    store.upsert_records("ticket", [case(T0, False)])  # opened
    store.upsert_records("ticket", [case(T0 + hour, True)])  # closed: not a reopen
    store.upsert_records("ticket", [case(T0 + hour, True)])  # read again (overlap)
    (row,) = store.live(t.Ticket)
    assert (row.reopened_count, row.reopened_at) == (0, None)
    store.upsert_records("ticket", [case(T0 + 2 * hour, False)])  # reopened
    store.upsert_records("ticket", [case(T0 + 2 * hour, False)])  # the same read again
    (row,) = store.live(t.Ticket)
    assert (row.reopened_count, row.reopened_at) == (1, T0 + 2 * hour)
    # closed and reopened once more; an older, closed version arriving late changes nothing
    store.upsert_records("ticket", [case(T0 + 3 * hour, True)])
    store.upsert_records("ticket", [case(T0 + 4 * hour, False)])
    store.upsert_records("ticket", [case(T0 + 3 * hour, True)])
    (row,) = store.live(t.Ticket)
    assert (row.reopened_count, row.reopened_at, row.is_closed) == (2, T0 + 4 * hour, False)


def _both_processors() -> tuple[Any, Any]:
    """The SQLite result processor of ``UtcDateTime`` and SQLAlchemy's usual one."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.types import TypeDecorator

    dialect = sqlite.dialect()
    impl = t.UtcDateTime().dialect_impl(dialect)
    fast = impl.result_processor(dialect, None)
    usual = TypeDecorator.result_processor(impl, dialect, None)
    return fast, usual


def _outcome(process: Any, value: Any) -> Any:
    try:
        return process(value)
    except Exception as exc:
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    form=st.sampled_from(["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"]),
    noise=st.text(alphabet="0123456789-: T.+Z", min_size=19, max_size=26),
)
def test_sqlite_timestamps_parse_as_sqlalchemy_parses_them(
    when: dt.datetime, form: str, noise: str
) -> None:
    """The fast SQLite parser gives what SQLAlchemy's parser and the decorator give: for the
    stored forms, other ISO forms and odd text of the same lengths."""
    fast, usual = _both_processors()
    stored = f"{when.year:04d}" + when.strftime(form)[len(str(when.year)) :]
    assert fast(stored) == usual(stored)
    assert fast(stored).tzinfo is dt.UTC
    assert _outcome(fast, noise) == _outcome(usual, noise)
    assert fast(None) is None


def test_sqlite_timestamps_round_trip_through_the_store(sqlite_store: HubStore) -> None:
    when = dt.datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=dt.UTC)
    with sqlite_store.session() as s:
        s.add(t.Owner(source="hubspot", source_id="o-1", email="a@b.c", modified_at=when))
        s.commit()
    with sqlite_store.session() as s:
        got = s.get(t.Owner, ("hubspot", "o-1"))
        assert got is not None and got.modified_at == when and got.modified_at.tzinfo is dt.UTC
