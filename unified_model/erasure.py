"""Right to be forgotten: remove a person from the hub and keep them out.

Why here: the hub copies personal data (contacts, email addresses in logged emails) out of both
CRMs. An erasure request must remove every copy, leave only a pseudonymous audit entry, and stop
the next sync from bringing the person back from a stale CRM row. A person deleted in a CRM is
scrubbed the same way for that CRM's rows (without blocking the other CRM, which may still hold
them legitimately).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from unified_model import tables as t
from unified_model.stamps import email_hash, utcnow


class HubStore(Protocol):
    """What erasure needs of the hub store (``unified_model.store.HubStore``); a protocol, so
    that the store can call erasure without the two importing each other."""

    def session(self) -> AbstractContextManager[Session]: ...

    def mark_dirty(self, conn: sa.Connection, customer_ids: Iterable[str | None]) -> int: ...


def _pseudonym(h: str) -> str:
    return "person-" + h[:16]


def erase_email(store: HubStore, email: str) -> dict[str, Any]:
    """Erase everything the hub holds about the person with this address, and block re-creation.

    Returns counts of removed rows and the pseudonym written to the audit.
    """
    h = email_hash(email)
    needle = email.strip().casefold()
    counts = {"contacts": 0, "emails": 0}
    with store.session() as s:
        contacts = s.exec(select(t.Contact).where(t.Contact.email_normalized == needle)).all()
        touched = {c.customer_id for c in contacts}
        for c in contacts:
            s.delete(c)
        counts["contacts"] = len(contacts)
        emails = s.exec(select(t.Email)).all()
        for e in emails:
            addresses = [e.from_address or "", *(e.to_addresses or [])]
            if any(a.strip().casefold() == needle for a in addresses if a):
                touched.add(e.customer_id)
                s.delete(e)
                counts["emails"] += 1
        # their customers' figures change: the next incremental run recomputes them
        store.mark_dirty(s.connection(), touched)
        if s.get(t.ErasedIdentity, h) is None:
            s.add(t.ErasedIdentity(email_hash=h, erased_at=utcnow()))
        s.add(
            t.ErasureAudit(
                pseudonym=_pseudonym(h), erased_at=utcnow(), counts=counts, trigger="request"
            )
        )
        s.commit()
    return {**counts, "pseudonym": _pseudonym(h)}


def scrub_contacts(store: HubStore, source: str, source_ids: Sequence[str]) -> int:
    """Remove personal data of contacts deleted in ``source``; their emails there go too."""
    scrubbed = 0
    email = t.table_of(t.Email)
    with store.session() as s:
        for start in range(0, len(source_ids), 500):
            chunk = list(source_ids[start : start + 500])
            rows = s.exec(
                select(t.Contact).where(
                    t.Contact.source == source, col(t.Contact.source_id).in_(chunk)
                )
            ).all()
            addresses: list[str] = []
            for c in rows:
                if not c.email and not c.first_name and not c.last_name:
                    continue
                if c.email_normalized:
                    addresses.append(c.email_normalized)
                c.email = c.email_normalized = c.first_name = c.last_name = None
                c.phone = c.title = c.company_name = None
                s.add(c)
                scrubbed += 1
            if not addresses:
                continue
            # One pass over the emails per chunk of contacts, not one per contact: the sender's
            # address has no index (a deleted contact each scanned every email: 91 s of a
            # large sync that found 1,017 deletes).
            sender = sa.func.lower(email.c.from_address)
            found = s.execute(
                sa.select(sender, email.c.customer_id).where(
                    email.c.source == source, sender.in_(addresses)
                )
            ).all()
            store.mark_dirty(s.connection(), (row[1] for row in found))
            removed: dict[str, int] = {}
            for row in found:
                removed[row[0]] = removed.get(row[0], 0) + 1
            if found:
                s.execute(sa.delete(email).where(email.c.source == source, sender.in_(addresses)))
            for address in addresses:
                s.add(
                    t.ErasureAudit(
                        pseudonym=_pseudonym(email_hash(address)),
                        erased_at=utcnow(),
                        counts={"contacts": 1, "emails": removed.get(address, 0)},
                        trigger="source_delete",
                    )
                )
        s.commit()
    return scrubbed
