"""Helpers of the opt-in live contract check (``test_live_contract.py``); not a test module.

Why a separate module: the check has three parts that must agree on every detail, and each is
easier to review on its own:

- *which mode* (``CRMHUB_LIVE_CONTRACT``: unset = replay offline, ``record`` = record against
  whatever the ``CRMHUB_SF_*`` / ``CRMHUB_HS_*`` variables point at, ``sandbox`` = start the
  sandbox, seed ``tiny``, point the variables at it and record) and *where* the cassettes live
  (``CRMHUB_LIVE_CASSETTE_DIR``, default ``tests/connectors/cassettes/live``);
- *building the connectors exactly like the hub does*: the Dagster resources of
  ``assets.definitions.build_resources`` resolved from the environment, the mapping file through
  ``HubConfigResource`` and the connector through ``assets.connector_factory``; only the page sizes
  are made small (and Bulk API switched off), so a check costs a handful of API calls;
- *scrubbing*: Authorization/Cookie headers, Set-Cookie response headers, the OAuth token
  endpoints' form fields (client id and secret, username, password, refresh token, JWT assertion),
  ``hapikey`` query parameters and token values in responses never reach disk. Token values seen
  while recording are remembered (:data:`ISSUED`) so the secret scan can look for them too.

Each CRM's folder holds one cassette per scenario, ``mapping.yaml`` (a copy of the mapping file the
recording used: replays build the connector from it, so a replay does not depend on the machine's
``CRMHUB_CONFIG_DIR``) and ``manifest.json`` (target host, login flow, page size, and per scenario
what the connector made of the recording: record types, ids, which attributes were filled, the
requests). A replay must reproduce the manifest exactly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import vcr

from assets.connector_factory import build_hubspot, build_salesforce
from assets.definitions import build_resources
from assets.resources import HubConfigResource, HubSpotResource, SalesforceResource
from connectors.base import Page
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.limiter import PortalLimiter
from connectors.salesforce import SalesforceConnector
from crmhub import settings

MODE_ENV = "CRMHUB_LIVE_CONTRACT"
DIR_ENV = "CRMHUB_LIVE_CASSETTE_DIR"
#: The shipped recording (made against the sandbox, replayed in CI).
REPO_DIR = Path(__file__).parent / "cassettes" / "live"
#: Replays never open a socket (port 9 is "discard"); hosts and ports are not matched.
REPLAY_URL = "https://127.0.0.1:9"
#: Rows per page in the live check: enough to see every shape, cheap on a real org's quota.
PAGE_SIZE = 5
#: Never a Bulk API job: the first page is an ordinary REST page of PAGE_SIZE rows (with a
#: threshold the first page would be sized by a query without LIMIT, answered with 200 rows).
NO_BULK = None

SF = "salesforce"
HS = "hubspot"
CRMS = (SF, HS)

#: JSON keys whose values are credentials (token endpoint answers of both CRMs).
SECRET_JSON_KEYS = ("access_token", "refresh_token", "id_token", "signature")
#: Form fields of the token endpoints that are credentials or personal (never recorded).
FILTERED_FORM_FIELDS = (
    "client_id",
    "client_secret",
    "username",
    "password",
    "refresh_token",
    "assertion",
    "code",
    "code_verifier",
)
#: Settings whose values are secrets: the scan looks for each of them in every cassette.
SECRET_ENV = (
    "CRMHUB_SF_CLIENT_SECRET",
    "CRMHUB_SF_PASSWORD",
    "CRMHUB_SF_SECURITY_TOKEN",
    "CRMHUB_SF_REFRESH_TOKEN",
    "CRMHUB_SF_SESSION_ID",
    "CRMHUB_HS_ACCESS_TOKEN",
    "CRMHUB_HS_CLIENT_SECRET",
    "CRMHUB_HS_REFRESH_TOKEN",
)
#: Token values the CRMs issued during recordings in this process (captured before scrubbing).
ISSUED: set[str] = set()


class LiveCheckError(RuntimeError):
    """The live check is misconfigured; the message says what to set."""


# ---- mode and folders ------------------------------------------------------------------------
def mode() -> str:
    """``replay`` (variable unset), ``record`` or ``sandbox``."""
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if value in ("", "0", "replay"):
        return "replay"
    if value in ("record", "sandbox"):
        return value
    raise LiveCheckError(
        f"{MODE_ENV}={value!r} is not a mode: leave it unset to replay the recorded cassettes, "
        "'record' to record against the CRMs the CRMHUB_SF_*/CRMHUB_HS_* variables point at, or "
        "'sandbox' to record against a freshly seeded local sandbox"
    )


def cassette_root() -> Path:
    """Where cassettes are read and written: ``CRMHUB_LIVE_CASSETTE_DIR`` or the repo folder."""
    value = os.environ.get(DIR_ENV)
    return Path(value).expanduser().resolve() if value else REPO_DIR


def is_repo_root(root: Path) -> bool:
    return root.resolve() == REPO_DIR.resolve()


def configured(crm: str) -> bool:
    """Whether the environment names a CRM to record against (presence only, like the hub)."""
    mode_ = settings.detect_mode()
    return mode_.salesforce_configured if crm == SF else mode_.hubspot_configured


def target_url(crm: str) -> str:
    if crm == SF:
        return os.environ["CRMHUB_SF_INSTANCE_URL"]
    return os.environ.get("CRMHUB_HS_BASE_URL") or HubSpotResource().base_url


def is_local(url: str) -> bool:
    """True for a loopback host (the sandbox): only such recordings may go into the repo."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- scrubbing -------------------------------------------------------------------------------
