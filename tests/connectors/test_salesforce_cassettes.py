"""Contract tests: the Salesforce connector parses every request/response shape it relies on.

Each scenario runs the real connector inside a vcrpy cassette. Without a cassette file it starts
the sandbox and records (tokens, client secrets, passwords and Authorization headers scrubbed);
with one it replays with ``record_mode="none"`` and no sandbox at all, and must make exactly the
recorded requests and reach the same results. Re-record by deleting
``tests/connectors/cassettes/salesforce/``. A last test greps every cassette for secrets.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import vcr

from connectors.errors import QuotaExhausted
from connectors.records import FieldUpdate, HubFieldSpec, WriteResult
from connectors.salesforce import ClientCredentialsAuth, SalesforceConfig, SalesforceConnector
from sandbox.formats import sf_make_id
from sandbox.http import FaultRule
from sandbox.runner import (
    SANDBOX_SF_CLIENT_ID,
    SANDBOX_SF_CLIENT_SECRET,
    SANDBOX_SF_PASSWORD,
    SANDBOX_SF_SECURITY_TOKEN,
    Sandbox,
)
from sandbox.state import SF, SandboxState
from tests.connectors.salesforce_support import Sleeps

CASSETTES = Path(__file__).parent / "cassettes" / "salesforce"
#: Replays never open a socket; the port is not matched, so any URL of the recorded host works.
REPLAY_URL = "https://127.0.0.1:9"
T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
SECRET_KEYS = ("access_token", "refresh_token", "signature", "id_token")


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Blank token values in OAuth token responses before they are written to disk."""
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes) and b"access_token" in body:
        try:
            payload = json.loads(body)
        except ValueError:
            return response
        for key in SECRET_KEYS:
            if key in payload:
                payload[key] = "REDACTED"
        response["body"]["string"] = json.dumps(payload).encode()
    return response


RECORDER = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    match_on=("method", "scheme", "host", "path", "query"),
    filter_headers=("authorization", "cookie", "set-cookie"),
    filter_post_data_parameters=(
        "client_id",
        "client_secret",
        "username",
        "password",
        "refresh_token",
        "assertion",
    ),
    before_record_response=_scrub_response,
    decode_compressed_response=True,
    record_on_exception=False,
)

Scenario = Callable[[SalesforceConnector], Any]


def _config(url: str, ca_bundle: str | None, **overrides: Any) -> SalesforceConfig:
    values: dict[str, Any] = {
        "instance_url": url,
        "token_url": f"{url}/services/oauth2/token",
        "auth": ClientCredentialsAuth(SANDBOX_SF_CLIENT_ID, SANDBOX_SF_CLIENT_SECRET),
        "ca_bundle": ca_bundle,
        "bulk_poll_seconds": 0.0,
    }
    values.update(overrides)
    return SalesforceConfig(**values)


def run_recorded(
    name: str,
    seed: Callable[[Sandbox], None],
    scenario: Scenario,
    **config: Any,
) -> tuple[Any, list[tuple[str, str]]]:
    """Run ``scenario`` against the cassette ``name`` (recording it first if missing).

    Returns the scenario's result and the (method, path) of every recorded request.
    """
    path = CASSETTES / f"{name}.yaml"
    if path.exists():
        with RECORDER.use_cassette(path.name, record_mode="none") as cassette:
            connector = SalesforceConnector(_config(REPLAY_URL, None, **config), sleep=Sleeps())
            result = scenario(connector)
            assert cassette.all_played, f"{name}: the connector skipped recorded requests"
    else:
        CASSETTES.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as home, Sandbox(home) as sb:
            seed(sb)
            with RECORDER.use_cassette(path.name, record_mode="once") as cassette:
                connector = SalesforceConnector(
                    _config(sb.info.salesforce_url, sb.info.ca_bundle, **config), sleep=Sleeps()
                )
                result = scenario(connector)
    shapes = [
        (r.method, re.sub(r"^https://[^/]+", "", r.uri).split("?")[0]) for r in cassette.requests
    ]
    return result, shapes


def _id(prefix: str, n: int) -> str:
    return sf_make_id(prefix, n)


