"""Seeding helpers for HubSpot emulator tests: records, owners and links written straight to state.

Why not through the API: a test of the list or search endpoint must not depend on the create
endpoint working, and tests need control the API does not give (creation and modification
times, archived rows, ids of chosen magnitude). The helpers store data exactly as the storage
convention in ``sandbox.formats`` prescribes, so seeded rows look like API-created ones.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.formats import hs_new_id
from sandbox.hubspot.associations import add_link, pair_types
from sandbox.state import HS, SandboxState


def seed(
    state: SandboxState,
    ot: str,
    properties: dict[str, Any] | None = None,
    *,
    rid: str | None = None,
    created: dt.datetime | None = None,
    modified: dt.datetime | None = None,
    archived: bool = False,
) -> str:
    """Insert one record of ``ot`` and return its id (a fresh portal id unless ``rid``)."""
    record_id = rid or hs_new_id(state)
    state.insert(
        HS,
        ot,
        record_id,
        dict(properties or {}),
        created=created,
        modified=modified,
        deleted=archived,
    )
    return record_id


def seed_owner(
    state: SandboxState, email: str, first: str, last: str, user_id: int, *, rid: str | None = None
) -> str:
    """Insert one owner (object ``owners``) and return its owner id."""
    return seed(
        state,
        "owners",
        {"email": email, "firstName": first, "lastName": last, "userId": user_id},
        rid=rid,
    )


def link(
    state: SandboxState,
    from_ot: str,
    from_id: str,
    to_ot: str,
    to_id: str,
    *,
    primary: bool = False,
) -> None:
    """Associate two records in both directions (plus the "Primary" label if asked)."""
    unl, primary_type = pair_types(from_ot, to_ot)
    add_link(
        state, from_ot, from_id, to_ot, to_id, primary_type if primary and primary_type else unl
    )
