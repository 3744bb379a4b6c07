"""Logging in to Salesforce through the OAuth 2.0 token endpoint, and logging in again.

Why our own token request instead of simple-salesforce's login: the library builds its login URL
as ``https://{domain}.salesforce.com`` and cannot reach a configurable token endpoint (a My Domain
URL, a proxy, the sandbox). So the hub obtains the access token itself and hands it to an
unmodified ``simple_salesforce.Salesforce(session_id=...)``; when Salesforce later answers 401
``INVALID_SESSION_ID`` the connector calls :meth:`Authenticator.login` again.

Error texts name the failing flow and the settings to check, never a secret or a response body.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import requests

from connectors.diagnostics import permanent_network_failure
from connectors.errors import AuthenticationError, TransientError
from connectors.salesforce.config import (
    ClientCredentialsAuth,
    JwtBearerAuth,
    PasswordAuth,
    RefreshTokenAuth,
    SalesforceConfig,
    SessionIdAuth,
)

CRM = "salesforce"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Lifetime of a JWT bearer assertion; Salesforce accepts at most 3 minutes.
JWT_LIFETIME_SECONDS = 170


@dataclass(frozen=True)
class Token:
    """A usable session: the access token (secret) and the org's instance URL."""

    access_token: str = field(repr=False)
    instance_url: str | None = None


_FIX = {
    ClientCredentialsAuth: (
        "OAuth client credentials",
        "Check CRMHUB_SF_CLIENT_ID and CRMHUB_SF_CLIENT_SECRET, and that the connected app "
        "enables the client credentials flow with a run-as user.",
    ),
    RefreshTokenAuth: (
        "OAuth refresh token",
        "The token may be revoked or expired: re-authorise the connected app and update "
        "CRMHUB_SF_REFRESH_TOKEN (and check CRMHUB_SF_CLIENT_ID / CRMHUB_SF_CLIENT_SECRET).",
    ),
    JwtBearerAuth: (
        "JWT bearer assertion",
        "Check CRMHUB_SF_CLIENT_ID, CRMHUB_SF_USERNAME and CRMHUB_SF_JWT_KEY_FILE, that the "
        "connected app holds the key's certificate and that the user is pre-authorised for it.",
    ),
    PasswordAuth: (
        "username-password login",
        "Check CRMHUB_SF_USERNAME, CRMHUB_SF_PASSWORD and CRMHUB_SF_SECURITY_TOKEN (a password "
        "change resets the security token), and CRMHUB_SF_CLIENT_ID / CRMHUB_SF_CLIENT_SECRET.",
    ),
}


class Authenticator:
    """Obtains access tokens for one configured credential set."""

    def __init__(self, config: SalesforceConfig, session: requests.Session) -> None:
        self._config = config
        self._session = session

    @property
    def can_renew(self) -> bool:
        """False for a bare session id: when it expires only a new credential helps."""
        return not isinstance(self._config.auth, SessionIdAuth)

    def login(self) -> Token:
        """One token request (none for a bare session id)."""
        auth = self._config.auth
        if isinstance(auth, SessionIdAuth):
            return Token(auth.session_id, None)
        basic: tuple[str, str] | None = None
        if isinstance(auth, ClientCredentialsAuth):
            form = {"grant_type": "client_credentials"}
            basic = (auth.client_id, auth.client_secret)
        elif isinstance(auth, RefreshTokenAuth):
            form = {
                "grant_type": "refresh_token",
                "client_id": auth.client_id,
                "refresh_token": auth.refresh_token,
            }
            if auth.client_secret:
                form["client_secret"] = auth.client_secret
        elif isinstance(auth, JwtBearerAuth):
            form = {"grant_type": JWT_GRANT, "assertion": self._assertion(auth)}
        else:
            form = {
                "grant_type": "password",
                "client_id": auth.client_id,
                "client_secret": auth.client_secret,
                "username": auth.username,
                "password": auth.password + auth.security_token,
            }
        try:
            response = self._session.post(
                self._config.token_url,
                data=form,
                auth=basic,
                headers={"Accept": "application/json"},
                timeout=self._config.timeout_seconds,
            )
        except requests.RequestException as exc:
            permanent = permanent_network_failure(
                exc,
                crm=CRM,
                label="Salesforce login",
                url=self._config.token_url,
                variable="CRMHUB_SF_TOKEN_URL",
                ca_variable="CRMHUB_SF_CA_BUNDLE",
            )
            if permanent is not None:
                raise permanent from None
            raise TransientError(
                f"Could not reach the Salesforce token endpoint ({type(exc).__name__}); check "
                "CRMHUB_SF_TOKEN_URL and the network/proxy settings.",
                crm=CRM,
            ) from None
        return self._token_from(response)

    def expired_session_error(self) -> AuthenticationError:
        """The error for a 401 that a new login did not (or could not) cure."""
        if isinstance(self._config.auth, SessionIdAuth):
            return AuthenticationError(
                "The Salesforce session id (CRMHUB_SF_SESSION_ID) has expired or is invalid, and "
                "a bare session id cannot be renewed. Configure OAuth credentials instead "
                "(CRMHUB_SF_CLIENT_ID and CRMHUB_SF_CLIENT_SECRET).",
                crm=CRM,
            )
        flow, fix = _FIX[type(self._config.auth)]
        return AuthenticationError(
            f"Salesforce rejected a freshly issued access token ({flow}) with INVALID_SESSION_ID. "
            f"The integration user may be frozen or lack API access. {fix}",
            crm=CRM,
        )

    # ------------------------------------------------------------------------------------
    def _assertion(self, auth: JwtBearerAuth) -> str:
        try:
            key = Path(auth.private_key_file).read_text()
        except OSError as exc:
            raise AuthenticationError(
                f"Cannot read the JWT private key file ({type(exc).__name__}); check "
                "CRMHUB_SF_JWT_KEY_FILE points at a readable PEM file.",
                crm=CRM,
            ) from None
        claims = {
            "iss": auth.client_id,
            "sub": auth.username,
            "aud": auth.audience or self._config.login_url,
            # The assertion's expiry is the one place the local clock is right: it is what
            # Salesforce checks the signature's freshness against.
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        try:
            return jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthenticationError(
                f"The JWT private key could not sign the assertion ({type(exc).__name__}); "
                "CRMHUB_SF_JWT_KEY_FILE must hold an RSA private key in PEM form.",
                crm=CRM,
            ) from None

    def _token_from(self, response: requests.Response) -> Token:
        status = response.status_code
        payload: dict[str, object] = {}
        try:
            parsed = response.json()
            if isinstance(parsed, dict):
                payload = parsed
        except ValueError:
            payload = {}
        if status == 200 and isinstance(payload.get("access_token"), str):
            instance = payload.get("instance_url")
            return Token(str(payload["access_token"]), str(instance) if instance else None)
        if status >= 500 or status == 429:
            raise TransientError(
                f"The Salesforce token endpoint answered HTTP {status}.",
                crm=CRM,
            )
        code = str(payload.get("error") or f"HTTP {status}")
        if not re.fullmatch(r"[A-Za-z_ 0-9]{1,64}", code):
            code = f"HTTP {status}"
        flow, fix = _FIX[type(self._config.auth)]
        raise AuthenticationError(f"Salesforce rejected the {flow} ({code}). {fix}", crm=CRM)
