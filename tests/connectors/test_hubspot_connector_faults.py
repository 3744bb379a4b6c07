"""The HubSpot connector survives what a real portal throws at it: burst 429s, 5xx and dropped
connections are retried (honouring Retry-After, every attempt counted); a DAILY 429 or the hub's
spent budget share stops the read between pages with the checkpoint kept; an expired OAuth
token is refreshed (ahead of expiry, or once on a 401); a bad token or a missing scope fails
fast with a message naming the setting or scope and never the secret."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import (  # noqa: F401
    FakeClock,
    ago,
    calls,
    connector,
    drain,
    sandbox_fixture,
    seed,
)

from connectors.errors import AuthenticationError, MissingScopeError, QuotaExhausted
from connectors.records import HubFieldSpec
from sandbox.control import set_config
from sandbox.http import FaultRule
from sandbox.hubspot.oauth import add_refresh_token, register_client
from sandbox.runner import HS_ALL_SCOPES, Sandbox
from sandbox.state import HS

SEARCH = "/crm/v3/objects/companies/search"


def _companies(sb: Sandbox, n: int) -> list[str]:
    ids = [str(100 + i) for i in range(n)]
    for rid in ids:
        seed(sb.state, "companies", {"name": f"c{rid}"}, rid=rid, created=ago(sb, 3600))
    return ids


def _fault(sb: Sandbox, **rule: object) -> None:
    sb.servers["hubspot"].faults.add(FaultRule(**rule))  # type: ignore[arg-type]


def test_burst_429_is_retried_after_retry_after_and_counted(sb: Sandbox) -> None:
    ids = _companies(sb, 3)
    set_config(sb.state, HS, {"retry_after_seconds": None})  # the emulator's own 10 s
    _fault(sb, kind="rate_limit", path="/search$", nth=1, params={"policy": "TEN_SECONDLY_ROLLING"})
    clock = FakeClock()
    conn = connector(sb, clock, first_sync_plan="search")
    head = sb.state.ledger_head()
    records, _, _ = drain(conn.read("account", None))
    assert [r.source_id for r in records] == ids
    assert clock.sleeps == [10.0]  # Retry-After honoured, once
    assert calls(sb, head)[1:] == [("POST", SEARCH, 429), ("POST", SEARCH, 200)]
    assert conn.usage().calls_by_object == {"properties": 1, "companies": 2}


def test_secondly_429_server_errors_and_resets_are_retried(sb: Sandbox) -> None:
    ids = _companies(sb, 2)
    _fault(sb, kind="rate_limit", path="/search$", nth=1, params={"policy": "SECONDLY"})
    # nth counts the requests a rule sees; the first search is taken by the rule above
    _fault(sb, kind="server_error", path="/search$", nth=1, params={"status": 503})
    _fault(sb, kind="reset", path="/properties/", nth=1)
    clock = FakeClock()
    conn = connector(sb, clock, first_sync_plan="search")
    records, _, _ = drain(conn.read("account", None))
    assert [r.source_id for r in records] == ids
    assert [c[2] for c in calls(sb, 0)] == [0, 200, 429, 503, 200]  # 0: the dropped connection
    assert conn.usage().calls == 5 and len(clock.sleeps) == 3


@pytest.mark.parametrize("plan", ["list", "search"])
def test_daily_limit_stops_between_pages_and_the_checkpoint_resumes(sb: Sandbox, plan: str) -> None:
    ids = _companies(sb, 7)
    path = "/search$" if plan == "search" else "/objects/companies$"
    _fault(sb, kind="rate_limit", path=path, nth=3, params={"policy": "DAILY"})
    clock = FakeClock()
    small = {"search_page_size": 2, "list_page_size": 2, "association_batch_size": 2}
    conn = connector(sb, clock, first_sync_plan=plan, **small)
    seen: list[str] = []
    cursor = None
    with pytest.raises(QuotaExhausted, match="daily"):
        for page in conn.read("account", None):
            seen += [r.source_id for r in page.records]
            cursor = page.cursor
    assert seen == ids[:4] and clock.sleeps == []  # no sleeping on a DAILY limit
    assert cursor is not None
    if plan == "search":
        assert cursor["last_id"] == ids[3]
    else:
        assert cursor["in_list"]["after"]  # the list's own token of the page that failed
    resumed = connector(sb, first_sync_plan=plan, **small)
    rest, final, _ = drain(resumed.read("account", cursor))
    assert [r.source_id for r in rest] == ids[4:]
    assert final is not None and final["in_window"] is None and not final.get("in_list")


@pytest.mark.parametrize("plan", ["list", "search"])
def test_budget_share_of_the_daily_quota_stops_the_read(sb: Sandbox, plan: str) -> None:
    ids = _companies(sb, 7)
    set_config(sb.state, HS, {"daily_limit": 10})
    small = {"search_page_size": 1, "list_page_size": 1, "association_batch_size": 1}
    conn = connector(sb, budget_share=0.5, first_sync_plan=plan, **small)
    seen: list[str] = []
    with pytest.raises(QuotaExhausted, match=r"budget_share=0\.5"):
        for page in conn.read("account", None):
            seen += [r.source_id for r in page.records]
    assert seen == ids[:4]  # 1 properties call + 4 searches or list pages = half of 10
    assert len(calls(sb, 0)) == 5
    assert conn.usage().quota_used == 5 and conn.usage().quota_max == 10


def _oauth(sb: Sandbox) -> dict[str, str]:
    register_client(sb.state, "crmhub-app", "app-secret-123")
    add_refresh_token(sb.state, "refresh-abc-456", "crmhub-app", HS_ALL_SCOPES)
    return {
        "access_token": None,  # type: ignore[dict-item]
        "client_id": "crmhub-app",
        "client_secret": "app-secret-123",
        "refresh_token": "refresh-abc-456",
    }


def test_oauth_token_is_refreshed_ahead_of_expiry_and_once_on_a_401(sb: Sandbox) -> None:
    _companies(sb, 1)
    clock = FakeClock()
    conn = connector(sb, clock, **_oauth(sb))  # type: ignore[arg-type]
    drain(conn.read("account", None))
    assert calls(sb, 0)[0] == ("POST", "/oauth/v1/token", 200)

    # The portal's clock passes the 30-minute lifetime while ours does not: a 401, one refresh.
    sb.state.advance_clock(1800)
    head = sb.state.ledger_head()
    drain(conn.read("owner", None))
    assert calls(sb, head)[:3] == [
        ("GET", "/crm/v3/owners/", 401),
        ("POST", "/oauth/v1/token", 200),
        ("GET", "/crm/v3/owners/", 200),
    ]
    # Our clock passes expires_in minus the margin: refreshed before the request, no 401.
    clock.now += 1800
    head = sb.state.ledger_head()
    drain(conn.read("owner", None))
    assert calls(sb, head)[:2] == [
        ("POST", "/oauth/v1/token", 200),
        ("GET", "/crm/v3/owners/", 200),
    ]
    assert conn.usage().calls_by_object["oauth"] == 3


def test_bad_credentials_fail_fast_naming_the_setting_not_the_secret(sb: Sandbox) -> None:
    bad = connector(sb, access_token="pat-na1-revoked-secret-value")
    with pytest.raises(AuthenticationError) as err:
        drain(bad.read("owner", None))
    assert "CRMHUB_HS_ACCESS_TOKEN" in str(err.value)
    assert "revoked-secret-value" not in str(err.value)
    assert len(calls(sb, 0)) == 1  # a private-app token cannot be refreshed: no retry

    options = _oauth(sb)
    options["client_secret"] = "wrong-secret-789"
    with pytest.raises(AuthenticationError) as err:
        drain(connector(sb, **options).read("owner", None))  # type: ignore[arg-type]
    assert "CRMHUB_HS_CLIENT_SECRET" in str(err.value)
    assert "wrong-secret-789" not in str(err.value) and "refresh-abc" not in str(err.value)


def test_missing_scopes_fail_fast_naming_the_scope(sb: Sandbox) -> None:
    limited = [s for s in HS_ALL_SCOPES if s not in ("tickets", "crm.schemas.companies.write")]
    sb.state.add_token("pat-limited-token", HS, limited)
    conn = connector(sb, access_token="pat-limited-token")
    with pytest.raises(MissingScopeError) as err:
        drain(conn.read("ticket", None))
    assert "tickets" in err.value.scopes and "tickets" in str(err.value)
    with pytest.raises(MissingScopeError) as err:
        conn.ensure_fields([HubFieldSpec("health_score", "Health score", "number")])
    assert err.value.scopes == ("crm.schemas.companies.write",)
    # ticket properties 403; company properties 200; the group create 403: no retries of a 403
    assert [c[2] for c in calls(sb, 0)] == [403, 200, 403]
