"""Settings of the HubSpot connector: where the portal is, how to log in, how frugal to be.

Why a frozen dataclass: one connector instance talks to one portal with one set of credentials
and one set of limits for its whole life; making the settings immutable means the rate limiter
key, the hub-field allow-list and the field mapping validated at construction cannot drift while
a sync runs. Secrets are excluded from ``repr`` so that a logged config never shows them.

Budget (``budget_share``): HubSpot reports the portal's daily quota in every response
(``X-HubSpot-RateLimit-Daily`` and ``-Daily-Remaining``). Before each request the connector
computes ``used = daily - remaining`` and stops the source with ``QuotaExhausted`` once
``used >= daily * budget_share``: the hub never spends the part of the quota that other
integrations of the same portal rely on. ``budget_share = 1.0`` uses the whole quota.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from connectors.errors import AuthenticationError, ConnectorError, MappingError
from connectors.records import HUBSPOT, HubFieldSpec

#: The prefix every hub-owned HubSpot property carries: the writeback allow-list.
HUB_PROPERTY_PREFIX = "crmhub_"
_HUB_NAME = re.compile(r"^crmhub_[a-z0-9_]+$")

#: HubSpot's default sales pipeline: stage id -> (label, probability 0..1, is_closed, is_won).
#: Portals with their own pipelines override ``deal_stages`` in the config.
DEFAULT_DEAL_STAGES: dict[str, tuple[str, float, bool, bool]] = {
    "appointmentscheduled": ("Appointment Scheduled", 0.2, False, False),
    "qualifiedtobuy": ("Qualified To Buy", 0.4, False, False),
    "presentationscheduled": ("Presentation Scheduled", 0.6, False, False),
    "decisionmakerboughtin": ("Decision Maker Bought-In", 0.8, False, False),
    "contractsent": ("Contract Sent", 0.9, False, False),
    "closedwon": ("Closed Won", 1.0, True, True),
    "closedlost": ("Closed Lost", 0.0, True, False),
}


#: How a first sync of an object reads it (see ``first_sync_plan``).
FirstSyncPlan = Literal["list", "search"]
FIRST_SYNC_PLANS: tuple[str, ...] = get_args(FirstSyncPlan)


@dataclass(frozen=True)
class HubSpotConfig:
    """Everything a :class:`~connectors.hubspot.connector.HubSpotConnector` needs.

    Credentials: either ``access_token`` (a private app's token) or the OAuth triple
    ``client_id`` + ``client_secret`` + ``refresh_token`` (the connector then refreshes the
    30-minute access token ahead of ``expires_in``).
    """

    base_url: str = "https://api.hubapi.com"
    access_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    #: CA bundle for TLS (corporate proxies, the sandbox); None = the system's trust store.
    ca_bundle: str | None = None
    request_timeout_seconds: float = 60.0
    #: Refresh an OAuth access token this long before HubSpot says it expires.
    token_refresh_margin_seconds: float = 300.0

    # ---- budget and rate limits ---------------------------------------------------------
    #: Share of the portal's daily quota the hub may use (see the module docstring).
    budget_share: float = 0.5
    #: Client-side burst limit: requests per ``burst_window_seconds`` for the whole portal
    #: (100 per 10 s is safe on every tier; Professional/Enterprise allow 190).
    burst_limit: int = 100
    burst_window_seconds: float = 10.0
    #: Client-side search limit (HubSpot allows 4-5 search requests per second per token).
    search_per_second: float = 4.0
    #: Where the portal's rate-limit log lives, shared by every process that uses it: ``""``
    #: (this process only), ``sqlite:///path/ratelimit.db`` (every process on the machine) or
    #: ``redis://host:6379/0`` (every machine). See ``connectors/hubspot/limiter.py``.
    rate_limit_store: str = field(default="", repr=False)
    #: How often a failing idempotent call is tried in all (burst 429s, 5xx, dropped connections).
    retry_attempts: int = 5

    # ---- incremental reads ---------------------------------------------------------------
    #: A window never reaches closer to the portal's "now" than this (search index lag).
    lag_margin_seconds: float = 30.0
    #: Each window starts this long before the previous one ended (late-indexed records).
    overlap_seconds: float = 300.0
    #: How often the archived (deleted) records are listed; 0 = on every sync. Six hours: a
    #: HubSpot delete reaches the hub within about seven hours with hourly syncs, and five of six
    #: such runs cost one call per object when nothing changed (each check adds one per object).
    archived_check_interval_seconds: float = 21600.0
    #: Search page size (HubSpot's maximum is 200).
    search_page_size: int = 200
    #: How a first sync (no cursor yet) reads an object. ``list``: the list endpoint, 100 records
    #: a page with the associations inline, paced by the burst limit (100-190 requests per 10 s);
    #: ``search``: the search windows increments use, 200 a page plus one v4 associations batch
    #: per 1,000 records and type, paced by the search limit (about 5 per second per portal).
    #: At HubSpot's limits a list pass reads 1,000-1,900 records a second against search's 800-1,000,
    #: and it leaves the search limit to other integrations of the portal. Increments always search
    #: (only search filters by last-modified time).
    first_sync_plan: FirstSyncPlan = "list"
    #: List page size of a first sync through lists (HubSpot's maximum is 100).
    list_page_size: int = 100
    #: Records gathered before one associations batch read per type (HubSpot's maximum is 1,000);
    #: also the size of one checkpointed page.
    association_batch_size: int = 1000
    #: Properties per search request; longer lists are read in extra batch reads.
    max_properties_per_request: int = 200
    #: Owners API page size (maximum 500).
    owners_page_size: int = 500

    # ---- mapping ----------------------------------------------------------------------------
    #: Record attribute -> HubSpot property overrides (``go_live_date``, ``extra.segment``,
    #: ``deal.contract_term_months``...). Unqualified keys and ``extra.*`` apply to companies.
    field_map: Mapping[str, str] = field(default_factory=dict)
    #: Deal stages of the portal's pipelines (id -> label, probability, is_closed, is_won).
    deal_stages: Mapping[str, tuple[str, float, bool, bool]] = field(
        default_factory=lambda: dict(DEFAULT_DEAL_STAGES)
    )
    #: Ticket pipeline stage ids that mean "closed".
    closed_ticket_stages: tuple[str, ...] = ("4",)

    # ---- writeback ---------------------------------------------------------------------------
    #: The hub-owned fields this connector may write (and reads back as ``hub_fields``).
    hub_fields: tuple[HubFieldSpec, ...] = ()
    #: The hub-owned *contact* fields (the marketing suppression on every contact of a customer
    #: in a late-stage negotiation); empty: the hub writes no contact.
    contact_hub_fields: tuple[HubFieldSpec, ...] = ()
    #: Per-key overrides of the property name (must still start with ``crmhub_``).
    hub_field_names: Mapping[str, str] = field(default_factory=dict)
    property_group: str = "crmhub"
    property_group_label: str = "crmhub (integration hub)"
    write_batch_size: int = 100
    #: Batch updates the writeback keeps in flight at once (each still paced by the portal's
    #: burst limit): one at a time, a real portal's ~0.3 s per call caps a writeback near 3
    #: calls per second, far below the 19 the burst limit allows.
    write_concurrency: int = 4
    #: Rounds of re-sending ids that failed with a retryable per-record error in a 207.
    write_retry_rounds: int = 3

    def __post_init__(self) -> None:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if not self.access_token and not all(oauth):
            raise AuthenticationError(
                "No HubSpot credentials configured: set CRMHUB_HS_ACCESS_TOKEN (private app) or "
                "CRMHUB_HS_CLIENT_ID, CRMHUB_HS_CLIENT_SECRET and CRMHUB_HS_REFRESH_TOKEN (OAuth)",
                crm=HUBSPOT,
            )
        if not 0 < self.budget_share <= 1:
            raise ValueError(
                f"budget_share must be in (0, 1], got {self.budget_share}; it is the share of "
                "the portal's daily API quota the hub may use"
            )
        if not 1 <= self.search_page_size <= 200:
            raise ValueError("search_page_size must be between 1 and 200 (HubSpot's maximum)")
        if self.first_sync_plan not in FIRST_SYNC_PLANS:
            raise ConnectorError(
                f"HubSpot first_sync_plan must be one of {', '.join(FIRST_SYNC_PLANS)}, got "
                f"{self.first_sync_plan!r}; fix CRMHUB_HS_FIRST_SYNC_PLAN",
                crm=HUBSPOT,
            )
        if not 1 <= self.list_page_size <= 100:
            raise ValueError("list_page_size must be between 1 and 100 (HubSpot's maximum)")
        if not 1 <= self.association_batch_size <= 1000:
            raise ValueError("association_batch_size must be between 1 and 1000")
        if not 1 <= self.write_batch_size <= 100:
            raise ValueError("write_batch_size must be between 1 and 100 (HubSpot's maximum)")
        if not 1 <= self.write_concurrency <= 16:
            raise ConnectorError(
                f"HubSpot write_concurrency must be between 1 and 16, got "
                f"{self.write_concurrency}; fix CRMHUB_HS_WRITE_CONCURRENCY",
                crm=HUBSPOT,
            )
        for key in self.hub_field_names:
            self.hub_property(key)  # raises MappingError for names outside the allow-list
        for spec in (*self.hub_fields, *self.contact_hub_fields):
            self.hub_property(spec.key)

    @property
    def uses_oauth(self) -> bool:
        return not self.access_token

    def hub_property(self, key: str) -> str:
        """The HubSpot property of a hub field: ``crmhub_<key>`` unless overridden.

        Only names inside the hub's own namespace pass: the hub must never overwrite a field a
        person or another integration owns (``name``, ``website``...).
        """
        name = self.hub_field_names.get(key, HUB_PROPERTY_PREFIX + key)
        if not _HUB_NAME.match(name):
            raise MappingError(
                f"field mapping for hub field {key} names {name}, which is not a hub-owned "
                f"field; hub fields must be HubSpot properties named {HUB_PROPERTY_PREFIX}<name> "
                f"(lower case, digits, underscores): fix writeback.hubspot_names.{key} in the "
                "mapping file",
                crm=HUBSPOT,
            )
        return name

    def hub_properties(self) -> dict[str, str]:
        """Hub key -> property name, for every configured hub field."""
        return {spec.key: self.hub_property(spec.key) for spec in self.hub_fields}
