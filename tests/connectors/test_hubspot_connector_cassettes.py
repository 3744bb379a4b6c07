"""Contract of the HubSpot connector with the API, recorded: every request/response shape it
relies on (a first sync's list pages with inline associations, search, v4 association batch reads
with 207s, archived list, owners, properties and groups, batch update with a 207, batch read, OAuth
refresh, MISSING_SCOPES and DAILY errors) is
kept as a vcrpy cassette recorded against the sandbox, replays without any server to the same
records and outcomes, and holds no token or client secret."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import vcr
import yaml

from connectors.errors import MissingScopeError, QuotaExhausted
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.limiter import PortalLimiter
from connectors.records import FieldUpdate, HubFieldSpec
from sandbox.control import set_config
from sandbox.http import FaultRule
from sandbox.hubspot.oauth import add_refresh_token, register_client
from sandbox.hubspot.testing import link, seed
from sandbox.runner import HS_ALL_SCOPES, SANDBOX_HS_TOKEN, Sandbox
from sandbox.state import HS

CASSETTES = Path(__file__).parent / "cassettes" / "hubspot"
CLIENT_SECRET = "cassette-client-secret-5d1f"
REFRESH_TOKEN = "cassette-refresh-token-9a7c"
LIMITED_TOKEN = "pat-cassette-limited-3e2b"
#: Everything that must never appear in a cassette.
SECRETS = (SANDBOX_HS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, LIMITED_TOKEN, "hs-sandbox-oauth-")
HEALTH = HubFieldSpec("health_score", "Health score", "number")
_TOKEN_FIELDS = re.compile(r'("(?:access_token|refresh_token)"\s*:\s*")[^"]*(")')


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body", {}).get("string", b"")
    if isinstance(body, bytes):
        text = body.decode("utf-8", "replace")
        scrubbed = _TOKEN_FIELDS.sub(r"\1REDACTED\2", text)
        if scrubbed != text:
            response["body"]["string"] = scrubbed.encode("utf-8")
    return response


def _recorder(mode: str) -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=mode,
        # The sandbox listens on an ephemeral port, so the port is not part of a match.
        match_on=["method", "scheme", "path", "query"],
        filter_headers=["authorization", "cookie"],
        filter_query_parameters=["hapikey"],
        filter_post_data_parameters=["client_secret", "refresh_token"],
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: Callable[[Sandbox], dict[str, Any]]  # portal data; returns connector settings
    run: Callable[[HubSpotConnector], Any]  # the calls; returns what must come out
    expected: Any


def _hour_ago(sb: Sandbox) -> dt.datetime:
    return sb.state.now() - dt.timedelta(hours=1)


def _seed_reads(sb: Sandbox) -> dict[str, Any]:
    t = _hour_ago(sb)
    st = sb.state
    seed(
        st,
        "owners",
        {
            "email": "ann@x.io",
            "firstName": "Ann",
            "lastName": "Lee",
            "userId": 1,
            "teams": [{"id": "7", "name": "AM", "primary": True}],
        },
        rid="501",
        created=t,
    )
    seed(st, "companies", {"name": "Acme", "annualrevenue": "10.50"}, rid="101", created=t)
    seed(st, "companies", {"name": "Gone"}, rid="102", created=t)
    seed(st, "contacts", {"email": "p@acme.fi", "lifecyclestage": "lead"}, rid="201", created=t)
    seed(
        st,
        "deals",
        {
            "dealname": "D",
            "dealstage": "closedwon",
            "hs_is_closed": "true",
            "hs_is_closed_won": "true",
            "amount": "100.00",
        },
        rid="301",
        created=t,
    )
    seed(
        st,
        "emails",
        {"hs_email_direction": "INCOMING_EMAIL", "hs_timestamp": "2024-01-02T03:04:05.000Z"},
        rid="601",
        created=t,
    )
    link(st, "deals", "301", "companies", "101", primary=True)
    link(st, "deals", "301", "contacts", "201")
    link(st, "emails", "601", "contacts", "201")
    st.soft_delete(HS, "companies", "102")
    return {}


def _run_reads(conn: HubSpotConnector) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for page in conn.read("owner", None):
        out += [("owner", r.source_id, r.department) for r in page.records]  # type: ignore[union-attr]
    # A first sync: the list endpoint with the associations inline.
    for page in conn.read("deal", None):
        out += [
            ("deal", r.source_id, r.account_id, r.contact_ids, r.amount, r.is_won)  # type: ignore[union-attr]
            for r in page.records
        ]
    # Increments: search windows, v4 association batch reads (207 for the types without links)
    # and the archived list.
    old = {"upper": "2000-01-01T00:00:00.000Z", "archived_checked_at": "2000-01-01T00:00:00.000Z"}
    conn.reader.validate("email")  # what a first sync does before reading
    for page in conn.read("email", old):
        out += [
            ("email", r.source_id, r.direction, r.contact_ids, r.account_ids)  # type: ignore[union-attr]
            for r in page.records
        ]
    for page in conn.read("account", old):
        out += [
            ("account", r.source_id, r.deleted, getattr(r, "annual_revenue", None))
            for r in page.records
        ]
    return out


def _seed_writes(sb: Sandbox) -> dict[str, Any]:
    seed(sb.state, "companies", {"name": "Acme"}, rid="101", created=_hour_ago(sb))
    return {"hub_fields": (HEALTH,)}


def _run_writes(conn: HubSpotConnector) -> list[Any]:
    provisioned = [(r.crm_name, r.action) for r in conn.ensure_fields([HEALTH])]
    written = [
        (r.source_id, r.outcome)
        for r in conn.write(
            [FieldUpdate("101", {"health_score": "64"}), FieldUpdate("999", {"health_score": "1"})]
        )
    ]
    return [provisioned, written, conn.read_hub_fields(["101"])]


def _seed_oauth(sb: Sandbox) -> dict[str, Any]:
    register_client(sb.state, "crmhub-cassette", CLIENT_SECRET)
    add_refresh_token(sb.state, REFRESH_TOKEN, "crmhub-cassette", HS_ALL_SCOPES)
    seed(
        sb.state,
        "owners",
        {"email": "a@x.io", "firstName": "A", "lastName": "B", "userId": 3},
        rid="777",
        created=_hour_ago(sb),
    )
    return {
        "access_token": None,
        "client_id": "crmhub-cassette",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }


def _run_oauth(conn: HubSpotConnector) -> list[Any]:
    owners = [r.source_id for p in conn.read("owner", None) for r in p.records]
    return [owners, conn.usage().calls_by_object]


def _seed_errors(sb: Sandbox) -> dict[str, Any]:
    sb.state.add_token(LIMITED_TOKEN, HS, [s for s in HS_ALL_SCOPES if s != "tickets"])
    sb.servers["hubspot"].faults.add(
        FaultRule(kind="rate_limit", path="/search$", nth=1, params={"policy": "DAILY"})
    )
    return {"access_token": LIMITED_TOKEN}


def _run_errors(conn: HubSpotConnector) -> list[Any]:
    out: list[Any] = []
    try:
        list(conn.read("ticket", None))
    except MissingScopeError as exc:
        out.append(("scope", "tickets" in exc.scopes))
    try:
        list(conn.read("account", {"upper": "2000-01-01T00:00:00.000Z"}))
    except QuotaExhausted:
        out.append(("quota", True))
    return out


SCENARIOS = [
    Scenario(
        "reads",
        _seed_reads,
        _run_reads,
        [
            ("owner", "501", "AM"),
            ("deal", "301", "101", ("201",), 100.0, True),
            ("email", "601", "inbound", ("201",), ()),
            ("account", "101", False, 10.5),
            ("account", "102", True, None),
        ],
    ),
    Scenario(
        "writes",
        _seed_writes,
        _run_writes,
        [
            [("crmhub_health_score", "created")],
            [("101", "ok"), ("999", "skipped")],
            {"101": {"health_score": "64"}},
        ],
    ),
    Scenario("oauth", _seed_oauth, _run_oauth, [["777"], {"oauth": 1, "owners": 2}]),
    Scenario("errors", _seed_errors, _run_errors, [("scope", True), ("quota", True)]),
]


def _connector(base_url: str, ca_bundle: str | None, settings: dict[str, Any]) -> HubSpotConnector:
    options: dict[str, Any] = {
        "base_url": base_url,
        "ca_bundle": ca_bundle,
        "access_token": "replay-token",
    }
    options.update(settings)
    limiter = PortalLimiter(10_000, 10.0, 10_000)
    return HubSpotConnector(HubSpotConfig(**options), limiter=limiter, sleep=lambda _s: None)


def _record(scenario: Scenario, tmp_path: Path) -> None:
    with Sandbox(tmp_path / scenario.name) as sb:
        set_config(sb.state, HS, {"burst_limit": 100_000, "search_per_second": 100_000})
        settings = scenario.seed(sb)
        settings.setdefault("access_token", sb.info.hs_token)
        with _recorder("all").use_cassette(f"{scenario.name}.yaml"):
            conn = _connector(sb.info.hubspot_url, sb.info.ca_bundle, settings)
            assert scenario.run(conn) == scenario.expected


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_cassette_replays_without_a_server(scenario: Scenario, tmp_path: Path) -> None:
    if not (CASSETTES / f"{scenario.name}.yaml").exists():
        _record(scenario, tmp_path)  # first run, or after deleting a cassette to re-record
    settings = _replay_settings(scenario)
    with _recorder("none").use_cassette(f"{scenario.name}.yaml"):
        # Port 9 (discard) has no server: any request not in the cassette fails loudly.
        conn = _connector("https://127.0.0.1:9", None, settings)
        assert scenario.run(conn) == scenario.expected


def _replay_settings(scenario: Scenario) -> dict[str, Any]:
    """Connector settings for a replay: the shape of the recorded ones, no real secret."""
    if scenario.name == "writes":
        return {"hub_fields": (HEALTH,)}
    if scenario.name == "oauth":
        return {
            "access_token": None,
            "client_id": "crmhub-cassette",
            "client_secret": "replay-secret",
            "refresh_token": "replay-refresh",
        }
    return {}


def _leaks(text: str) -> list[str]:
    """The secrets (first characters only) found in a cassette's text."""
    return [secret[:6] + "…" for secret in SECRETS if secret in text]


def test_no_cassette_holds_a_secret() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.stem for f in files} >= {s.name for s in SCENARIOS}
    for path in files:
        assert _leaks(path.read_text()) == [], path.name
        for interaction in _interactions(path):
            headers = {k.lower() for k in interaction["request"]["headers"]}
            assert "authorization" not in headers
    # The scan itself finds what it looks for.
    assert _leaks(f"Authorization: Bearer {SANDBOX_HS_TOKEN}") == [SANDBOX_HS_TOKEN[:6] + "…"]


def _interactions(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    return list(data.get("interactions", []))


def test_oauth_cassette_keeps_the_shape_but_not_the_token() -> None:
    token_calls = [
        i for i in _interactions(CASSETTES / "oauth.yaml") if i["request"]["uri"].endswith("/token")
    ]
    assert len(token_calls) == 1
    body = json.loads(token_calls[0]["response"]["body"]["string"])
    assert body["access_token"] == "REDACTED" and body["expires_in"] == 1800
    sent = token_calls[0]["request"]["body"]
    assert "grant_type=refresh_token" in sent and "client_secret" not in sent