_TOKEN_FIELD = re.compile(
    r'("(?:' + "|".join(SECRET_JSON_KEYS) + r')"\s*:\s*")([^"]*)(")', re.IGNORECASE
)


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Drop Set-Cookie and blank token values in a response before it is written to disk."""
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in ("set-cookie", "set-cookie2"):
            del headers[name]
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        for match in _TOKEN_FIELD.finditer(text):
            if match.group(2) and match.group(2) != "REDACTED":
                ISSUED.add(match.group(2))
        scrubbed = _TOKEN_FIELD.sub(r"\1REDACTED\3", text)
        if scrubbed != text:
            response["body"]["string"] = (
                scrubbed.encode("utf-8") if isinstance(body, bytes) else scrubbed
            )
    return response


def recorder(directory: Path, guard: Callable[[Any], Any] | None = None) -> vcr.VCR:
    """The vcrpy configuration shared by recording and replay.

    ``guard`` sees every request before it is sent (recording) or matched (replay) and may
    raise to stop it: the read-only check.
    """
    return vcr.VCR(
        cassette_library_dir=str(directory),
        # Hosts and ports are not matched: replays run against REPLAY_URL, and the token
        # endpoint (login.salesforce.com, test.salesforce.com, My Domain) differs by path anyway.
        match_on=("method", "scheme", "path", "query"),
        filter_headers=("authorization", "cookie", "x-sfdc-session"),
        filter_query_parameters=("hapikey", "access_token"),
        filter_post_data_parameters=FILTERED_FORM_FIELDS,
        before_record_request=guard,
        before_record_response=scrub_response,
        decode_compressed_response=True,
        # A failed login or an unreadable object leaves no half cassette behind.
        record_on_exception=False,
    )


# ---- building the connectors like the hub ----------------------------------------------------
@contextmanager
def _live_resources(crm: str) -> Iterator[Any]:
    """The hub's resources for ``crm`` and its config, resolved from the environment."""
    wired = build_resources()
    with dg.build_resources({crm: wired[crm], "hub_config": wired["hub_config"]}) as resources:
        yield resources


