"""Salesforce authentication: OAuth token endpoint, SOAP partner login, session checks.

Why emulate the login flows at all: the hub authenticates with client credentials (or a JWT /
username-password in some orgs) and must handle their error bodies and session expiry. What the
sandbox accepts:

- ``POST /services/oauth2/token`` (form body):
  ``client_credentials`` (HTTP Basic or ``client_id``/``client_secret`` form fields, checked
  against ``config:salesforce_clients`` id -> secret; runs as the first configured user);
  ``password`` (``username`` + ``password`` = password followed by the security token, checked
  against ``config:salesforce_users``; also needs a known client; issues a refresh token);
  ``refresh_token``; and the JWT bearer grant (``assertion`` whose ``iss`` is a known client id,
  ``sub`` a known user, ``exp`` in the future on the sandbox clock). The JWT signature is checked
  only when ``config:salesforce_jwt_keys`` maps the client id to a PEM public key (real orgs always
  check it against the connected app's certificate; the sandbox leaves it optional so tests can
  sign with a throwaway key).
- ``POST /services/Soap/u/{ver}``: the partner ``login`` call simple-salesforce makes.

Access tokens live ``token_ttl_seconds`` on the sandbox clock; an unknown or expired bearer gets
401 ``[{"errorCode": "INVALID_SESSION_ID"}]`` (a JSON array: simple-salesforce reads ``[0]``).
Secrets are compared in constant time and never echoed back.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import urllib.parse
import zlib
from typing import Any
from xml.sax.saxutils import escape

from sandbox.config import get_config
from sandbox.formats import sf_make_id
from sandbox.http import Request, Response
from sandbox.state import SF, SandboxState

ORG_ID = sf_make_id("00D", 4_2000, pod="5g")
_REFRESH = "salesforce-refresh"


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response(status, {"error": error, "error_description": description})


def invalid_session() -> Response:
    return Response(
        401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    )


def _eq(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def user_id_for(state: SandboxState, username: str) -> str:
    """The id of the User record with this username, else a stable synthetic one."""
    rows = state.execute(
        f"SELECT id FROM records WHERE crm = '{SF}' AND object = 'User' AND "
        "json_extract(data, '$.Username') = ? LIMIT 1",
        (username,),
    )
    if rows:
        return str(rows[0][0])
    return sf_make_id("005", zlib.crc32(username.encode()) % 10**9, pod="0U")


def session_user(state: SandboxState, token: str) -> str | None:
    """The username an access token was issued to (None for tokens added by the control API)."""
    info = state.token(token)
    if info is None:
        return None
    for scope in info["scopes"]:
        if scope.startswith("user:"):
            return scope[5:]
    return None


def check_bearer(state: SandboxState, request: Request) -> str | None:
    """The valid Salesforce access token of ``request``, or None."""
    return check_token(state, request.bearer())


def check_token(state: SandboxState, token: str | None) -> str | None:
    """``token`` if it is a live Salesforce access token (REST bearer or Bulk 1.0 session)."""
    if not token:
        return None
    info = state.token(token)
    if info is None or info["crm"] != SF:
        return None
    expires = info["expires_at"]
    if expires is not None and expires <= state.now():
        return None
    return token


class Auth:
    """The login endpoints of one emulated org."""

    def __init__(self, state: SandboxState, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    # ---- helpers --------------------------------------------------------------------------
    def _clients(self) -> dict[str, str]:
        return dict(self.state.get_json("config:salesforce_clients", {}))

    def _users(self) -> dict[str, str]:
        return dict(self.state.get_json("config:salesforce_users", {}))

    def _issue(self, username: str, client_id: str, *, refresh: bool = False) -> dict[str, Any]:
        ttl = float(get_config(self.state, SF).get("token_ttl_seconds", 7200))
        now = self.state.now()
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(40)}"
        scopes = ["api", "web", f"user:{username}", f"client:{client_id}"]
        if refresh:
            scopes.append("refresh_token")
        self.state.add_token(token, SF, scopes, now + dt.timedelta(seconds=ttl))
        uid = user_id_for(self.state, username)
        identity = f"{self.base_url}/id/{ORG_ID}/{uid}"
        issued_at = str(int(now.timestamp() * 1000))
        secret = self._clients().get(client_id, "")
        signature = base64.b64encode(
            hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        body: dict[str, Any] = {
            "access_token": token,
            "instance_url": self.base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
            "scope": " ".join(s for s in scopes if ":" not in s),
        }
        if refresh:
            rt = f"5Aep{secrets.token_urlsafe(40)}"
            self.state.add_token(rt, _REFRESH, [f"user:{username}", f"client:{client_id}"])
            body["refresh_token"] = rt
        return body

    def _client_from(self, request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                raw = base64.b64decode(auth[6:].strip()).decode()
                cid, _, secret = raw.partition(":")
                return urllib.parse.unquote(cid), urllib.parse.unquote(secret)
            except (ValueError, UnicodeDecodeError):
                return None, None
        return form.get("client_id"), form.get("client_secret")

    # ---- OAuth ------------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        try:
            parsed = urllib.parse.parse_qs(request.body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            parsed = {}
        form = {k: v[0] for k, v in parsed.items()}
        # parameters may also come in the query string
        for k, v in request.query.items():
            form.setdefault(k, v[0])
        grant = form.get("grant_type")
        clients = self._clients()
        users = self._users()
        if grant == "client_credentials":
            cid, secret = self._client_from(request, form)
            if not cid or cid not in clients:
                return _oauth_error("invalid_client", "client identifier invalid")
            if not _eq(secret, clients[cid]):
                return _oauth_error("invalid_client", "invalid client credentials")
            run_as = str(get_config(self.state, SF).get("client_credentials_user") or "") or next(
                iter(users), "integration@crmhub-sandbox.example"
            )
            return Response(200, self._issue(run_as, cid))
        if grant == "password":
            cid, secret = self._client_from(request, form)
            if not cid or cid not in clients:
                return _oauth_error("invalid_client", "client identifier invalid")
            if not _eq(secret, clients[cid]):
                return _oauth_error("invalid_client", "invalid client credentials")
            username = form.get("username", "")
            if username not in users or not _eq(form.get("password"), users[username]):
                return _oauth_error("invalid_grant", "authentication failure")
            return Response(200, self._issue(username, cid, refresh=True))
        if grant == "refresh_token":
            cid, secret = self._client_from(request, form)
            if not cid or cid not in clients:
                return _oauth_error("invalid_client", "client identifier invalid")
            if secret is not None and not _eq(secret, clients[cid]):
                return _oauth_error("invalid_client", "invalid client credentials")
            info = self.state.token(form.get("refresh_token", ""))
            if info is None or info["crm"] != _REFRESH or f"client:{cid}" not in info["scopes"]:
                return _oauth_error("invalid_grant", "expired access/refresh token")
            user = next((s[5:] for s in info["scopes"] if s.startswith("user:")), "")
            return Response(200, self._issue(user, cid))
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt(form.get("assertion", ""), clients, users)
        return _oauth_error("unsupported_grant_type", "grant type not supported")

    def _jwt(self, assertion: str, clients: dict[str, str], users: dict[str, str]) -> Response:
        import jwt  # pyjwt; imported lazily, only this flow needs it

        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "invalid assertion")
        cid = str(claims.get("iss", ""))
        if cid not in clients:
            return _oauth_error("invalid_client", "client identifier invalid")
        keys = self.state.get_json("config:salesforce_jwt_keys", {})
        if cid in keys:
            try:
                jwt.decode(
                    assertion,
                    keys[cid],
                    algorithms=["RS256"],
                    options={"verify_aud": False, "verify_exp": False},
                )
            except jwt.PyJWTError:
                return _oauth_error("invalid_grant", "invalid assertion signature")
        sub = str(claims.get("sub", ""))
        if sub not in users:
            return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        try:
            exp = float(claims.get("exp", 0))
        except (TypeError, ValueError):
            exp = 0
        if exp <= self.state.now().timestamp():
            return _oauth_error("invalid_grant", "expired authorization code")
        return Response(200, self._issue(sub, cid))

    def revoke(self, request: Request) -> Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(request.body.decode()).items()}
        token = form.get("token") or request.arg("token") or ""
        if self.state.token(token) is not None:
            self.state.execute(
                "UPDATE tokens SET expires_at = ? WHERE token = ?",
                ("1970-01-01T00:00:00.000Z", token),
            )
        return Response(200, None)

    # ---- SOAP -------------------------------------------------------------------------------
    def soap_login(self, request: Request, ver: str) -> Response:
        text = request.body.decode("utf-8", "replace")
        user_m = re.search(r"<(?:\w+:)?username>(.*?)</(?:\w+:)?username>", text, re.S)
        pass_m = re.search(r"<(?:\w+:)?password>(.*?)</(?:\w+:)?password>", text, re.S)
        users = self._users()
        from xml.sax.saxutils import unescape

        username = unescape(user_m.group(1)) if user_m else ""
        password = unescape(pass_m.group(1)) if pass_m else ""
        if username not in users or not _eq(password, users[username]):
            return _soap_fault(
                "INVALID_LOGIN",
                "Invalid username, password, security token; or user locked out.",
            )
        body = self._issue(username, "soap")
        uid = user_id_for(self.state, username)
        server = f"{self.base_url}/services/Soap/u/{ver}/{ORG_ID[:15]}"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{self.base_url}/services/Soap/m/{ver}/{ORG_ID[:15]}"
            "</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{escape(server)}</serverUrl>"
            f"<sessionId>{escape(body['access_token'])}</sessionId>"
            f"<userId>{uid}</userId>"
            "<userInfo>"
            f"<organizationId>{ORG_ID}</organizationId>"
            "<organizationName>crmhub sandbox</organizationName>"
            f"<userEmail>{escape(username)}</userEmail>"
            f"<userId>{uid}</userId><userName>{escape(username)}</userName>"
            "<userTimeZone>GMT</userTimeZone>"
            "</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, xml, content_type="text/xml;charset=UTF-8")


def _soap_fault(code: str, message: str) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, xml, content_type="text/xml;charset=UTF-8")
