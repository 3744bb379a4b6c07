"""The HubSpot emulator enforces authentication, scopes and rate limits and renders injected
faults the way HubSpot does: 401 ``INVALID_AUTHENTICATION`` (tokens expire on the sandbox
clock), 403 ``MISSING_SCOPES`` naming the scope, 429 with ``policyName`` and ``Retry-After`` for
the burst, search and daily limits, ``X-HubSpot-RateLimit-*`` headers on every response, OAuth
refresh, and the ``rate_limit``/``server_error``/``expired_token``/``locked``/``partial``
faults; the client's README-style urllib3 ``Retry`` does not retry a POST."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import hubspot
import pytest
import requests
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from urllib3.util.retry import Retry

from sandbox.control import set_config
from sandbox.hubspot.client import API_EXCEPTIONS, sandbox_client
from sandbox.hubspot.oauth import add_refresh_token, register_client
from sandbox.hubspot.testing import seed, seed_owner
from sandbox.runner import Sandbox
from sandbox.state import HS


@pytest.fixture
def client(sb: Sandbox) -> hubspot.Client:
    return sandbox_client(sb.info)


def session(sb: Sandbox, token: str | None = None) -> requests.Session:
    s = requests.Session()
    s.verify = sb.info.ca_bundle
    s.trust_env = False
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def add_fault(sb: Sandbox, **rule: Any) -> None:
    answer = session(sb).post(f"{sb.info.hubspot_url}/__sandbox/faults", json=rule)
    assert answer.status_code == 200, answer.text


def requests_to(sb: Sandbox, since: int, path_part: str) -> list[int]:
    return [r["status"] for r in sb.state.ledger(since, HS) if path_part in r["path"]]


def test_missing_unknown_and_expired_tokens_get_401(sb: Sandbox) -> None:
    url = f"{sb.info.hubspot_url}/crm/v3/objects/companies"
    for s in (session(sb), session(sb, "pat-not-a-token")):
        answer = s.get(url)
        assert answer.status_code == 401
        body = answer.json()
        assert body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]
        assert body["message"].startswith("Authentication credentials not found")
        assert "pat-not-a-token" not in answer.text
    control = session(sb).post(
        f"{sb.info.hubspot_url}/__sandbox/tokens",
        json={
            "crm": HS,
            "token": "short-lived",
            "scopes": ["crm.objects.companies.read"],
            "ttl_seconds": 60,
        },
    )
    assert control.status_code == 200
    assert session(sb, "short-lived").get(url).status_code == 200
    sb.state.advance_clock(61)
    expired = session(sb, "short-lived").get(url)
    assert expired.status_code == 401 and expired.json()["category"] == "INVALID_AUTHENTICATION"


def test_missing_scope_is_403_naming_the_scope(sb: Sandbox) -> None:
    sb.state.add_token("read-only", HS, ["crm.objects.companies.read"])
    client = sandbox_client(sb.info, access_token="read-only")
    assert client.crm.companies.basic_api.get_page().results == []
    with pytest.raises(API_EXCEPTIONS) as denied:
        client.crm.companies.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"name": "x"})
        )
    assert denied.value.status == 403
    body = json.loads(denied.value.body)
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"] == {
        "requiredGranularScopes": ["crm.objects.companies.write"]
    }
    with pytest.raises(API_EXCEPTIONS) as owners:
        client.crm.owners.owners_api.get_page()
    assert "crm.objects.owners.read" in owners.value.body
    with pytest.raises(API_EXCEPTIONS) as assoc:
        client.crm.associations.v4.basic_api.get_page("companies", "1", "contacts")
    assert "crm.objects.contacts.read" in assoc.value.body
    assert sb.state.count(HS, "companies") == 0


def test_burst_limit_429_with_policy_headers_and_recovery(sb: Sandbox) -> None:
    set_config(sb.state, HS, {"burst_limit": 5, "burst_window_seconds": 0.5})
    s = session(sb, sb.info.hs_token)
    url = f"{sb.info.hubspot_url}/crm/v3/objects/companies"
    remaining = []
    for _ in range(5):
        answer = s.get(url)
        assert answer.status_code == 200
        remaining.append(int(answer.headers["X-HubSpot-RateLimit-Remaining"]))
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "500"
        assert "Date" in answer.headers
    assert remaining == [4, 3, 2, 1, 0]
    limited = s.get(url)
    assert limited.status_code == 429
    body = limited.json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert limited.headers["Retry-After"] == "1"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in limited.headers
    time.sleep(0.55)  # the rolling window runs on real time: clients really wait for it
    assert s.get(url).status_code == 200


def test_search_secondly_and_daily_limits(sb: Sandbox) -> None:
    set_config(sb.state, HS, {"search_per_second": 2, "daily_limit": 4})
    s = session(sb, sb.info.hs_token)
    search = f"{sb.info.hubspot_url}/crm/v3/objects/companies/search"
    assert s.post(search, json={}).status_code == 200
    assert s.post(search, json={}).status_code == 200
    secondly = s.post(search, json={})
    assert secondly.status_code == 429 and secondly.json()["policyName"] == "SECONDLY"
    url = f"{sb.info.hubspot_url}/crm/v3/objects/companies"
    assert s.get(url).status_code == 200
    ok = s.get(url)
    assert ok.status_code == 200 and ok.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    daily = s.get(url)
    assert daily.status_code == 429 and daily.json()["policyName"] == "DAILY"
    assert "Retry-After" not in daily.headers  # stop for the day, do not sleep in urllib3
    sb.state.advance_clock(86_400)  # the daily quota follows the sandbox clock
    next_day = s.get(url)
    assert next_day.status_code == 200
    sent = email.utils.parsedate_to_datetime(next_day.headers["Date"])
    assert abs((sent - sb.state.now()).total_seconds()) < 5  # Date is on the sandbox clock too


def test_readme_retry_does_not_retry_post_but_allowed_methods_none_does(sb: Sandbox) -> None:
    set_config(sb.state, HS, {"retry_after_seconds": 0})
    fault = {"kind": "rate_limit", "method": "POST", "path": "/search$", "times": 1}
    add_fault(sb, **fault)
    readme = sandbox_client(sb.info, retry=Retry(total=3, status_forcelist=(429,)))
    head = sb.state.ledger_head()
    with pytest.raises(API_EXCEPTIONS) as limited:
        readme.crm.companies.search_api.do_search(PublicObjectSearchRequest())
    assert limited.value.status == 429
    assert json.loads(limited.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert requests_to(sb, head, "/search") == [429]  # one attempt only
    add_fault(sb, **fault)
    retrying = sandbox_client(
        sb.info,
        retry=Retry(total=3, status_forcelist=(429,), allowed_methods=None, raise_on_status=False),
    )
    head = sb.state.ledger_head()
    assert retrying.crm.companies.search_api.do_search(PublicObjectSearchRequest()).total == 0
    assert requests_to(sb, head, "/search") == [429, 200]


def test_server_error_expired_token_and_locked_faults(sb: Sandbox, client: hubspot.Client) -> None:
    api = client.crm.companies.basic_api
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"kind": "server_error", "params": {"status": 503}}, 503, "INTERNAL_ERROR"),
        ({"kind": "expired_token"}, 401, "INVALID_AUTHENTICATION"),
        ({"kind": "locked"}, 423, "LOCKED"),
        ({"kind": "rate_limit", "params": {"policy": "DAILY"}}, 429, "RATE_LIMITS"),
    ]
    for rule, status, category in cases:
        add_fault(sb, method="GET", path="/crm/v3/objects/companies$", times=1, **rule)
        with pytest.raises(API_EXCEPTIONS) as failed:
            api.get_page()
        assert failed.value.status == status
        assert json.loads(failed.value.body)["category"] == category
        assert failed.value.headers["X-HubSpot-RateLimit-Max"]
    assert api.get_page().results == []


def test_partial_fault_fails_chosen_ids_in_a_207(sb: Sandbox, client: hubspot.Client) -> None:
    a = seed(sb.state, "companies", {"name": "A"})
    b = seed(sb.state, "companies", {"name": "B"})
    add_fault(sb, kind="partial", path="/batch/update$", times=1, params={"ids": [a]})
    result = client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": a, "properties": {"city": "X"}}, {"id": b, "properties": {"city": "X"}}]
        )
    )
    assert [r.id for r in result.results] == [b]
    assert result.errors[0].category == "VALIDATION_ERROR"
    assert result.errors[0].context == {"ids": [a]}
    untouched = sb.state.get(HS, "companies", a)
    assert untouched is not None and "city" not in untouched["data"]
    add_fault(
        sb,
        kind="partial",
        path="/batch/read$",
        times=1,
        params={"ids": [b], "category": "INTERNAL_ERROR"},
    )
    read = client.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": a}, {"id": b}], properties=[], properties_with_history=[]
        )
    )
    assert [r.id for r in read.results] == [a] and read.errors[0].category == "INTERNAL_ERROR"


def test_oauth_refresh_issues_expiring_tokens_with_the_grant_scopes(sb: Sandbox) -> None:
    register_client(sb.state, "app-1", "app-secret")
    add_refresh_token(sb.state, "refresh-1", "app-1", ["crm.objects.companies.read"])
    anonymous = sandbox_client(sb.info, access_token=None)
    tokens = anonymous.oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id="app-1",
        client_secret="app-secret",
        refresh_token="refresh-1",
    )
    assert tokens.expires_in == 1800 and tokens.token_type == "bearer"
    assert tokens.refresh_token == "refresh-1"
    client = sandbox_client(sb.info, access_token=tokens.access_token)
    assert client.crm.companies.basic_api.get_page().results == []
    with pytest.raises(API_EXCEPTIONS) as no_scope:
        client.crm.contacts.basic_api.get_page()
    assert no_scope.value.status == 403
    sb.state.advance_clock(1801)
    with pytest.raises(API_EXCEPTIONS) as expired:
        client.crm.companies.basic_api.get_page()
    assert expired.value.status == 401
    for bad in ({"client_secret": "wrong"}, {"refresh_token": "stolen"}):
        form = {
            "grant_type": "refresh_token",
            "client_id": "app-1",
            "client_secret": "app-secret",
            "refresh_token": "refresh-1",
            **bad,
        }
        answer = session(sb).post(f"{sb.info.hubspot_url}/oauth/v1/token", data=form)
        assert answer.status_code == 400 and answer.json()["status"].startswith("BAD_")


def test_owner_lookup_needs_no_object_scope(sb: Sandbox) -> None:
    seed_owner(sb.state, "a@corp.io", "A", "B", 1)
    sb.state.add_token("owners-only", HS, ["crm.objects.owners.read"])
    client = sandbox_client(sb.info, access_token="owners-only")
    assert len(client.crm.owners.owners_api.get_page().results) == 1
