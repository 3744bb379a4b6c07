"""Salesforce emulator authentication and quota, as simple-salesforce and the hub meet them:
OAuth client-credentials (Basic or form), password and refresh-token grants, the JWT bearer
grant, the SOAP partner login (including the client's automatic re-login on a 401
``INVALID_SESSION_ID`` JSON array), token lifetime on the sandbox clock, and the daily API quota
(``Sforce-Limit-Info``, 403 ``REQUEST_LIMIT_EXCEEDED``, reset on the next sandbox day)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)
from simple_salesforce.login import token_login

from sandbox.control import set_config
from sandbox.runner import (
    SANDBOX_SF_PASSWORD,
    SANDBOX_SF_SECURITY_TOKEN,
    SANDBOX_SF_USERNAME,
    Sandbox,
)
from sandbox.salesforce import testing as t
from sandbox.state import SF


def _token_url(sb: Sandbox) -> str:
    return f"{sb.info.salesforce_url}/services/oauth2/token"


def test_client_credentials_basic_and_form(sb: Sandbox) -> None:
    s = t.sandbox_session(sb.info)
    basic = base64.b64encode(f"{sb.info.sf_client_id}:{sb.info.sf_client_secret}".encode())
    r = s.post(
        _token_url(sb),
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic.decode()}"},
    )
    body = r.json()
    assert r.status_code == 200
    assert body["token_type"] == "Bearer" and body["instance_url"] == sb.info.salesforce_url
    assert set(body) >= {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], session=s)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    r = s.post(
        _token_url(sb),
        data={
            "grant_type": "client_credentials",
            "client_id": sb.info.sf_client_id,
            "client_secret": "wrong",
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    assert "wrong" not in r.text
    r = s.post(_token_url(sb), data={"grant_type": "client_credentials", "client_id": "nope"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = s.post(_token_url(sb), data={"grant_type": "magic"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_password_grant_and_refresh_token_with_the_clients_token_login(sb: Sandbox) -> None:
    s = t.sandbox_session(sb.info)
    data = {
        "grant_type": "password",
        "client_id": sb.info.sf_client_id,
        "client_secret": sb.info.sf_client_secret,
        "username": SANDBOX_SF_USERNAME,
        "password": SANDBOX_SF_PASSWORD + SANDBOX_SF_SECURITY_TOKEN,
    }
    session_id, instance = token_login(_token_url(sb), data, "login", "x", None, None, s)
    assert instance == sb.info.salesforce_url.removeprefix("https://")
    raw = s.post(_token_url(sb), data=data).json()
    refreshed = s.post(
        _token_url(sb),
        data={
            "grant_type": "refresh_token",
            "refresh_token": raw["refresh_token"],
            "client_id": sb.info.sf_client_id,
            "client_secret": sb.info.sf_client_secret,
        },
    )
    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != session_id
    bad = dict(data, password=SANDBOX_SF_PASSWORD)  # security token missing
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        token_login(_token_url(sb), bad, "login", "x", None, None, s)
    assert exc.value.code == "invalid_grant"
    r = s.post(
        _token_url(sb),
        data={
            "grant_type": "refresh_token",
            "refresh_token": "nope",
            "client_id": sb.info.sf_client_id,
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def _rsa_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def test_jwt_bearer_grant(sb: Sandbox) -> None:
    private, public = _rsa_pair()
    other_private, _ = _rsa_pair()
    s = t.sandbox_session(sb.info)

    def assertion(key: bytes, sub: str = SANDBOX_SF_USERNAME, minutes: int = 3) -> str:
        exp = sb.state.now() + dt.timedelta(minutes=minutes)
        claims = {
            "iss": sb.info.sf_client_id,
            "sub": sub,
            "aud": "https://login.salesforce.com",
            "exp": f"{exp.timestamp():.0f}",  # simple-salesforce sends a string
        }
        return jwt.encode(claims, key, algorithm="RS256")

    def grant(a: str) -> requests.Response:
        return s.post(
            _token_url(sb),
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": a},
        )

    assert grant(assertion(private)).status_code == 200
    assert grant(assertion(private, sub="stranger@x")).json()["error"] == "invalid_grant"
    assert grant(assertion(private, minutes=-5)).json()["error"] == "invalid_grant"
    sb.state.set_json("config:salesforce_jwt_keys", {sb.info.sf_client_id: public.decode()})
    assert grant(assertion(private)).status_code == 200
    assert grant(assertion(other_private)).json()["error"] == "invalid_grant"


class _ToSandbox(HTTPAdapter):
    """Send ``https://login.salesforce.com`` to the sandbox: the client's SOAP login, unchanged."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        assert request.url is not None
        request.url = request.url.replace("https://login.salesforce.com", self.base)
        return super().send(request, stream, timeout, verify, cert, proxies)


def test_soap_login_and_automatic_relogin_after_expiry(sb: Sandbox) -> None:
    s = t.sandbox_session(sb.info)
    s.mount("https://login.salesforce.com", _ToSandbox(sb.info.salesforce_url))
    sf = Salesforce(
        username=SANDBOX_SF_USERNAME,
        password=SANDBOX_SF_PASSWORD,
        security_token=SANDBOX_SF_SECURITY_TOKEN,
        session=s,
    )
    assert sf.sf_instance == sb.info.salesforce_url.removeprefix("https://")
    first = sf.session_id
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    sb.state.expire_tokens(SF)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0  # re-login + retry
    assert sf.session_id != first
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        Salesforce(
            username=SANDBOX_SF_USERNAME,
            password="wrong",
            security_token=SANDBOX_SF_SECURITY_TOKEN,
            session=s,
        )
    assert exc.value.code == "INVALID_LOGIN"


def test_session_expires_on_the_sandbox_clock(sb: Sandbox) -> None:
    set_config(sb.state, SF, {"token_ttl_seconds": 60})
    sf = t.sandbox_client(sb.info)
    sf.query("SELECT Id FROM Account")
    sb.state.advance_clock(61)
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.query("SELECT Id FROM Account")
    assert t.error_body(exc.value) == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    s = t.sandbox_session(sb.info)
    for auth in ("Bearer nope", "Basic abc", None):
        headers = {"Authorization": auth} if auth else {}
        r = s.get(f"{sb.info.salesforce_url}/services/data/v59.0/limits/", headers=headers)
        assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    hs = s.get(
        f"{sb.info.salesforce_url}/services/data/v59.0/limits/",
        headers={"Authorization": f"Bearer {sb.info.hs_token}"},  # a HubSpot token
    )
    assert hs.status_code == 401


def test_daily_quota_403_and_reset_next_day(sb: Sandbox) -> None:
    set_config(sb.state, SF, {"daily_limit": 3, "token_ttl_seconds": 3 * 86400})
    sf = t.sandbox_client(sb.info)
    for i in range(3):
        sf.query("SELECT Id FROM Account")
        assert sf.api_usage["api-usage"].used == i + 1
        assert sf.api_usage["api-usage"].total == 3
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Account")
    assert exc.value.status == 403
    assert t.error_body(exc.value) == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    sb.state.advance_clock(86400)
    assert sf.limits()["DailyApiRequests"] == {"Max": 3, "Remaining": 2}
