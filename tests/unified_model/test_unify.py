"""``unify`` on a real store (SQLite and PostgreSQL): how children follow their customers, that
paging never changes the result, and that a run with nothing new writes nothing.

The email attachment and stage-history folding are dialect-specific SQL, so these run on both
databases (the PostgreSQL variant fails under CI=true when the server is unreachable).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
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
from unified_model import unify as unify_module
from unified_model.store import HubStore
from unified_model.unify import unify

NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=30)


def _account(source: str, sid: str, name: str, **kw: Any) -> AccountRecord:
    object_type = "Account" if source == "salesforce" else "companies"
    return AccountRecord(
        source=source,  # type: ignore[arg-type]
        object_type=object_type,
        source_id=sid,
        modified_at=kw.pop("modified_at", T0),
        name=name,
        **kw,
    )


def _contact(source: str, sid: str, email: str, *accounts: str) -> ContactRecord:
    return ContactRecord(
        source=source,  # type: ignore[arg-type]
        object_type="Contact" if source == "salesforce" else "contacts",
        source_id=sid,
        modified_at=T0,
        email=email,
        account_ids=accounts,
    )


def _email(sid: str, *, accounts: tuple[str, ...] = (), contacts: tuple[str, ...] = (),
           deals: tuple[str, ...] = ()) -> EmailRecord:  # fmt: skip
    return EmailRecord(
        source="hubspot",
        object_type="emails",
        source_id=sid,
        modified_at=T0,
        sent_at=T0,
        account_ids=accounts,
        contact_ids=contacts,
        deal_ids=deals,
    )


def _deal(sid: str, account: str, *, days: int, stage: str) -> DealRecord:
    """A Salesforce opportunity of ``account``, modified ``days`` after T0."""
    return DealRecord(
        source="salesforce",
        object_type="Opportunity",
        source_id=sid,
        modified_at=T0 + dt.timedelta(days=days),
        account_id=account,
        stage=stage,
        stage_entered_at={},
    )


def _seed(store: HubStore) -> None:
    store.upsert_records(
        "account",
        [
            _account("salesforce", "001A", "Acme GmbH", website="https://www.acme.de/"),
            _account("hubspot", "901", "ACME", domain="acme.de"),
            _account("salesforce", "001B", "Beta Oy", website="beta.fi"),
            _account("hubspot", "902", "Beta", domain="beta.fi"),
            _account("hubspot", "903", "Gamma Ltd", domain="gamma.co.uk"),
            # three records of one customer: a page of 2 must not split it
            _account("hubspot", "904", "Delta", domain="delta.io"),
            _account("hubspot", "905", "Delta Inc", domain="delta.io"),
            _account("salesforce", "001D", "Delta", website="delta.io"),
            _account("salesforce", "001E", "Epsilon", website="epsilon.example.net"),
        ],
    )
    store.upsert_records(
        "contact",
        [
            _contact("hubspot", "c1", "ann@acme.de", "901"),
            _contact("hubspot", "c2", "bob@beta.fi", "999", "902"),  # first account unknown
            _contact("hubspot", "c3", "cat@gamma.co.uk"),  # no account: placed by domain
            _contact("hubspot", "c4", "dan@gmail.com"),  # free mail, no account: unassigned
            _contact("salesforce", "003X", "eve@acme.de"),  # lead-like: acme.de is one customer
        ],
    )
    store.upsert_records(
        "deal",
        [
            DealRecord(
                source="hubspot",
                object_type="deals",
                source_id="d1",
                modified_at=T0,
                account_id="903",
                stage="closedwon",
            ),
            DealRecord(
                source="salesforce",
                object_type="Opportunity",
                source_id="006A",
                modified_at=T0,
                account_id="001A",
                stage="Negotiation",
                stage_entered_at={},
            ),
        ],
    )
    store.upsert_records(
        "email",
        [
            _email("e1", accounts=("902",), contacts=("c1",)),  # account wins over contact
            _email("e2", accounts=("999", "903")),  # first id with a customer
            _email("e3", contacts=("c1",)),  # contact only
            _email("e4", contacts=("c4",), deals=("d1",)),  # unassigned contact → deal
            _email("e5", contacts=("nope",)),  # nothing known
        ],
    )
    store.upsert_records(
        "ticket",
        [
            TicketRecord(
                source="salesforce",
                object_type="Case",
                source_id="500A",
                modified_at=T0,
                account_id="001B",
            )
        ],
    )
    store.upsert_records(
        "deal_stage",
        [
            DealStageRecord(
                source="salesforce",
                object_type="OpportunityHistory",
                source_id=f"008{n}",
                modified_at=T0,
                deal_id="006A",
                stage=stage,
                entered_at=T0 + dt.timedelta(days=days),
            )
            for n, (stage, days) in enumerate(
                [("Prospecting", 0), ("Negotiation", 5), ("Prospecting", 3), ("Negotiation", 9)]
            )
        ]
        # another CRM's event for a deal of the same id: never folded into this one
        + [
            DealStageRecord(
                source="hubspot",
                object_type="deal_stage",
                source_id="h-1",
                modified_at=T0,
                deal_id="006A",
                stage="closedwon",
                entered_at=T0 + dt.timedelta(days=1),
            )
        ],
    )


def _customer_of(store: HubStore, model: type[Any], sid: str) -> str | None:
    with store.session() as s:
        rows = [r for r in s.exec(sa.select(model).where(model.source_id == sid)).scalars()]
    assert len(rows) == 1, f"{model.__name__} {sid}: {len(rows)} rows"
    return rows[0].customer_id  # type: ignore[no-any-return]


def _snapshot(store: HubStore) -> dict[str, Any]:
    """Everything unify decides, keyed by CRM record (hub ids differ only if paging broke)."""
    out: dict[str, Any] = {}
    for model in (t.SourceAccount, t.Contact, t.Deal, t.Email, t.Ticket):
        out[model.__name__] = sorted(
            (r.source, r.source_id, r.customer_id) for r in store.all(model)
        )
    out["customers"] = sorted(
        (c.id, c.name, c.domain, tuple(sorted(c.field_sources.items())))
        for c in store.all(t.Customer)
    )
    out["links"] = sorted(
        (lk.source, lk.source_id, lk.customer_id, lk.match_method) for lk in store.all(t.SourceLink)
    )
    out["stages"] = {d.source_id: d.stage_entered_at for d in store.all(t.Deal)}
    return out


def test_children_follow_their_customers(store: HubStore) -> None:
    _seed(store)
    stats = unify(store, now=NOW)
    acme = _customer_of(store, t.SourceAccount, "001A")
    beta = _customer_of(store, t.SourceAccount, "001B")
    gamma = _customer_of(store, t.SourceAccount, "903")
    assert acme and beta and gamma and len({acme, beta, gamma}) == 3
    assert _customer_of(store, t.SourceAccount, "901") == acme
    assert _customer_of(store, t.SourceAccount, "902") == beta
    assert len({_customer_of(store, t.SourceAccount, s) for s in ("904", "905", "001D")}) == 1
    assert stats.customers == 5  # acme, beta, gamma, delta, epsilon

    assert _customer_of(store, t.Contact, "c1") == acme
    assert _customer_of(store, t.Contact, "c2") == beta  # skips the unknown first account
    assert _customer_of(store, t.Contact, "c3") == gamma  # by its work domain
    assert _customer_of(store, t.Contact, "c4") is None  # free mail: no guess
    assert _customer_of(store, t.Contact, "003X") == acme

    assert _customer_of(store, t.Email, "e1") == beta  # its account, not its contact
    assert _customer_of(store, t.Email, "e2") == gamma  # first account that has a customer
    assert _customer_of(store, t.Email, "e3") == acme
    assert _customer_of(store, t.Email, "e4") == gamma  # through the deal
    assert _customer_of(store, t.Email, "e5") is None

    assert _customer_of(store, t.Deal, "d1") == gamma
    assert _customer_of(store, t.Ticket, "500A") == beta
    stages = {d.source_id: d.stage_entered_at for d in store.all(t.Deal)}
    assert stages["006A"] == {
        "Prospecting": T0.isoformat(),
        "Negotiation": (T0 + dt.timedelta(days=5)).isoformat(),
    }


def test_second_run_with_nothing_new_writes_nothing(store: HubStore) -> None:
    _seed(store)
    first = unify(store, now=NOW)
    assert first.written["customer"] == 5
    assert first.written["email"] == 4  # e5 stays without a customer
    assert first.written["deal_stage_history"] == 1
    before = _snapshot(store)
    links_before = {(lk.source, lk.source_id): lk.matched_at for lk in store.all(t.SourceLink)}

    # a full re-resolution (the incremental skip is tested in test_incremental.py)
    second = unify(store, now=NOW + dt.timedelta(hours=1), incremental=False)
    assert {k: v for k, v in second.written.items() if v} == {}
    assert _snapshot(store) == before
    # the match was made at the first run, and says so
    assert {
        (lk.source, lk.source_id): lk.matched_at for lk in store.all(t.SourceLink)
    } == links_before
    assert set(links_before.values()) == {NOW}


def test_small_pages_give_the_same_result(store: HubStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 2 rows: customers straddle page ends (Delta has three records)."""
    _seed(store)
    unify(store, now=NOW)
    expected = _snapshot(store)
    # forget everything unify decided, then do it again in tiny pages
    with store.engine.begin() as conn:
        for table in ("source_link", "customer", "match_review"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
        for table in ("source_account", "contact", "deal", "email", "ticket"):
            conn.execute(sa.text(f"UPDATE {table} SET customer_id = NULL"))
    monkeypatch.setattr(unify_module, "PAGE", 2)
    unify(store, now=NOW, incremental=False)
    assert _snapshot(store) == expected


def test_changes_between_runs_are_applied(store: HubStore) -> None:
    _seed(store)
    unify(store, now=NOW)
    acme = _customer_of(store, t.SourceAccount, "001A")
    gamma = _customer_of(store, t.SourceAccount, "903")
    later = T0 + dt.timedelta(days=1)
    # Gamma leaves HubSpot; c1 moves to Gamma... which is gone, so it moves to Beta instead
    store.upsert_records(
        "account",
        [
            AccountRecord(
                source="hubspot",
                object_type="companies",
                source_id="903",
                modified_at=later,
                deleted=True,
            ),
            _account("hubspot", "901", "ACME Renamed", domain="acme.de", modified_at=later),
        ],
    )
    store.upsert_records("contact", [_contact("hubspot", "c1", "ann@beta.fi", "902")])
    stats = unify(store, now=NOW + dt.timedelta(hours=1))

    assert stats.retired_ids == 1
    assert _customer_of(store, t.SourceAccount, "903") is None
    assert gamma not in {c.id for c in store.all(t.Customer)}
    assert _customer_of(store, t.Deal, "d1") is None
    assert _customer_of(store, t.Contact, "c3") is None  # its domain's customer is gone
    beta = _customer_of(store, t.SourceAccount, "001B")
    assert _customer_of(store, t.Contact, "c1") == beta
    assert _customer_of(store, t.Email, "e3") == beta  # follows its contact
    golden = {c.id: c for c in store.all(t.Customer)}
    assert golden[acme].name == "ACME Renamed"  # the more recent content wins
    assert golden[acme].updated_at == NOW + dt.timedelta(hours=1)
    assert golden[acme].created_at == NOW
    # only what changed was written: Acme's golden record (a newer HubSpot name), not the rest
    assert stats.written["customer"] == 1
    assert stats.written["source_link"] == 1  # the gone record's link removed


def test_incremental_unify_follows_a_reparented_deal_and_notes_the_customer_it_left(
    store: HubStore,
) -> None:
    """A deal moved to another account: the incremental run (which looks only at rows changed
    since the last one) moves it to the new customer and notes the old one as dirty."""
    _seed(store)
    unify(store, now=NOW)
    acme = _customer_of(store, t.SourceAccount, "001A")
    beta = _customer_of(store, t.SourceAccount, "001B")
    assert _customer_of(store, t.Deal, "006A") == acme
    again = unify(store, now=NOW)
    assert again.skipped  # nothing changed: nothing re-resolved
    store.upsert_records("deal", [_deal("006A", "001B", days=2, stage="Negotiation")])
    stats = unify(store, now=NOW)
    assert not stats.skipped
    assert stats.resolution_skipped  # only a deal changed: attached, nothing re-resolved
    assert _customer_of(store, t.Deal, "006A") == beta
    dirty = {d.customer_id for d in store.all(t.DirtyCustomer)}
    assert acme in dirty  # the customer the deal left is recomputed by the next handover
    # and a full re-resolution agrees with the incremental one
    assert {k: v for k, v in unify(store, now=NOW, incremental=False).written.items() if v} == {}


@given(ids=st.lists(st.text(max_size=12), max_size=4), compact=st.booleans())
def test_stored_id_lists_decode_like_json(ids: list[str], compact: bool) -> None:
    """The contact stream's fast decoding of the stored id lists gives what ``json`` gives, for
    any text (quotes, commas, escapes) and either separator."""
    raw = json.dumps(ids, separators=(",", ":") if compact else None)
    assert unify_module._id_list(raw) == ids
    assert unify_module._id_list(ids) == ids  # PostgreSQL: already decoded


def test_child_only_changes_attach_without_resolving_and_equal_a_full_run(
    store: HubStore,
) -> None:
    """When only deals, emails and stage history changed, unify attaches them without
    re-resolving; the result is what a full re-resolution gives. A changed contact (or account)
    resolves again."""
    _seed(store)
    unify(store, now=NOW)
    beta = _customer_of(store, t.SourceAccount, "001B")
    store.upsert_records("deal", [_deal("006NEW", "001B", days=3, stage="Prospecting")])
    store.upsert_records("email", [_email("em-new", accounts=("902",))])
    stats = unify(store, now=NOW)
    assert stats.resolution_skipped and not stats.skipped
    assert stats.customers > 0  # the last resolution's figures are reported again
    assert _customer_of(store, t.Deal, "006NEW") == beta
    assert _customer_of(store, t.Email, "em-new") == beta
    incremental = _snapshot(store)
    full = unify(store, now=NOW, incremental=False)
    assert {k: v for k, v in full.written.items() if v} == {}
    assert _snapshot(store) == incremental

    store.upsert_records("contact", [_contact("salesforce", "003NEW", "neu@beta.fi", "001B")])
    again = unify(store, now=NOW)
    assert not again.resolution_skipped and not again.skipped
    assert _customer_of(store, t.Contact, "003NEW") == beta


def test_golden_records_are_survived_again_only_for_customers_whose_accounts_changed(
    store: HubStore,
) -> None:
    """A run with changed accounts re-survives the golden records of their customers (and of a
    customer an account left), not of every customer with a new deal or email; the result is
    what a full re-resolution gives."""
    _seed(store)
    unify(store, now=NOW)
    epsilon = _customer_of(store, t.SourceAccount, "001E")
    delta = _customer_of(store, t.SourceAccount, "904")
    later = T0 + dt.timedelta(days=1)
    store.upsert_records(
        "account",
        [
            _account("salesforce", "001E", "Epsilon", website="epsilon.example.net",
                     city="Turku", modified_at=later),
            # leaves Delta: its own customer now
            _account("hubspot", "905", "Delta Inc", domain="deltainc.example",
                     modified_at=later),
        ],
    )  # fmt: skip
    # Acme's deal moves on, Beta gets a new one: both customers are dirty for the handover
    store.upsert_records(
        "deal",
        [
            _deal("006A", "001A", days=2, stage="Closed Won"),
            _deal("006NEW", "001B", days=3, stage="Prospecting"),
        ],
    )
    store.upsert_records("email", [_email("em-new", accounts=("901",))])
    # Gamma was noted dirty before this run (say a run killed after it re-linked an account):
    # its golden record is survived again, though this run marks it dirty afresh (its deal moved)
    gamma = _customer_of(store, t.SourceAccount, "903")
    with store.engine.begin() as conn:
        store.mark_dirty(conn, [gamma])
    store.upsert_records(
        "deal",
        [DealRecord(source="hubspot", object_type="deals", source_id="d1",
                    modified_at=later, account_id="903", stage="closedlost")],
    )  # fmt: skip
    stats = unify(store, now=NOW + dt.timedelta(hours=1))
    assert not stats.resolution_skipped
    assert _customer_of(store, t.SourceAccount, "001A") in {
        d.customer_id for d in store.all(t.DirtyCustomer)
    }
    moved = _customer_of(store, t.SourceAccount, "905")
    assert moved not in (delta, None)
    # Epsilon (changed), Delta (lost an account), the new customer and Gamma (noted before);
    # not Beta or Acme (a new and a changed deal)
    assert stats.survived == 4
    golden = {c.id: c for c in store.all(t.Customer)}
    assert golden[epsilon].city == "Turku"
    assert golden[moved].name == "Delta Inc"
    incremental = _snapshot(store)
    unify_module.forget_unify(store)  # what a full refresh does: no memory of what changed
    full = unify(store, now=NOW + dt.timedelta(hours=1))
    assert full.survived == len(golden)
    assert {k: v for k, v in full.written.items() if v} == {}
    assert _snapshot(store) == incremental


def _domainless_seed(store: HubStore) -> None:
    """Accounts without a website whose contacts reveal their domain, next to accounts with one
    and contacts that link to both kinds, to none, or are deleted."""
    store.upsert_records(
        "account",
        [
            _account("salesforce", "001W", "Wolkenstein Robotik", website="wolkenstein.de"),
            _account("hubspot", "801", "Wolkenstein Robotics"),  # no domain: contacts tell
            _account("hubspot", "802", "Quellfluss Daten"),  # no domain, one contact only
            _account("salesforce", "001Q", "Quellfluss"),  # no domain
            _account("hubspot", "803", "Kiefernwald Labs", website="https://kiefernwald.io"),
        ],
    )
    store.upsert_records(
        "contact",
        [
            _contact("hubspot", "h1", "anna@wolkenstein.de", "801"),
            _contact("hubspot", "h2", "ben@wolkenstein.de", "801", "803"),
            _contact("hubspot", "h3", "cleo@kiefernwald.io", "803"),
            _contact("hubspot", "h4", "dora@quellfluss.net", "802"),
            _contact("hubspot", "h5", "emil@gmail.com", "801"),  # free mail: no evidence
            _contact("salesforce", "s1", "fritz@quellfluss.net", "001Q"),
            _contact("salesforce", "s2", "gina@quellfluss.net", "001Q"),
            _contact("salesforce", "s3", "hugo@wolkenstein.de", "001W"),
            _contact("salesforce", "s4", "ida@wolkenstein.de", "801"),  # other CRM's id
        ],
    )
    gone = dataclasses.replace(_contact("hubspot", "h6", "jo@wolkenstein.de", "801"), deleted=True)
    store.upsert_records("contact", [gone])


def test_contacts_of_domainless_accounts_are_selected_in_sql_like_the_full_stream(
    store: HubStore,
) -> None:
    # The contact-domain rung reads only the contacts of accounts without a domain; the
    # database selects them. Same contacts, same order, same resolution as the full stream.
    from unified_model.identity import resolve_customers
    from unified_model.unify import _account_facts, _ContactStream

    _domainless_seed(store)
    stream = _ContactStream(store)
    everyone = list(stream)
    assert "h6" not in {c.source_id for c in everyone}
    wanted = {("hubspot", "801"), ("hubspot", "802"), ("salesforce", "001Q")}
    picked = stream.linked_to(wanted)
    assert [(c.source, c.source_id) for c in picked] == [
        (c.source, c.source_id)
        for c in everyone
        if any((c.source, a) in wanted for a in c.account_source_ids)
    ]
    assert {c.source_id for c in picked} == {"h1", "h2", "h4", "h5", "s1", "s2"}
    assert stream.linked_to([]) == []

    class Recorded(_ContactStream):
        asked: list[set[tuple[str, str]]] = []

        def linked_to(self, accounts: Any) -> Any:
            self.asked.append(set(accounts))
            return super().linked_to(accounts)

    accounts = _account_facts(store)
    by_sql = resolve_customers(accounts, Recorded(store), now=NOW)
    assert Recorded.asked == [wanted]  # the resolver asked for the domainless accounts only
    by_list = resolve_customers(accounts, everyone, now=NOW)
    assert by_sql.account_assignment == by_list.account_assignment
    assert by_sql.stats == by_list.stats
    methods = {key: a.method for key, a in by_sql.assignments.items()}
    assert methods[("hubspot", "801")] == "contact_domain"  # joined Wolkenstein by its people
    assert by_sql.customer_id("hubspot", "801") == by_sql.customer_id("salesforce", "001W")


def test_changes_resolution_does_not_read_keep_the_last_resolution(store: HubStore) -> None:
    """An account's revenue or a contact of an account with a website changed: nothing the
    matching reads, so the last resolution is kept (no names compared again); what follows it
    (golden records, contacts, children) still runs, and the result is a full run's. A change
    the matching reads (a name, a contact of an account without a domain) resolves again."""
    _domainless_seed(store)
    first = unify(store, now=NOW)
    assert not first.resolution_reused and first.resolution_digest
    later = T0 + dt.timedelta(days=1)
    store.upsert_records(
        "account",
        [
            _account("hubspot", "803", "Kiefernwald Labs", website="https://kiefernwald.io",
                     annual_revenue=5e6, modified_at=later),
        ],
    )  # fmt: skip
    only_account = unify(store, now=NOW)
    assert only_account.resolution_reused
    # the same accounts' customers and no contact changed: the contacts are not streamed
    assert "contacts" not in only_account.seconds and only_account.written["contact"] == 0
    golden = {c.id: c for c in store.all(t.Customer)}
    assert golden[_customer_of(store, t.SourceAccount, "803")].annual_revenue == 5e6
    moved = dataclasses.replace(
        _contact("hubspot", "h7", "lena@kiefernwald.io", "803"), modified_at=later
    )
    store.upsert_records("contact", [moved])  # a new person at an account with a website
    stats = unify(store, now=NOW)
    assert stats.resolution_reused and not stats.resolution_skipped and not stats.skipped
    assert "resolve" not in stats.seconds  # no name was compared
    assert "contacts" in stats.seconds  # a contact changed: every contact's customer again
    assert stats.by_method == first.by_method and stats.customers == first.customers
    assert _customer_of(store, t.Contact, "h7") == _customer_of(store, t.SourceAccount, "803")
    golden = {c.id: c for c in store.all(t.Customer)}
    assert golden[_customer_of(store, t.SourceAccount, "803")].annual_revenue == 5e6
    kept = _snapshot(store)
    full = unify(store, now=NOW, incremental=False)
    assert {k: v for k, v in full.written.items() if v} == {}
    assert _snapshot(store) == kept

    # a contact of an account without a domain is the matching's evidence: resolved again
    later = later + dt.timedelta(days=1)
    store.upsert_records(
        "contact",
        [dataclasses.replace(_contact("hubspot", "h4", "dora@elsewhere.net", "802"),
                             modified_at=later)],
    )  # fmt: skip
    again = unify(store, now=NOW)
    assert not again.resolution_reused and "resolve" in again.seconds
    # and an account's name is too
    store.upsert_records(
        "account",
        [_account("hubspot", "803", "Kiefernwald Laboratories", website="https://kiefernwald.io",
                  annual_revenue=5e6, modified_at=later + dt.timedelta(days=1))],
    )  # fmt: skip
    renamed = unify(store, now=NOW)
    assert not renamed.resolution_reused and "resolve" in renamed.seconds
    # the same inputs again (a re-read that changed nothing): nothing to do at all
    assert unify(store, now=NOW).skipped


def test_resolution_digest_covers_what_resolution_reads(store: HubStore) -> None:
    """The digest moves with each input the matching reads, and only with those."""
    from unified_model.identity import MatchConfig, resolution_digest
    from unified_model.unify import _account_facts, _ContactStream

    _domainless_seed(store)
    accounts = _account_facts(store)
    stream = _ContactStream(store)
    base = resolution_digest(accounts, stream, [])
    assert base == resolution_digest(accounts, _ContactStream(store), [])
    assert resolution_digest(accounts, list(stream), []) is None  # a plain list: every contact

    def with_account(**changes: Any) -> str | None:
        edited = [
            dataclasses.replace(a, **changes) if a.source_id == "803" else a for a in accounts
        ]
        return resolution_digest(edited, _ContactStream(store), [])

    for column, value in (
        ("name", "Other"),
        ("website", "other.io"),
        ("domain", "other.io"),
        ("city", "Oulu"),
        ("country", "FI"),
        ("cross_crm_id", "001W"),
        ("deleted", True),
    ):
        assert with_account(**{column: value}) != base, column
    assert with_account(modified_at=NOW) == base  # when, not what
    assert resolution_digest(accounts, stream, [], MatchConfig(fuzzy_threshold=80)) != base
    review = t.MatchReview(
        left_source="salesforce", left_id="001Q", right_source="hubspot", right_id="802",
        score=80, reason="r", status="rejected", decided_at=NOW,
    )  # fmt: skip
    assert resolution_digest(accounts, _ContactStream(store), [review]) != base


def test_resolution_digest_is_the_same_in_every_process(store: HubStore) -> None:
    """The digest is compared across runs, which are other processes (Dagster's step
    processes): it must not follow Python's per-process string hashing (a set's order)."""
    import os
    import subprocess
    import sys

    from unified_model.identity import resolution_digest
    from unified_model.unify import _account_facts, _ContactStream

    _domainless_seed(store)
    here = resolution_digest(_account_facts(store), _ContactStream(store), [])
    code = (
        "import sys\n"
        "from unified_model.identity import resolution_digest\n"
        "from unified_model.store import HubStore\n"
        "from unified_model.unify import _account_facts, _ContactStream\n"
        "s = HubStore(sys.argv[1])\n"
        "print(resolution_digest(_account_facts(s), _ContactStream(s), []))\n"
    )
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, store.url],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert out.stdout.strip() == here, seed
