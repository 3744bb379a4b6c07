"""The Salesforce connector survives what real orgs do and stops cleanly where it must.

Contract checked against the sandbox: an expired session mid-run is renewed once and the run
completes without losing or repeating records; 5xx answers and dropped connections are retried;
the daily quota (403 REQUEST_LIMIT_EXCEEDED) and the hub's budget share end the run with the last
page's checkpoint intact; every login flow works; bad credentials, a bare expired session id and
refused permissions raise errors that name the setting to fix and never contain secrets, SOQL or
response bodies. The record-count call that sizes first syncs is renewed after an expired session
like any call, stops the run on the quota, and otherwise (404 before API 40.0, 5xx after the
retries) leaves the sizing to the first REST page.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.errors import (
    AuthenticationError,
    CrmRequestError,
    MissingScopeError,
    QuotaExhausted,
    TransientError,
)
from connectors.salesforce import (
    ClientCredentialsAuth,
    JwtBearerAuth,
    PasswordAuth,
    RefreshTokenAuth,
    SessionIdAuth,
    auth_from_settings,
)
from sandbox.http import FaultRule
from sandbox.runner import (
    SANDBOX_SF_CLIENT_ID,
    SANDBOX_SF_CLIENT_SECRET,
    SANDBOX_SF_PASSWORD,
    SANDBOX_SF_SECURITY_TOKEN,
    SANDBOX_SF_USERNAME,
    Sandbox,
)
from sandbox.state import SF
from tests.connectors.salesforce_support import (
    Sleeps,
    api_calls,
    drain,
    fresh,
    insert,
    make_config,
    make_connector,
    sandbox,
)

QUERY_ALL = "/services/data/v59.0/queryAll/"
RECORD_COUNT = "/services/data/v59.0/limits/recordCount"
TOKEN = "/services/oauth2/token"


@pytest.fixture(scope="module")
def shared_sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from sandbox(tmp_path_factory.mktemp("sf-resilience"))


@pytest.fixture
def sb(shared_sb: Sandbox) -> Sandbox:
    return fresh(shared_sb)


def _accounts(sb: Sandbox, n: int) -> list[str]:
    start = sb.state.now() - dt.timedelta(hours=1)
    return [
        insert(sb.state, "Account", {"Name": f"Account {i}"}, start + dt.timedelta(seconds=i))
        for i in range(n)
    ]


def _fault(sb: Sandbox, **rule: object) -> None:
    sb.servers[SF].faults.add(FaultRule(**rule))  # type: ignore[arg-type]


def test_expired_session_mid_run_is_renewed_once_and_nothing_is_lost(sb: Sandbox) -> None:
    ids = _accounts(sb, 5)
    _fault(sb, kind="expired_token", path="/queryAll/", nth=2)
    connector = make_connector(sb.info, page_size=2)
    head = sb.state.ledger_head()
    records, _, _ = drain(connector, "account", None)
    assert [r.source_id for r in records] == ids
    calls = api_calls(sb.state, head)
    assert calls == [
        ("POST", TOKEN),
        ("GET", "/services/data/v59.0/sobjects/Account/describe"),
        ("GET", RECORD_COUNT),  # 5 Accounts: REST (no COUNT())
        ("GET", QUERY_ALL),  # the first page
        ("GET", QUERY_ALL),  # 401 INVALID_SESSION_ID
        ("POST", TOKEN),
        ("GET", QUERY_ALL),
        ("GET", QUERY_ALL),
        # the account kind's owner history (AccountHistory): its first read
        ("GET", "/services/data/v59.0/sobjects/AccountHistory/describe"),
        ("GET", QUERY_ALL),
    ]
    assert [r["status"] for r in sb.state.ledger(since=head, crm=SF)][4] == 401
    assert connector.usage().calls == len(calls)
    assert connector.usage().calls_by_object["auth"] == 2


def test_expired_bare_session_id_names_the_setting(sb: Sandbox) -> None:
    _accounts(sb, 1)
    token = _token(sb)
    _fault(sb, kind="expired_token", path="/query")
    connector = make_connector(sb.info, auth=SessionIdAuth(token))
    with pytest.raises(AuthenticationError) as err:
        drain(connector, "account", None)
    assert "CRMHUB_SF_SESSION_ID" in str(err.value)
    assert token not in str(err.value)
    assert token not in repr(connector.config)


def test_server_errors_and_dropped_connections_are_retried(sb: Sandbox) -> None:
    ids = _accounts(sb, 3)
    _fault(sb, kind="server_error", path="/queryAll/", nth=1)
    _fault(sb, kind="reset", path="/sobjects/Account/describe", nth=1)
    sleeps = Sleeps()
    connector = make_connector(sb.info, sleeps)
    head = sb.state.ledger_head()
    records, _, _ = drain(connector, "account", None)
    assert [r.source_id for r in records] == ids
    statuses = [(r["path"].split("?")[0], r["status"]) for r in sb.state.ledger(head, crm=SF)]
    assert statuses.count(("/services/data/v59.0/sobjects/Account/describe", 0)) == 1
    assert statuses.count((QUERY_ALL, 503)) == 1
    assert len(sleeps.calls) == 2  # one backoff per retried failure, none real
    # The dropped request counts too: it may have reached Salesforce's quota.
    assert connector.usage().calls == len(statuses)


def test_persistent_server_errors_give_up_after_the_configured_attempts(sb: Sandbox) -> None:
    _accounts(sb, 1)
    _fault(sb, kind="server_error", path="/queryAll/")
    connector = make_connector(sb.info, retry_attempts=3)
    head = sb.state.ledger_head()
    with pytest.raises(TransientError) as err:
        drain(connector, "account", None)
    assert api_calls(sb.state, head).count(("GET", QUERY_ALL)) == 3
    assert "SERVER_UNAVAILABLE" in str(err.value) and "SELECT" not in str(err.value)


def test_daily_quota_error_stops_with_the_last_checkpoint(sb: Sandbox) -> None:
    ids = _accounts(sb, 5)
    _fault(sb, kind="quota_exhausted", path="/queryAll/", nth=2)
    sleeps = Sleeps()
    connector = make_connector(sb.info, sleeps, page_size=2)
    stored: list[dict] = []
    got: list[str] = []
    with pytest.raises(QuotaExhausted) as err:
        for page in connector.read("account", None):
            got.extend(r.source_id for r in page.records)
            stored.append(page.cursor)
    assert "REQUEST_LIMIT_EXCEEDED" in str(err.value)
    assert got == ids[:2] and len(stored) == 1
    assert sleeps.calls == []  # the quota is not waited for
    rest, _, _ = drain(make_connector(sb.info, page_size=2), "account", stored[-1])
    assert [r.source_id for r in rest] == ids[2:]


def test_budget_share_stops_before_the_org_quota_is_spent(sb: Sandbox) -> None:
    ids = _accounts(sb, 6)
    sb.state.set_json(f"config:{SF}", {"daily_limit": 12})
    connector = make_connector(sb.info, page_size=1, budget_share=0.5)
    head = sb.state.ledger_head()
    pages = []
    with pytest.raises(QuotaExhausted) as err:
        for page in connector.read("account", None):
            pages.append(page)
    # describe, the record count and four pages bring the org to 6 of 12 = the hub's share.
    assert len(pages) == 4
    assert len(api_calls(sb.state, head)) == 1 + 6
    assert (connector.usage().quota_used, connector.usage().quota_max) == (6, 12)
    assert "6 of 12" in str(err.value) and "budget_share" in str(err.value)
    # Next day (a bigger allowance), the next run finishes from the checkpoint.
    sb.state.set_json(f"config:{SF}", {"daily_limit": 100})
    rest, _, _ = drain(
        make_connector(sb.info, page_size=1, budget_share=1.0), "account", pages[-1].cursor
    )
    assert [r.source_id for p in pages for r in p.records] + [r.source_id for r in rest] == ids


def test_bad_client_secret_is_an_authentication_error_without_the_secret(sb: Sandbox) -> None:
    secret = "not-the-secret-0123456789"
    connector = make_connector(sb.info, auth=ClientCredentialsAuth(SANDBOX_SF_CLIENT_ID, secret))
    with pytest.raises(AuthenticationError) as err:
        drain(connector, "owner", None)
    text = str(err.value)
    assert text.startswith("Salesforce rejected the OAuth client credentials (invalid_client).")
    assert "CRMHUB_SF_CLIENT_ID" in text and "CRMHUB_SF_CLIENT_SECRET" in text
    assert secret not in text and secret not in repr(connector.config)
    assert err.value.__cause__ is None


def test_bad_password_names_the_password_settings(sb: Sandbox) -> None:
    auth = PasswordAuth(
        SANDBOX_SF_USERNAME, "wrong-pass", SANDBOX_SF_CLIENT_ID, SANDBOX_SF_CLIENT_SECRET
    )
    with pytest.raises(AuthenticationError) as err:
        drain(make_connector(sb.info, auth=auth), "owner", None)
    assert "CRMHUB_SF_PASSWORD" in str(err.value) and "wrong-pass" not in str(err.value)


def _token(sb: Sandbox) -> str:
    s = requests.Session()
    s.verify = sb.info.ca_bundle
    s.trust_env = False
    response = s.post(
        f"{sb.info.salesforce_url}{TOKEN}",
        data={"grant_type": "client_credentials"},
        auth=(SANDBOX_SF_CLIENT_ID, SANDBOX_SF_CLIENT_SECRET),
    )
    return str(response.json()["access_token"])


def _refresh_token(sb: Sandbox) -> str:
    s = requests.Session()
    s.verify = sb.info.ca_bundle
    s.trust_env = False
    response = s.post(
        f"{sb.info.salesforce_url}{TOKEN}",
        data={
            "grant_type": "password",
            "client_id": SANDBOX_SF_CLIENT_ID,
            "client_secret": SANDBOX_SF_CLIENT_SECRET,
            "username": SANDBOX_SF_USERNAME,
            "password": SANDBOX_SF_PASSWORD + SANDBOX_SF_SECURITY_TOKEN,
        },
    )
    return str(response.json()["refresh_token"])


def _key_file(tmp_path: Path) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwt.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


@pytest.mark.parametrize("flow", ["client_credentials", "password", "refresh_token", "jwt"])
def test_every_login_flow_reads(sb: Sandbox, tmp_path: Path, flow: str) -> None:
    user = insert(sb.state, "User", {"Username": "x@y.z", "LastName": "X"}, sb.state.now())
    auth = {
        "client_credentials": lambda: ClientCredentialsAuth(
            SANDBOX_SF_CLIENT_ID, SANDBOX_SF_CLIENT_SECRET
        ),
        "password": lambda: PasswordAuth(
            SANDBOX_SF_USERNAME,
            SANDBOX_SF_PASSWORD,
            SANDBOX_SF_CLIENT_ID,
            SANDBOX_SF_CLIENT_SECRET,
            SANDBOX_SF_SECURITY_TOKEN,
        ),
        "refresh_token": lambda: RefreshTokenAuth(
            SANDBOX_SF_CLIENT_ID, _refresh_token(sb), SANDBOX_SF_CLIENT_SECRET
        ),
        "jwt": lambda: JwtBearerAuth(
            SANDBOX_SF_CLIENT_ID, SANDBOX_SF_USERNAME, _key_file(tmp_path)
        ),
    }[flow]()
    records, _, _ = drain(make_connector(sb.info, auth=auth), "owner", None)
    assert [r.source_id for r in records] == [user]


def test_auth_from_settings_picks_the_flow_and_names_missing_settings() -> None:
    assert isinstance(auth_from_settings(client_id="a", client_secret="b"), ClientCredentialsAuth)
    assert isinstance(
        auth_from_settings(client_id="a", client_secret="b", refresh_token="r"), RefreshTokenAuth
    )
    assert isinstance(
        auth_from_settings(client_id="a", username="u", jwt_key_file="k"), JwtBearerAuth
    )
    assert isinstance(
        auth_from_settings(client_id="a", client_secret="b", username="u", password="p"),
        PasswordAuth,
    )
    assert isinstance(auth_from_settings(session_id="s"), SessionIdAuth)
    with pytest.raises(AuthenticationError, match="CRMHUB_SF_CLIENT_SECRET"):
        auth_from_settings(username="u", password="p")
    with pytest.raises(AuthenticationError, match="No Salesforce credentials"):
        auth_from_settings()


def test_refused_permission_is_a_missing_scope_error(sb: Sandbox) -> None:
    body = [{"errorCode": "INSUFFICIENT_ACCESS", "message": "insufficient access rights"}]
    _fault(sb, kind="status", path="/describe", params={"status": 403, "body": body})
    with pytest.raises(MissingScopeError) as err:
        drain(make_connector(sb.info), "account", None)
    assert "API Enabled" in str(err.value)


def test_rejected_request_text_holds_no_soql_url_or_body(sb: Sandbox) -> None:
    _accounts(sb, 1)
    body = [{"errorCode": "MALFORMED_QUERY", "message": "unexpected token: 'Name' secret-ish"}]
    _fault(sb, kind="status", path="/queryAll/", params={"status": 400, "body": body})
    with pytest.raises(CrmRequestError) as err:
        drain(make_connector(sb.info), "account", None)
    text = str(err.value)
    assert "MALFORMED_QUERY" in text
    for leak in ("SELECT", "secret-ish", "https://", "q="):
        assert leak not in text
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_config_repr_hides_every_secret(sb: Sandbox) -> None:
    config = make_config(
        sb.info,
        auth=PasswordAuth("u", "pw-123456", "cid", "csecret-123456", "stoken-123456"),
    )
    for secret in ("pw-123456", "csecret-123456", "stoken-123456"):
        assert secret not in repr(config)


# ---- the record-count call that sizes first syncs ----------------------------------------------


def test_quota_on_the_record_count_stops_the_run_instead_of_falling_back(sb: Sandbox) -> None:
    _accounts(sb, 3)
    _fault(sb, kind="quota_exhausted", path="/limits/recordCount", times=1)
    connector = make_connector(sb.info)
    head = sb.state.ledger_head()
    with pytest.raises(QuotaExhausted):
        drain(connector, "account", None)
    assert [p for _, p in api_calls(sb.state, head)][-1] == RECORD_COUNT  # no query after it


def test_expired_session_on_the_record_count_is_renewed_and_the_count_used(sb: Sandbox) -> None:
    ids = _accounts(sb, 6)
    _fault(sb, kind="expired_token", path="/limits/recordCount", nth=1)
    connector = make_connector(sb.info, bulk_threshold=5, bulk_max_records=10)
    head = sb.state.ledger_head()
    records, _, _ = drain(connector, "account", None)
    assert [r.source_id for r in records] == ids
    calls = [(re.sub(r"/jobs/query/\w+", "/jobs/query/JOB", p), s) for p, s in _statuses(sb, head)]
    assert calls == [
        (TOKEN, 200),
        ("/services/data/v59.0/sobjects/Account/describe", 200),
        (RECORD_COUNT, 401),
        (TOKEN, 200),
        (RECORD_COUNT, 200),  # 6 Accounts > 5: Bulk, no sizing page
        ("/services/data/v59.0/jobs/query", 200),
        ("/services/data/v59.0/jobs/query/JOB", 200),
        ("/services/data/v59.0/jobs/query/JOB/results", 200),
        ("/services/data/v59.0/sobjects/AccountHistory/describe", 200),
        (QUERY_ALL, 200),
    ]


def test_record_count_missing_before_api_40_falls_back_to_the_sizing_page(sb: Sandbox) -> None:
    ids = _accounts(sb, 6)
    connector = make_connector(sb.info, api_version="39.0", bulk_threshold=5, page_size=2)
    head = sb.state.ledger_head()
    records, _, _ = drain(connector, "account", None)
    assert sorted(r.source_id for r in records) == sorted(ids) and len(records) == 6
    statuses = [(p.replace("v39.0", "vX"), s) for p, s in _statuses(sb, head)][:5]
    assert statuses == [
        (TOKEN, 200),
        ("/services/data/vX/sobjects/Account/describe", 200),
        ("/services/data/vX/limits/recordCount", 404),
        ("/services/data/vX/queryAll/", 200),  # totalSize 6 > 5: Bulk after this page
        ("/services/data/vX/jobs/query", 200),
    ]


def test_persistent_server_errors_on_the_record_count_fall_back_after_the_retries(
    sb: Sandbox,
) -> None:
    ids = _accounts(sb, 3)
    _fault(sb, kind="server_error", path="/limits/recordCount")
    connector = make_connector(sb.info, retry_attempts=3)
    head = sb.state.ledger_head()
    records, _, _ = drain(connector, "account", None)
    assert [r.source_id for r in records] == ids
    assert _statuses(sb, head)[2:] == [(RECORD_COUNT, 503)] * 3 + [
        (QUERY_ALL, 200),
        ("/services/data/v59.0/sobjects/AccountHistory/describe", 200),
        (QUERY_ALL, 200),
    ]
    assert connector.usage().calls_by_object["recordCount"] == 3


def _statuses(sb: Sandbox, head: int) -> list[tuple[str, int]]:
    return [(r["path"].split("?")[0], int(r["status"])) for r in sb.state.ledger(head, crm=SF)]