def live_salesforce() -> tuple[SalesforceConnector, Path]:
    """The connector the hub would build from ``CRMHUB_SF_*``, and the mapping file it used."""
    with _live_resources(SF) as res:
        resource = res.salesforce.model_copy(
            update={"page_size": PAGE_SIZE, "bulk_threshold": NO_BULK}
        )
        # The hub's own rule for the folder (CRMHUB_CONFIG_DIR or config/).
        mapping_dir = res.hub_config._dir()
        connector = build_salesforce(
            resource, res.hub_config.mapping(SF), res.hub_config.writeback()
        )
    return connector, mapping_dir / "mapping.yaml"


def live_hubspot() -> tuple[HubSpotConnector, Path]:
    """The connector the hub would build from ``CRMHUB_HS_*``, and the mapping file it used."""
    with _live_resources(HS) as res:
        mapping_dir = res.hub_config._dir()
        built = build_hubspot(res.hubspot, res.hub_config.mapping(HS), res.hub_config.writeback())
    config = _small_hubspot(built)
    # The hub's process-wide limiter for the portal: a real portal's limits are respected.
    return HubSpotConnector(config), mapping_dir / "mapping.yaml"


def _small_hubspot(built: HubSpotConnector, page_size: int = PAGE_SIZE) -> Any:
    """The factory's config with one small page per checkpoint (no other change).

    A first sync lists (the factory's default plan), so its first page is one list call with the
    associations inline; through search, associations are batch-read per checkpoint, and a batch
    as small as the page makes it one search plus one associations read per linked object type.
    """
    built.close()
    return dataclasses.replace(
        built.config,
        search_page_size=page_size,
        list_page_size=page_size,
        association_batch_size=page_size,
        owners_page_size=page_size,
    )


def replay_salesforce(crm_dir: Path, manifest: dict[str, Any]) -> SalesforceConnector:
    """The same factory, pointed at nowhere, with dummy credentials of the recorded flow."""
    credentials: dict[str, Any]
    if manifest["auth"] == "SessionIdAuth":
        credentials = {"session_id": "replay-session"}
    else:
        # Every OAuth flow is one POST to the token path; the form body is not matched.
        credentials = {"client_id": "replay-client", "client_secret": "replay-secret"}
    resource = SalesforceResource(
        instance_url=REPLAY_URL,
        token_url=REPLAY_URL + manifest["token_path"],
        page_size=int(manifest["page_size"]),
        bulk_threshold=NO_BULK,
        **credentials,
    )
    config = HubConfigResource(config_dir=str(crm_dir))
    return build_salesforce(resource, config.mapping(SF), config.writeback())


def replay_hubspot(crm_dir: Path, manifest: dict[str, Any]) -> HubSpotConnector:
    credentials: dict[str, Any] = (
        {"client_id": "replay-client", "client_secret": "replay-secret", "refresh_token": "r"}
        if manifest["auth"] == "oauth"
        else {"access_token": "replay-token"}
    )
    resource = HubSpotResource(base_url=REPLAY_URL, **credentials)
    config = HubConfigResource(config_dir=str(crm_dir))
    built = build_hubspot(resource, config.mapping(HS), config.writeback())
    small = _small_hubspot(built, int(manifest["page_size"]))
    # Nothing to protect offline: a limiter that never waits keeps the replay fast.
    return HubSpotConnector(
        small, limiter=PortalLimiter(10_000, 10.0, 10_000), sleep=lambda _s: None
    )


def auth_flow(crm: str, connector: Any) -> str:
    if crm == SF:
        return type(connector.config.auth).__name__
    return "oauth" if connector.config.uses_oauth else "access_token"


def token_path(connector: SalesforceConnector) -> str:
    return urlsplit(connector.config.token_url).path or "/services/oauth2/token"


# ---- manifest ---------------------------------------------------------------------------------
def manifest_path(crm_dir: Path) -> Path:
    return crm_dir / "manifest.json"


def load_manifest(crm_dir: Path) -> dict[str, Any] | None:
    path = manifest_path(crm_dir)
    return json.loads(path.read_text()) if path.exists() else None


