"""The hub's clock and the pseudonym of an email address.

Why a module of their own: the store and erasure both need them, and erasure must not import
the store (the store calls erasure when a CRM deletes a person), so they sit below both.
"""

from __future__ import annotations

import datetime as dt
import hashlib


def email_hash(email: str) -> str:
    """A stable pseudonym of an address: what erasure keeps instead of the address itself."""
    return hashlib.sha256(email.strip().casefold().encode("utf-8")).hexdigest()


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC: the hub's own times (``changed_at``, audits) are all UTC."""
    return dt.datetime.now(dt.UTC)
