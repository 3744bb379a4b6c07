"""HubSpot owners are read every run at one call, and deactivated (archived) owners are listed on
the first read and again only when the archived-check interval has passed."""

from __future__ import annotations

import datetime as dt

from connectors.records import OwnerRecord
from sandbox.hubspot.testing import seed
from sandbox.runner import Sandbox
from tests.connectors.test_hubspot_kit import calls, connector, drain
from tests.connectors.test_hubspot_kit import sandbox_fixture as sandbox_fixture

OWNERS = ("GET", "/crm/v3/owners/", 200)


def test_archived_owners_only_when_due(sb: Sandbox) -> None:
    t = sb.state.now() - dt.timedelta(hours=1)
    seed(
        sb.state,
        "owners",
        {"email": "ann@x.io", "firstName": "Ann", "lastName": "Lee", "userId": 1},
        rid="501",
        created=t,
    )
    seed(
        sb.state,
        "owners",
        {"email": "bo@x.io", "firstName": "Bo", "lastName": "Ek", "userId": 2},
        rid="502",
        created=t,
        archived=True,
    )
    conn = connector(sb, archived_check_interval_seconds=3600)

    head = sb.state.ledger_head()
    records, cursor, _ = drain(conn.read("owner", None))
    assert calls(sb, head) == [OWNERS, OWNERS]  # first read: active and archived
    assert {r.source_id: r.active for r in records if isinstance(r, OwnerRecord)} == {
        "501": True,
        "502": False,
    }

    head = sb.state.ledger_head()
    records, cursor2, _ = drain(conn.read("owner", cursor))
    assert calls(sb, head) == [OWNERS]  # nothing due: one call
    assert [r.source_id for r in records] == ["501"]

    sb.state.advance_clock(3601)
    head = sb.state.ledger_head()
    records, _, _ = drain(conn.read("owner", cursor2))
    assert calls(sb, head) == [OWNERS, OWNERS]  # the interval passed: archived listed again
    assert sorted(r.source_id for r in records) == ["501", "502"]