def save_manifest(crm_dir: Path, manifest: dict[str, Any]) -> None:
    crm_dir.mkdir(parents=True, exist_ok=True)
    manifest_path(crm_dir).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def start_recording(crm: str, crm_dir: Path, connector: Any, mapping_file: Path) -> dict[str, Any]:
    """The manifest to record into; a new target, flow or mapping starts the folder afresh.

    Cassettes of one folder always come from one org/portal with one mapping: scenarios recorded
    earlier with the same setup are kept (a ``-k`` run re-records only what it selects).
    """
    mapping_text = mapping_file.read_text() if mapping_file.exists() else ""
    setup = {
        "crm": crm,
        # The host only: the sandbox listens on a new port every run.
        "target": urlsplit(target_url(crm)).hostname or "",
        "auth": auth_flow(crm, connector),
        "page_size": PAGE_SIZE,
        "mapping_sha256": hashlib.sha256(mapping_text.encode()).hexdigest(),
    }
    if crm == SF:
        setup["token_path"] = token_path(connector)
    old = load_manifest(crm_dir) or {}
    if {k: old.get(k) for k in setup} != setup:
        if crm_dir.exists():
            for stale in crm_dir.glob("*.yaml"):
                stale.unlink()
        old = {"scenarios": {}}
    crm_dir.mkdir(parents=True, exist_ok=True)
    if mapping_file.exists():
        shutil.copyfile(mapping_file, crm_dir / "mapping.yaml")
    manifest = {**setup, "scenarios": dict(old.get("scenarios") or {})}
    manifest["recorded_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    save_manifest(crm_dir, manifest)
    return manifest


# ---- what the connector made of a recording ----------------------------------------------------
def filled(record: Any) -> list[str]:
    """Names of a record's attributes that hold a value (what a parser regression would lose)."""
    names = []
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None or (
            isinstance(value, str | tuple | list | dict | frozenset) and not value
        ):
            continue
        names.append(f.name)
    return names


def first_page(connector: Any, kind: str) -> Page | None:
    """Only the first page of a first sync: the generator is closed before it asks for more."""
    pages = iter(connector.read(kind, None))
    try:
        return next(pages, None)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def page_summary(page: Page | None) -> dict[str, Any]:
    records = page.records if page else []
    return {
        "records": [[type(r).__name__, r.source_id, r.deleted, filled(r)] for r in records],
        "cursor_keys": sorted(page.cursor) if page else [],
    }


def request_shapes(cassette: Any) -> list[list[str]]:
    """(method, path) of every request in a cassette: the contract's shape, no host, no query."""
    return [[r.method, urlsplit(r.uri).path] for r in cassette.requests]


# ---- secret scan -----------------------------------------------------------------------------
#: Credential shapes that must never appear, whatever their value.
TOKEN_PATTERNS = (
    re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"\bBasic\s+[A-Za-z0-9+/]{16,}"),  # base64 of client_id:client_secret
    re.compile(r"00D[0-9A-Za-z]{12,15}![\w.]{20,}"),  # a Salesforce session id
    re.compile(r"\bpat-[a-z]{2,3}\d?-[0-9a-f]{8}-[0-9a-f]{4}-"),  # a HubSpot private-app token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"hapikey="),
)


def environment_secrets() -> list[str]:
    """Secret values of the current environment (long enough to be meaningful to search for)."""
    values = [os.environ.get(name, "") for name in SECRET_ENV]
    key_file = os.environ.get("CRMHUB_SF_JWT_KEY_FILE")
    if key_file and Path(key_file).is_file():
        lines = Path(key_file).read_text(errors="replace").splitlines()
        values += [line for line in lines if line and not line.startswith("-----")]
    return [v for v in values if len(v) >= 6]


def leaks(text: str, secrets: list[str]) -> list[str]:
    """What a cassette's text gives away: secrets (first characters only) and token shapes."""
    found = [secret[:4] + "…" for secret in secrets if len(secret) >= 6 and secret in text]
    found += [f"pattern {p.pattern[:24]}…" for p in TOKEN_PATTERNS if p.search(text)]
    return found
