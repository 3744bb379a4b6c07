"""Dagster resources: the hub store, the two CRM connectors and the hub's configuration files.

Why resources: credentials reach the hub only here, through ``dg.EnvVar`` (see
``assets/definitions.py``), so they never appear in run config, logs or the UI; and tests swap in
a sandbox by giving the same resources other values.
"""

import contextlib
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from connectors.records import HUBSPOT, SALESFORCE
from unified_model import settings
from unified_model.database import connect_store, open_store, prepare
from unified_model.operations import Operations, load_operations
from unified_model.rules import HubRules, load_rules
from unified_model.store import HubStore
from unified_model.writeback import WritebackConfig, load_writeback_config
from unified_model.writer_lock import hub_writer


def _connector_key(
    field_map: dict[str, str], writeback: WritebackConfig, names: dict[str, str]
) -> tuple[object, ...]:
    return (tuple(sorted(field_map.items())), writeback.fields, tuple(sorted(names.items())))


class HubStoreResource(dg.ConfigurableResource):
    """The hub database (SQLite file by default, PostgreSQL by URL), held by one run at a time.

    On set-up (once per run in-process, once per step process in the multi-process executor) it
    opens the database, checked and migrated once per process (``unified_model.database``), and
    takes the hub's writer lock for the run (``unified_model.writer_lock``): a second sync on the
    same hub database fails at once with who holds it, instead of writing twice. Steps of the run
    that already holds the lock (the CLI takes it before the run starts) go on.
    """

    database_url: str = ""
    _store: HubStore | None = PrivateAttr(default=None)
    _held: contextlib.ExitStack | None = PrivateAttr(default=None)

    def _url(self) -> str:
        return self.database_url or settings.database_url()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        store = connect_store(self._url())
        held = contextlib.ExitStack()
        try:
            held.enter_context(hub_writer(store, context.run_id or "no-run"))
            prepare(store)  # under the lock: two first runs never create the schema together
        except BaseException:
            held.close()
            store.dispose()
            raise
        self._store, self._held = store, held

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._held is not None:
            self._held.close()
        if self._store is not None:
            self._store.dispose()
        self._store, self._held = None, None

    def store(self) -> HubStore:
        if self._store is None:  # used outside a run (a script, a test helper)
            self._store = open_store(self._url())
        return self._store


class HubConfigResource(dg.ConfigurableResource):
    """The folder with ``rules.yaml`` (handover/KPI rules) and ``mapping.yaml`` (fields)."""

    config_dir: str = ""

    def _dir(self) -> Path:
        return Path(self.config_dir) if self.config_dir else settings.config_dir()

    def rules(self) -> HubRules:
        path = self._dir() / "rules.yaml"
        return load_rules(path if path.exists() else None)

    def operations(self) -> Operations:
        """``operations.yaml``: freshness limits and run limits (read per run, not per load)."""
        return load_operations(self._dir() / "operations.yaml")

    def writeback(self) -> WritebackConfig:
        return load_writeback_config(self._dir() / "mapping.yaml")

    def mapping(self, crm: str) -> dict[str, str]:
        """The read field mapping for one CRM (``mapping.yaml`` → ``salesforce:``/``hubspot:``)."""
        from unified_model.field_map import load_field_map

        return load_field_map(self._dir() / "mapping.yaml", crm)


class _CrmResource(dg.ConfigurableResource):
    """What both CRM resources share: one connector per run, built once and closed at the end.

    Why: every asset of a run asks for the connector; sharing it means one login, one client-side
    rate limiter and one API-call count per CRM for the whole run.
    """

    _connectors: dict[tuple[object, ...], Any] = PrivateAttr(default_factory=dict)

    def _build(
        self, field_map: dict[str, str], writeback: WritebackConfig, provisioned: bool
    ) -> Any:
        raise NotImplementedError

    def _names(self, writeback: WritebackConfig) -> dict[str, str]:
        raise NotImplementedError

    def connector(
        self,
        field_map: dict[str, str] | None = None,
        writeback: WritebackConfig | None = None,
        *,
        hub_fields_provisioned: bool = False,
    ) -> Any:
        """The run's connector, shared by every asset.

        ``hub_fields_provisioned``: the hub has created its fields in this CRM (the store says
        so), so a reader that has not seen them yet looks again on this run instead of waiting
        for its periodic re-check.
        """
        wb = writeback or WritebackConfig()
        key = (*_connector_key(field_map or {}, wb, self._names(wb)), hub_fields_provisioned)
        if key not in self._connectors:
            self._connectors[key] = self._build(field_map or {}, wb, hub_fields_provisioned)
        return self._connectors[key]

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for connector in self._connectors.values():
            connector.close()
        self._connectors.clear()


class SalesforceResource(_CrmResource):
    """A Salesforce org: instance URL and one credential set, all from environment variables."""

    #: Empty when neither credentials nor a running sandbox are found: the run then fails with
    #: one line saying how to start the sandbox (``connector_factory.build_salesforce``).
    instance_url: str = ""
    token_url: str = "https://login.salesforce.com/services/oauth2/token"
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    jwt_key_file: str | None = None
    session_id: str | None = None
    ca_bundle: str | None = None
    budget_share: float = 0.5
    page_size: int = 2000
    #: Rows above which a first sync reads through Bulk API 2.0; None: REST only.
    bulk_threshold: int | None = 10_000

    def _names(self, writeback: WritebackConfig) -> dict[str, str]:
        return writeback.salesforce_names

    def _build(
        self, field_map: dict[str, str], writeback: WritebackConfig, provisioned: bool
    ) -> Any:
        from assets.connector_factory import build_salesforce

        return build_salesforce(self, field_map, writeback, hub_fields_provisioned=provisioned)


class HubSpotResource(_CrmResource):
    """A HubSpot portal: private-app token or OAuth refresh credentials, from the environment."""

    base_url: str = "https://api.hubapi.com"
    access_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    ca_bundle: str | None = None
    budget_share: float = 0.5
    burst_limit: int = 100
    search_per_second: float = 4.0
    #: How often archived (deleted) records are listed, per object type: the latency of a
    #: HubSpot delete against one extra call per object on the runs that check (0: every run).
    archived_check_interval_seconds: int = 21600
    #: How a first sync reads each object: ``list`` (the list endpoint, associations inline,
    #: paced by the burst limit: faster) or ``search`` (the search windows increments use, paced
    #: by HubSpot's ~5 searches per second). Increments always search. See README, Performance.
    first_sync_plan: str = "list"
    #: Batch updates a writeback keeps in flight at once, under the burst limit.
    write_concurrency: int = 4
    #: Where the portal's burst and search windows are shared between processes and machines:
    #: a Redis URL (``CRMHUB_REDIS_URL``), ``sqlite:///path`` or ``memory``; empty: the file
    #: ``ratelimit.db`` next to the hub database in ``CRMHUB_HOME``.
    rate_limit_store: str = ""

    def limiter_store(self) -> str:
        """The rate-limit store: the configured one, else ``$CRMHUB_HOME/ratelimit.db``."""
        return self.rate_limit_store or f"sqlite:///{settings.hub_home() / 'ratelimit.db'}"

    def _names(self, writeback: WritebackConfig) -> dict[str, str]:
        return writeback.hubspot_names

    def _build(
        self, field_map: dict[str, str], writeback: WritebackConfig, provisioned: bool
    ) -> Any:
        from assets.connector_factory import build_hubspot

        return build_hubspot(self, field_map, writeback)


CRM_RESOURCE_KEYS = {SALESFORCE: "salesforce", HUBSPOT: "hubspot"}