def _seed_accounts(sb: Sandbox) -> None:
    state: SandboxState = sb.state
    # A fixed org clock keeps every recorded query and header identical between recordings
    # (and the deleted row inside the 15-day recycle bin).
    state.set_clock(T0 + dt.timedelta(days=1))
    for i in range(3):
        state.insert(
            SF,
            "Account",
            _id("001", i),
            {
                "Name": f"Contract {i}",
                "Contracted_Modules__c": "Billing;Reporting",
                "Usage_Score__c": 50 + i,
                "Go_Live_Date__c": "2024-01-0" + str(i + 1),
                "Onboarding_Completed__c": i % 2 == 0,
            },
            created=T0,
            modified=T0 + dt.timedelta(seconds=i),
            deleted=i == 2,
        )


V = "/services/data/v59.0"


def test_login_first_sync_incremental_and_reconcile() -> None:
    def scenario(connector: SalesforceConnector) -> Any:
        first = list(connector.read("account", None))
        again = list(connector.read("account", first[-1].cursor))
        ids = list(connector.reconcile_ids("account"))
        return first, again, ids

    (first, again, ids), shapes = run_recorded(
        "read_account", _seed_accounts, scenario, page_size=2
    )
    records = [r for p in first for r in p.records]
    assert [r.source_id for r in records] == [_id("001", i) for i in range(3)]
    assert [r.deleted for r in records] == [False, False, True]
    assert records[1].usage_score == 51.0 and records[1].contracted_modules == (
        "Billing",
        "Reporting",
    )
    assert records[0].go_live_date == dt.date(2024, 1, 1)
    # the account kind reads Account, then AccountHistory (owner changes): a cursor per object
    assert first[-1].cursor["Account"]["ts"] == "2024-05-01T10:00:02.000Z"
    assert first[-1].cursor["AccountHistory"]["ts"] == "1970-01-01T00:00:00.000Z"  # none yet
    assert [r for p in again for r in p.records] == []
    assert ids[-1].seen_ids == frozenset({_id("001", 0), _id("001", 1)})
    assert shapes == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{V}/sobjects/Account/describe"),
        ("GET", f"{V}/limits/recordCount"),  # 2 live Accounts: REST, no COUNT()
        ("GET", f"{V}/queryAll/"),
        ("GET", f"{V}/queryAll/"),
        ("GET", f"{V}/sobjects/AccountHistory/describe"),  # first read of the owner history
        ("GET", f"{V}/queryAll/"),
        # The incremental run starts a day after the last change, so no row can have committed
        # late behind the cursor: one keyset page right after the stored position, per object.
        ("GET", f"{V}/queryAll/"),
        ("GET", f"{V}/queryAll/"),
        ("GET", f"{V}/query/"),
    ]


SPECS = (
    HubFieldSpec("handover_status", "Handover status", "enum", "", ("onboarding", "at_risk")),
    HubFieldSpec("health_score", "Health score", "number"),
)


def test_provision_write_and_read_back() -> None:
    def seed(sb: Sandbox) -> None:
        _seed_accounts(sb)
        sb.servers[SF].faults.add(
            FaultRule(kind="row_lock", method="PATCH", times=1, params={"ids": [_id("001", 1)]})
        )

    def scenario(connector: SalesforceConnector) -> Any:
        provisioned = connector.ensure_fields(SPECS)
        written = connector.write(
            [
                FieldUpdate(_id("001", 0), {"handover_status": "onboarding", "health_score": "7"}),
                FieldUpdate(_id("001", 1), {"health_score": "8.5"}),
                FieldUpdate(_id("001", 2), {"health_score": "9"}),
            ]
        )
        values = connector.read_hub_fields([_id("001", 0), _id("001", 1)])
        return provisioned, written, values

    (provisioned, written, values), shapes = run_recorded(
        "writeback", seed, scenario, hub_fields=SPECS
    )
    assert [p.action for p in provisioned] == ["created", "created"]
    assert written == [
        WriteResult(_id("001", 0), "ok"),
        WriteResult(_id("001", 1), "ok"),
        WriteResult(_id("001", 2), "skipped", "ENTITY_IS_DELETED: the Account no longer exists"),
    ]
    assert values == {
        _id("001", 0): {"handover_status": "onboarding", "health_score": "7"},
        _id("001", 1): {"handover_status": None, "health_score": "8.5"},
    }
    assert shapes == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{V}/sobjects/Account/describe"),
        ("POST", f"{V}/tooling/sobjects/CustomField"),
        ("POST", f"{V}/tooling/sobjects/CustomField"),
        ("GET", f"{V}/sobjects/Account/describe"),
        ("PATCH", f"{V}/composite/sobjects"),
        ("PATCH", f"{V}/composite/sobjects"),  # the row-locked record again
        ("GET", f"{V}/composite/sobjects/Account"),
    ]


