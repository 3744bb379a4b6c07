"""Ids and value formats exactly as the real CRMs produce them.

Shared by the emulators (which render stored values) and the generator (which allocates ids), so
that a generated record is indistinguishable from one created through the API.

Storage convention (see ``sandbox.state``):

- Salesforce ``data`` holds field values in Salesforce's JSON form: datetimes
  ``2026-05-01T07:25:37.000+0000``, dates ``2026-05-24``, numbers, booleans, ``null``.
  The system fields ``Id``, ``IsDeleted``, ``CreatedDate``, ``LastModifiedDate`` and
  ``SystemModstamp`` are *not* stored in ``data``; the emulator derives them from the row's columns.
- HubSpot ``data`` holds properties as strings (or ``null``), datetimes ``2026-05-01T07:25:37.123Z``.
  ``hs_object_id``, ``createdate`` and the last-modified property are derived from the row.
"""

from __future__ import annotations

import datetime as dt

from sandbox.state import SandboxState

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id15_to_18(id15: str) -> str:
    """Salesforce's case-safe 18-character id: a checksum of upper-case positions, 3 chars."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _SUFFIX[bits]
    return id15 + suffix


def sf_make_id(prefix: str, number: int, pod: str = "5g") -> str:
    """An 18-char id: 3-char key prefix, 2-char pod, 10-char base62 counter, 3-char checksum."""
    digits = ""
    n = number
    for _ in range(10):
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    return sf_id15_to_18(prefix + pod + digits)


def sf_new_id(state: SandboxState, prefix: str) -> str:
    """Allocate a fresh Salesforce id for an object with this key prefix."""
    return sf_make_id(prefix, state.next_counter(f"sf:{prefix}", start=100_000))


def hs_new_id(state: SandboxState) -> str:
    """Allocate a fresh HubSpot object id (numeric string, portal-wide unique)."""
    return str(state.next_counter("hs:object", start=10_000_001))


def sf_datetime(value: dt.datetime) -> str:
    """``2026-05-01T07:25:37.000+0000``: Salesforce's datetime form (millis, no colon)."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def hs_datetime(value: dt.datetime) -> str:
    """``2026-05-01T07:25:37.123Z``: HubSpot's datetime form."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def stored_to_sf(stored: str) -> str:
    """Convert a stored canonical timestamp (``…Z``) to Salesforce form."""
    return stored[:-1] + "+0000" if stored.endswith("Z") else stored


def hs_epoch_ms(value: dt.datetime) -> str:
    return str(int(value.timestamp() * 1000))
