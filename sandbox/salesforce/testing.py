"""Helpers for tests and benchmarks that drive the Salesforce emulator with the real client.

Why in the package: the contract tests, the connector tests and the benchmarks all need the same
three things: a session that trusts the sandbox CA (and ignores ``REQUESTS_CA_BUNDLE``), an access
token from the emulator's own OAuth endpoint, and a few hand-made records with known ids (the full
data generator is slower and random). Records are written straight into the state, in the storage
form the generator uses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests
from simple_salesforce import Salesforce

from sandbox.catalog import SF_OPPORTUNITY_STAGES
from sandbox.formats import sf_datetime, sf_new_id
from sandbox.runner import SandboxInfo
from sandbox.state import SF, SandboxState

_STAGES = {s[0]: s for s in SF_OPPORTUNITY_STAGES}


def sandbox_session(info: SandboxInfo) -> requests.Session:
    """A session that trusts only the sandbox CA; ``trust_env=False`` so the env can't override."""
    session = requests.Session()
    session.verify = info.ca_bundle
    session.trust_env = False
    return session


def oauth_token(info: SandboxInfo, session: requests.Session | None = None) -> str:
    """An access token from the emulator's client-credentials flow."""
    s = session or sandbox_session(info)
    r = s.post(
        f"{info.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info.sf_client_id,
            "client_secret": info.sf_client_secret,
        },
        timeout=10,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def sandbox_client(info: SandboxInfo, version: str = "59.0") -> Salesforce:
    """The unmodified simple-salesforce client, logged in to the emulator."""
    session = sandbox_session(info)
    return Salesforce(
        instance_url=info.salesforce_url,
        session_id=oauth_token(info, session),
        session=session,
        version=version,
    )


def put(
    state: SandboxState,
    obj: str,
    data: dict[str, Any],
    *,
    prefix: str,
    created: dt.datetime | None = None,
    modified: dt.datetime | None = None,
    deleted: bool = False,
) -> str:
    """Insert one record in storage form and return its id."""
    rid = sf_new_id(state, prefix)
    state.insert(SF, obj, rid, data, created=created, modified=modified, deleted=deleted)
    return rid


_ROW_KEYS = ("created", "modified", "deleted")


def _split(fields: dict[str, Any]) -> dict[str, Any]:
    """Pop the row-level keywords (``created``, ``modified``, ``deleted``) out of ``fields``."""
    return {k: fields.pop(k) for k in _ROW_KEYS if k in fields}


def user(state: SandboxState, first: str, last: str, email: str, **extra: Any) -> str:
    row = _split(extra)
    data = {
        "Username": email,
        "Email": email,
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "IsActive": True,
        **extra,
    }
    return put(state, "User", data, prefix="005", **row)


def account(state: SandboxState, name: str, **fields: Any) -> str:
    row = _split(fields)
    return put(state, "Account", {"Name": name, **fields}, prefix="001", **row)


def contact(state: SandboxState, first: str, last: str, **fields: Any) -> str:
    row = _split(fields)
    data = {"FirstName": first, "LastName": last, "Name": f"{first} {last}", **fields}
    return put(state, "Contact", data, prefix="003", **row)


def opportunity(state: SandboxState, name: str, stage: str, **fields: Any) -> str:
    row = _split(fields)
    _, probability, closed, won = _STAGES[stage]
    data = {
        "Name": name,
        "StageName": stage,
        "Probability": probability,
        "IsClosed": closed,
        "IsWon": won,
        "CloseDate": fields.pop("CloseDate", "2026-06-30"),
        "LastStageChangeDate": sf_datetime(state.now()),
        **fields,
    }
    return put(state, "Opportunity", data, prefix="006", **row)


def error_body(exc: BaseException) -> Any:
    """The parsed JSON body a simple-salesforce exception carries (``.content``)."""
    return getattr(exc, "content", None)
