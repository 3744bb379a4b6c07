"""OAuth 2.0 refresh for the emulated portal: ``POST /oauth/v1/token``.

Why: a public HubSpot app's access token lives 30 minutes, so a long sync must refresh it from
``expires_in`` ahead of expiry (a 401 alone is "not a valid indicator that a new token is
needed"). The emulator issues tokens that expire on the *sandbox* clock, so a test advances the
clock by 1,800 s instead of waiting half an hour.

Registered apps live in ``state.get_json("config:hubspot_clients")`` (client id → secret);
refresh tokens in ``config:hubspot_refresh_tokens`` (token → ``{client_id, scopes}``). Both use
the ``config:`` prefix so that a sandbox reset (which empties data) keeps the credentials, as it
keeps access tokens.
"""

from __future__ import annotations

import datetime as dt
import secrets
import urllib.parse
from collections.abc import Iterable
from typing import Any

from sandbox.http import Request, Response
from sandbox.hubspot.common import correlation_id
from sandbox.state import HS, SandboxState

ACCESS_TOKEN_TTL = 1800
CLIENTS_KEY = "config:hubspot_clients"
REFRESH_KEY = "config:hubspot_refresh_tokens"


def register_client(state: SandboxState, client_id: str, client_secret: str) -> None:
    """Register an OAuth app (tests and the CLI's sandbox setup)."""
    clients = state.get_json(CLIENTS_KEY, {})
    clients[client_id] = client_secret
    state.set_json(CLIENTS_KEY, clients)


def add_refresh_token(
    state: SandboxState, refresh_token: str, client_id: str, scopes: Iterable[str]
) -> None:
    """Grant a refresh token for an app, as the authorisation-code flow would."""
    tokens = state.get_json(REFRESH_KEY, {})
    tokens[refresh_token] = {"client_id": client_id, "scopes": sorted(scopes)}
    state.set_json(REFRESH_KEY, tokens)


def _oauth_error(status: str, message: str) -> Response:
    return Response(400, {"status": status, "message": message, "correlationId": correlation_id()})


def token(state: SandboxState, request: Request) -> Response:
    """Exchange a refresh token for a new 30-minute access token (the refresh token stays)."""
    form: dict[str, Any] = {
        k: v[0] for k, v in urllib.parse.parse_qs(request.body.decode("utf-8")).items()
    }
    if form.get("grant_type") != "refresh_token":
        return _oauth_error("BAD_GRANT_TYPE", "grant_type must be refresh_token")
    clients = state.get_json(CLIENTS_KEY, {})
    client_id = form.get("client_id", "")
    if client_id not in clients:
        return _oauth_error("BAD_CLIENT_ID", "missing or unknown client_id")
    if not secrets.compare_digest(str(clients[client_id]), form.get("client_secret", "")):
        return _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client_secret")
    grant = state.get_json(REFRESH_KEY, {}).get(form.get("refresh_token", ""))
    if grant is None or grant.get("client_id") != client_id:
        return _oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
    access = f"hs-sandbox-oauth-{secrets.token_urlsafe(24)}"
    state.add_token(
        access, HS, grant["scopes"], state.now() + dt.timedelta(seconds=ACCESS_TOKEN_TTL)
    )
    return Response(
        200,
        {
            "access_token": access,
            "refresh_token": form["refresh_token"],
            "expires_in": ACCESS_TOKEN_TTL,
            "token_type": "bearer",
        },
    )
