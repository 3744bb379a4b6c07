"""How the hub reaches one Salesforce org: where it is, how it logs in, how much it may spend.

Why a frozen dataclass: the connector is built once per asset run from settings the Dagster
resource read from environment variables; nothing may change it mid-run, and secrets must never
show up in its ``repr`` (Dagster and pytest print objects). Every secret field is
``repr=False``.

Budget (``budget_share``): Salesforce reports the org's daily API usage on every response
(``Sforce-Limit-Info: api-usage=USED/MAX``). Before each request the connector stops (raises
``QuotaExhausted`` between pages, so the checkpoint is kept) once ``USED >= MAX * budget_share``.
The default 0.5 leaves half of the org's quota to every other integration and to its users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connectors.errors import AuthenticationError
from connectors.records import HubFieldSpec

DEFAULT_TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"
DEFAULT_API_VERSION = "59.0"


@dataclass(frozen=True)
class ClientCredentialsAuth:
    """OAuth 2.0 client credentials: a connected app with a run-as integration user."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class RefreshTokenAuth:
    """OAuth 2.0 refresh token, from a one-time web authorisation of the connected app."""

    client_id: str
    refresh_token: str = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class JwtBearerAuth:
    """OAuth 2.0 JWT bearer: the connected app's certificate signs a short-lived assertion.

    ``audience`` defaults to the login host of ``token_url`` (``https://login.salesforce.com``;
    ``https://test.salesforce.com`` for sandboxes).
    """

    client_id: str
    username: str
    private_key_file: str
    audience: str | None = None


@dataclass(frozen=True)
class PasswordAuth:
    """OAuth 2.0 username-password flow (password + security token) through a connected app."""

    username: str
    password: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class SessionIdAuth:
    """A raw session id (e.g. from the Salesforce CLI): works until it expires, cannot renew."""

    session_id: str = field(repr=False)


SalesforceAuth = (
    ClientCredentialsAuth | RefreshTokenAuth | JwtBearerAuth | PasswordAuth | SessionIdAuth
)


def auth_from_settings(
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    security_token: str | None = None,
    jwt_key_file: str | None = None,
    session_id: str | None = None,
) -> SalesforceAuth:
    """Pick the login flow from whichever credentials are set (the ``CRMHUB_SF_*`` variables).

    Order: refresh token, JWT key, username + password, client credentials, bare session id.
    Raises :class:`AuthenticationError` naming the variables to set when no complete set exists.
    """
    if refresh_token:
        if not client_id:
            raise AuthenticationError(
                "A Salesforce refresh token is set but no connected app: set CRMHUB_SF_CLIENT_ID "
                "(and CRMHUB_SF_CLIENT_SECRET if the app requires it).",
                crm="salesforce",
            )
        return RefreshTokenAuth(client_id, refresh_token, client_secret or None)
    if jwt_key_file:
        if not (client_id and username):
            raise AuthenticationError(
                "The Salesforce JWT bearer flow needs CRMHUB_SF_CLIENT_ID (the connected app's "
                "consumer key) and CRMHUB_SF_USERNAME next to CRMHUB_SF_JWT_KEY_FILE.",
                crm="salesforce",
            )
        return JwtBearerAuth(client_id, username, jwt_key_file)
    if username and password:
        if not (client_id and client_secret):
            raise AuthenticationError(
                "The Salesforce username-password flow needs a connected app: set "
                "CRMHUB_SF_CLIENT_ID and CRMHUB_SF_CLIENT_SECRET next to CRMHUB_SF_USERNAME and "
                "CRMHUB_SF_PASSWORD.",
                crm="salesforce",
            )
        return PasswordAuth(username, password, client_id, client_secret, security_token or "")
    if client_id and client_secret:
        return ClientCredentialsAuth(client_id, client_secret)
    if session_id:
        return SessionIdAuth(session_id)
    raise AuthenticationError(
        "No Salesforce credentials are configured. Set CRMHUB_SF_CLIENT_ID and "
        "CRMHUB_SF_CLIENT_SECRET (client credentials), or add CRMHUB_SF_REFRESH_TOKEN, or "
        "CRMHUB_SF_USERNAME with CRMHUB_SF_PASSWORD or CRMHUB_SF_JWT_KEY_FILE.",
        crm="salesforce",
    )


