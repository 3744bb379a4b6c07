"""Unify relinks only the contacts that may have moved, and ends where reading every contact ends.

Why: linking read all 780,000 contacts of ``large`` whenever an account or a contact changed.
From the stored links (``Contact.linked_via``) and the customers of the contacts placed through
an account (counted in SQL per work domain), a run now reads the contacts changed since the last
linking, those of accounts whose customer changed, and those placed by domain. Each step below
changes what a contact's customer depends on (its email, its accounts, an account's website, an
account or contact deleted, a domain shared by two customers), runs unify incrementally, and
checks that a full linking of the same store moves no contact. On SQLite and PostgreSQL (the
host of an address is cut in each dialect's SQL).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from connectors.records import AccountRecord, ContactRecord
from unified_model import tables as t
from unified_model.identity import LINKED_BY_DOMAIN, LINKED_NONE
from unified_model.store import HubStore
from unified_model.unify import unify

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=10)


def _account(source: str, sid: str, name: str, website: str | None, **kw: Any) -> AccountRecord:
    return AccountRecord(
        source=source,  # type: ignore[arg-type]
        object_type="Account" if source == "salesforce" else "companies",
        source_id=sid,
        modified_at=kw.pop("modified_at", T0),
        name=name,
        website=website,
        **kw,
    )


def _contact(source: str, sid: str, email: str, *accounts: str, **kw: Any) -> ContactRecord:
    return ContactRecord(
        source=source,  # type: ignore[arg-type]
        object_type="Contact" if source == "salesforce" else "contacts",
        source_id=sid,
        modified_at=kw.pop("modified_at", T0),
        email=email,
        account_ids=accounts,
        **kw,
    )


ACCOUNTS = {
    "A1": _account("salesforce", "A1", "Acme Industrial", "https://acme.com"),
    "A3": _account("salesforce", "A3", "Gamma Logistics", None),
    "A2": _account("hubspot", "A2", "Beta Analytics", "beta.io"),
    "A4": _account("hubspot", "A4", "Delta Robotics", "https://www.delta.org"),
}
CONTACTS = {
    "c1": _contact("salesforce", "c1", "jane@acme.com", "A1"),
    "c2": _contact("salesforce", "c2", "bob@shared.net", "A3"),
    "c3": _contact("salesforce", "c3", "amy@shared.net"),  # a lead: placed by domain
    "c4": _contact("hubspot", "c4", "tom@beta.io"),  # by the account's website
    "c5": _contact("hubspot", "c5", "li@gmail.com"),  # free mail: nowhere
    "c6": _contact("hubspot", "c6", "zed@delta.org", "A4"),
    "c8": _contact("hubspot", "c8", "x@multi.com", "A2"),
    "c9": _contact("hubspot", "c9", "y@multi.com", "A4"),
    "c10": _contact("hubspot", "c10", "z@Multi.com"),  # multi.com: two customers, so none
}


def _links(store: HubStore) -> dict[str, tuple[str | None, str | None]]:
    con = t.table_of(t.Contact)
    with store.engine.connect() as conn:
        return {
            sid: (cid, via)
            for sid, cid, via in conn.execute(
                sa.select(con.c.source_id, con.c.customer_id, con.c.linked_via).where(
                    con.c.deleted.is_(False)
                )
            )
        }


def _customer(store: HubStore, account: str) -> str | None:
    acc = t.table_of(t.SourceAccount)
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(acc.c.customer_id).where(acc.c.source_id == account)
        ).scalar_one()


def _step(
    store: HubStore, n: int, accounts: Sequence[Any] = (), contacts: Sequence[Any] = ()
) -> Any:
    """Store the step's changes as a re-read would (later modification), unify incrementally,
    then check that a full linking of the same store changes no contact."""
    later = T0 + dt.timedelta(days=n)
    if accounts:
        store.upsert_records(
            "account", [dataclasses.replace(a, modified_at=later) for a in accounts]
        )
    if contacts:
        store.upsert_records(
            "contact", [dataclasses.replace(c, modified_at=later) for c in contacts]
        )
    stats = unify(store, now=NOW + dt.timedelta(minutes=n))
    assert stats.contacts_relinked is not None, "the step relinked every contact"
    relinked = _links(store)
    full = unify(store, now=NOW + dt.timedelta(minutes=n, seconds=30), incremental=False)
    assert full.contacts_relinked is None
    assert full.written["contact"] == 0
    assert _links(store) == relinked
    return stats


def test_relinking_only_the_contacts_that_may_have_moved_equals_a_full_linking(
    store: HubStore,
) -> None:
    store.upsert_records("account", list(ACCOUNTS.values()))
    store.upsert_records("contact", list(CONTACTS.values()))
    first = unify(store, now=NOW)
    assert first.contacts_relinked is None  # no stored links yet: every contact read
    links = _links(store)
    a1, a2, a3, a4 = (_customer(store, a) for a in ("A1", "A2", "A3", "A4"))
    assert links["c1"] == (a1, None)
    assert links["c6"] == (a4, None)
    assert links["c3"] == (a3, LINKED_BY_DOMAIN)  # shared.net: its colleague's customer
    assert links["c4"] == (a2, LINKED_BY_DOMAIN)
    assert links["c5"] == (None, LINKED_NONE)
    assert links["c10"] == (None, LINKED_NONE)  # multi.com points at two customers

    # 1. the one contact placed through an account at shared.net leaves it: the lead placed
    #    by that domain (not changed itself) loses its customer
    s = _step(store, 1, contacts=[_contact("salesforce", "c2", "bob@other.net", "A3")])
    assert _links(store)["c3"] == (None, LINKED_NONE)
    assert s.contacts_relinked < len(CONTACTS)

    # 2. an account's website moves to another domain, and a new lead arrives at it
    _step(
        store,
        2,
        accounts=[_account("hubspot", "A2", "Beta Analytics", "https://beta2.io")],
        contacts=[_contact("hubspot", "c7", "ann@beta2.io")],
    )
    assert _links(store)["c4"] == (None, LINKED_NONE)
    assert _links(store)["c7"] == (a2, LINKED_BY_DOMAIN)

    # 3. multi.com's second customer goes: its vote moves to the first, the lead follows
    _step(store, 3, contacts=[_contact("hubspot", "c9", "y@multi.com", "A2")])
    assert _links(store)["c10"] == (a2, LINKED_BY_DOMAIN)

    # 4. a contact changes accounts (another CRM's id order), then its account is deleted
    _step(store, 4, contacts=[_contact("hubspot", "c6", "zed@delta.org", "A9", "A2")])
    assert _links(store)["c6"] == (a2, None)
    _step(store, 5, accounts=[dataclasses.replace(ACCOUNTS["A1"], deleted=True)])
    assert _links(store)["c1"] == (None, LINKED_NONE)  # acme.com has no customer left

    # 5. a contact deleted, a new one at a domain two customers share
    _step(
        store,
        6,
        contacts=[
            dataclasses.replace(CONTACTS["c8"], deleted=True),
            _contact("hubspot", "c11", "new@delta.org"),
        ],
    )
    assert "c8" not in _links(store)
    # delta.org: A4's website, and c6 (at Beta since step 4): two customers, so none
    assert _links(store)["c11"] == (None, LINKED_NONE)
