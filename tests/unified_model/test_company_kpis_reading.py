"""``compute_company_kpis`` reads less than every row (no bookkeeping times, contacts only where
one can be a new lead); what it leaves out must not change the report."""

from __future__ import annotations

import datetime as dt

from unified_model import incremental as changes
from unified_model import tables as t
from unified_model.insights import compute_company_kpis
from unified_model.rules import HubRules
from unified_model.store import HubStore

NOW = dt.datetime(2026, 6, 20, 12, tzinfo=dt.UTC)


def _contact(sid: str, owner: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "source": "hubspot",
        "source_id": sid,
        "customer_id": "cust-1",
        "owner_id": owner,
        "created_at": NOW - dt.timedelta(days=3),
        "modified_at": NOW - dt.timedelta(days=3),
        "is_lead": False,
        "lifecycle_stage": None,
    }
    row.update(extra)
    return row


def test_owners_of_contacts_that_are_no_leads_still_get_a_row(store: HubStore) -> None:
    """The contact read is limited to possible leads; an owner who only owns other contacts is
    still in the owner table (with zero new leads), and the leads are counted per owner."""
    store.upsert_rows(
        t.Owner,
        [
            {"source": "hubspot", "source_id": "o-lead", "email": "lena@example.com"},
            {"source": "hubspot", "source_id": "o-plain", "email": "paul@example.com"},
        ],
    )
    store.upsert_rows(
        t.Contact,
        [
            _contact("c1", "o-lead", lifecycle_stage="lead"),
            _contact("c2", "o-lead", is_lead=True),
            _contact("c3", "o-plain"),  # neither a lead nor at a stage: not read as a row
            _contact("c4", "o-plain", lifecycle_stage="subscriber"),  # read, not a new lead
        ],
    )
    report = compute_company_kpis(store, HubRules(), now=NOW)
    by_owner = {r["owner"]: r for r in report.owner_rows}
    assert set(by_owner) == {"lena@example.com", "paul@example.com"}
    assert by_owner["lena@example.com"]["new_leads"] == 2
    assert by_owner["paul@example.com"]["new_leads"] == 0
    assert report.rows[-1]["new_leads"] == 2


def test_an_owner_with_only_plain_contacts_is_listed(store: HubStore) -> None:
    store.upsert_rows(
        t.Owner, [{"source": "hubspot", "source_id": "o-plain", "email": "paul@example.com"}]
    )
    store.upsert_rows(t.Contact, [_contact("c3", "o-plain")])
    report = compute_company_kpis(store, HubRules(), now=NOW)
    assert [r["owner"] for r in report.owner_rows] == ["paul@example.com"]
    assert report.rows[-1]["new_leads"] == 0


def test_kpis_are_kept_when_only_accounts_changed_and_recomputed_when_a_row_they_read_did(
    store: HubStore,
) -> None:
    """The company KPIs read no account: an account's change (its revenue, the echo of a
    writeback) keeps the last tables; a contact that becomes a new lead recomputes them."""
    from unified_model.insights import refresh_company_kpis

    store.upsert_rows(
        t.Owner, [{"source": "hubspot", "source_id": "o-lead", "email": "lena@example.com"}]
    )
    store.upsert_rows(t.Contact, [_contact("c1", "o-lead", lifecycle_stage="lead")])
    account = {
        "source": "hubspot",
        "source_id": "900",
        "customer_id": "cust-1",
        "name": "Acme",
        "annual_revenue": 1e6,
        "modified_at": NOW - dt.timedelta(days=3),
    }
    store.upsert_rows(t.SourceAccount, [account])
    rules = HubRules()
    first, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert recomputed and first.rows[-1]["new_leads"] == 1
    store.upsert_rows(
        t.SourceAccount,
        [{**account, "annual_revenue": 2e6, "modified_at": NOW - dt.timedelta(days=1)}],
    )
    kept, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert not recomputed and kept.rows == first.rows
    # a golden record that changes but for its owner (unify re-survives an edited account)
    golden = {"id": "cust-1", "name": "Acme", "owner_email": "lena@example.com"}
    store.upsert_rows(t.Customer, [golden], newer_only=False)
    _, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert recomputed  # a new golden owner: counted for unanswered inquiries
    store.upsert_rows(t.Customer, [{**golden, "name": "Acme Oy"}], newer_only=False)
    _, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert not recomputed  # the same owner: nothing the KPIs read
    store.upsert_rows(t.Contact, [_contact("c2", "o-lead", is_lead=True)])
    again, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert recomputed and again.rows[-1]["new_leads"] == 2


def test_kpis_are_kept_when_contacts_change_only_in_what_they_do_not_read(
    store: HubStore,
) -> None:
    """A contact that loses its company (its customer and associations change, as when a
    company is deleted) or gets a new name keeps the tables; a lead's stage, a new lead, and a
    new owner of any contact (every owner gets a row) recompute them, and the recomputed
    tables are those of a computation from scratch."""
    from unified_model.insights import compute_company_kpis, refresh_company_kpis

    store.upsert_rows(
        t.Owner,
        [
            {"source": "hubspot", "source_id": "o-lead", "email": "lena@example.com"},
            {"source": "hubspot", "source_id": "o-new", "email": "nora@example.com"},
        ],
    )
    lead = _contact("c1", "o-lead", lifecycle_stage="lead", account_source_ids=["900"])
    plain = _contact("c2", "o-lead", account_source_ids=["900"])
    store.upsert_rows(t.Contact, [lead, plain])
    rules = HubRules()
    first, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert recomputed and first.rows[-1]["new_leads"] == 1

    def later(row: dict[str, object], days: float, **changes: object) -> dict[str, object]:
        return {**row, **changes, "modified_at": NOW - dt.timedelta(days=days)}

    store.upsert_rows(
        t.Contact,
        [
            later(lead, 2, customer_id=None, account_source_ids=[], first_name="Lena"),
            later(plain, 2, customer_id=None, account_source_ids=[]),
        ],
    )
    kept, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert not recomputed and kept.rows == first.rows
    # kept as of this check: the next run sees no changed contact (and hashes no lead)
    mark = changes.load(store, changes.COMPANY_KPIS)
    assert mark is not None and changes.kpi_tables_changed(store, mark.at) == set()
    again, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert not recomputed and again.rows == first.rows

    store.upsert_rows(t.Contact, [later(plain, 1.5, owner_id="o-new")])  # not a lead
    by_owner, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert recomputed
    assert "nora@example.com" in {r["owner"] for r in by_owner.owner_rows}

    store.upsert_rows(t.Contact, [later(lead, 1, lifecycle_stage="subscriber")])
    staged, recomputed = refresh_company_kpis(store, rules, now=NOW)
    assert recomputed and staged.rows[-1]["new_leads"] == 0
    assert staged == compute_company_kpis(store, rules, now=NOW)