@dataclass(frozen=True)
class SalesforceConfig:
    """Everything the Salesforce connector needs; see the module docstring for the budget rule.

    ``field_map``: record attribute -> Salesforce field for the org-specific fields
    (``go_live_date``, ``contracted_modules``, ``modules_in_use``, ``usage_score``,
    ``onboarding_completed``, ``cross_crm_id`` on Account; ``contract_term_months`` on
    Opportunity; ``satisfaction`` on Case; ``extra.<name>`` for any further Account field).
    Unlisted attributes use the defaults in :data:`connectors.salesforce.mapping.DEFAULT_FIELD_MAP`;
    an empty string switches an attribute off for orgs that do not track it.

    ``hub_fields`` are the hub-owned writeback fields this connector may write (their kinds drive
    type conversion); ``hub_field_names`` overrides the derived ``Hub_<Key>__c`` names per key.
    """

    instance_url: str
    auth: SalesforceAuth
    token_url: str = DEFAULT_TOKEN_URL
    ca_bundle: str | None = None
    api_version: str = DEFAULT_API_VERSION
    timeout_seconds: float = 120.0
    #: Stop once the org's daily API usage reaches this share of its maximum.
    budget_share: float = 0.5
    #: Rows per REST query page (keyset LIMIT); Salesforce returns at most 2000 per response.
    page_size: int = 2000
    #: How much older than its commit a row's SystemModstamp can be: each run re-reads the rows
    #: stamped after the previous run's read time minus this (late commits; see ``reader.py``).
    overlap_seconds: float = 60.0
    #: A first sync above this many rows of an object uses Bulk API 2.0 instead of REST. None:
    #: never Bulk (e.g. an integration user without Bulk API access); the first page is then an
    #: ordinary ``LIMIT page_size`` page, since the object's size need not be known.
    bulk_threshold: int | None = 10_000
    bulk_max_records: int = 50_000
    #: Seconds between Bulk API job status polls (tests: 0).
    bulk_poll_seconds: float = 2.0
    bulk_timeout_seconds: float = 3600.0
    #: More updates than this in one ``write`` go through Bulk API 2.0 ingest.
    bulk_write_threshold: int = 2000
    write_batch_size: int = 200
    row_lock_retries: int = 3
    row_lock_backoff_seconds: float = 2.0
    retry_attempts: int = 5
    reconcile_page_size: int = 2000
    #: How often the assets should run the hard-delete id pass (``reconcile_ids``).
    reconcile_interval_hours: float = 24.0
    #: While configured hub fields are missing on Account, re-check describe this often.
    hub_describe_interval_hours: float = 6.0
    #: Ids per Collections retrieve call (keeps the GET URL below Salesforce's 16k limit).
    retrieve_batch_size: int = 600
    field_map: Mapping[str, str] = field(default_factory=dict)
    hub_fields: tuple[HubFieldSpec, ...] = ()
    hub_field_names: Mapping[str, str] = field(default_factory=dict)
    #: Explicit proxies; None takes them from the environment (``HTTPS_PROXY``/``NO_PROXY``).
    proxies: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not urlsplit(self.instance_url).netloc:
            raise ValueError(
                "SalesforceConfig.instance_url must be a full URL such as "
                "https://yourorg.my.salesforce.com (CRMHUB_SF_INSTANCE_URL)"
            )
        if not 0 < self.budget_share <= 1:
            raise ValueError("SalesforceConfig.budget_share must be in (0, 1], e.g. 0.5")
        if not 1 <= self.page_size <= 2000:
            raise ValueError("SalesforceConfig.page_size must be between 1 and 2000")
        if not 1 <= self.write_batch_size <= 200:
            raise ValueError("SalesforceConfig.write_batch_size must be between 1 and 200")
        if not 1 <= self.reconcile_page_size <= 2000:
            raise ValueError("SalesforceConfig.reconcile_page_size must be between 1 and 2000")

    @property
    def login_url(self) -> str:
        """Scheme and host of the token endpoint: the JWT audience by default."""
        parts = urlsplit(self.token_url)
        return f"{parts.scheme}://{parts.netloc}"

    def safe_summary(self) -> dict[str, Any]:
        """Settings that are safe to log (no secrets): for run metadata and error reports."""
        return {
            "instance_url": self.instance_url,
            "token_url": self.token_url,
            "auth": type(self.auth).__name__,
            "api_version": self.api_version,
            "budget_share": self.budget_share,
            "page_size": self.page_size,
            "bulk_threshold": self.bulk_threshold,
        }