def test_bulk_query_and_bulk_ingest() -> None:
    def scenario(connector: SalesforceConnector) -> Any:
        pages = list(connector.read("account", None))
        connector.ensure_fields(SPECS)
        written = connector.write(
            [FieldUpdate(_id("001", i), {"health_score": str(i)}) for i in range(2)]
        )
        return pages, written

    (pages, written), shapes = run_recorded(
        "bulk",
        _seed_accounts,
        scenario,
        hub_fields=SPECS,
        page_size=1,
        bulk_threshold=1,
        bulk_max_records=1,
        bulk_write_threshold=1,
    )
    # The record count (2 live Accounts > 1) picks Bulk: one job for all 3 rows, no REST page.
    # ... then the (empty) owner history page
    assert [len(p.records) for p in pages] == [1, 1, 1, 0]
    assert pages[-1].cursor["Account"]["id"] == _id("001", 2)
    assert [r.outcome for r in written] == ["ok", "ok"]
    assert shapes[2] == ("GET", f"{V}/limits/recordCount")
    assert shapes.count(("GET", f"{V}/queryAll/")) == 1  # only the (empty) owner history
    assert ("POST", f"{V}/jobs/query") in shapes
    assert sum(p.endswith("/results") for _, p in shapes) == 3
    assert any(m == "PUT" and p.endswith("/batches") for m, p in shapes)
    assert any(p.endswith("/successfulResults") for _, p in shapes)
    assert any(p.endswith("/failedResults") for _, p in shapes)


def test_expired_session_and_quota_error_shapes() -> None:
    def seed(sb: Sandbox) -> None:
        _seed_accounts(sb)
        sb.servers[SF].faults.add(FaultRule(kind="expired_token", path="/queryAll/", nth=1))
        # The injector counts a rule's matches only while no earlier rule fired: this is the
        # third queryAll overall.
        sb.servers[SF].faults.add(FaultRule(kind="quota_exhausted", path="/queryAll/", nth=2))

    def scenario(connector: SalesforceConnector) -> Any:
        got = []
        with pytest.raises(QuotaExhausted):
            for page in connector.read("account", None):
                got.append(page)
        return got, connector.usage()

    (pages, usage), shapes = run_recorded("errors", seed, scenario, page_size=2)
    assert [len(p.records) for p in pages] == [2]
    assert usage.calls_by_object["auth"] == 2
    assert usage.quota_max == 100_000
    assert shapes == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{V}/sobjects/Account/describe"),
        ("GET", f"{V}/limits/recordCount"),
        ("GET", f"{V}/queryAll/"),  # 401 INVALID_SESSION_ID
        ("POST", "/services/oauth2/token"),
        ("GET", f"{V}/queryAll/"),
        ("GET", f"{V}/queryAll/"),  # 403 REQUEST_LIMIT_EXCEEDED
    ]


def test_no_secret_in_any_cassette() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 4, "the contract cassettes are missing; run this module once to record"
    secrets = [
        SANDBOX_SF_CLIENT_SECRET,
        SANDBOX_SF_PASSWORD,
        SANDBOX_SF_SECURITY_TOKEN,
    ]
    token_like = re.compile(r"00D[0-9A-Za-z]{12}![\w.-]{10,}|Bearer \S|Basic \S")
    for path in files:
        text = path.read_text()
        for secret in secrets:
            assert secret not in text, f"{path.name} contains a sandbox secret"
        assert not token_like.search(text), f"{path.name} contains a session token"
        assert "REDACTED" in text or "oauth2/token" not in text
