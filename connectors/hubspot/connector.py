"""``HubSpotConnector``: the hub's view of one HubSpot portal (see ``connectors.base.Connector``).

Why a thin class: the work lives in modules by role (``client`` for the SDK and the budget,
``reader`` for incremental reads, ``writer`` for hub fields, ``fields`` for provisioning,
``mapping`` for records); this class wires them to one config and is what the Dagster resources,
the CLI and the benchmarks hold.

Kinds: ``owner`` (owners API), ``account`` (companies), ``contact``, ``deal``, ``ticket``,
``email``, ``activity`` (calls, meetings, notes and tasks, one object after the other). HubSpot has
no ``deal_stage`` kind for the hub (stage entry times are on the deal itself): it yields nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInput
from hubspot.crm.properties import PropertyCreate

from connectors.base import ApiUsage, Page, ProvisionResult
from connectors.diagnostics import Check, budget_check, check_host, error_check, summarise
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    CrmRequestError,
    MappingError,
    MissingScopeError,
)
from connectors.hubspot import fields
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.limiter import PortalLimiter
from connectors.hubspot.mapping import KIND_SPECS, SPECS, FieldMapping
from connectors.hubspot.reader import HubSpotReader
from connectors.hubspot.writer import CONTACTS, HubSpotWriter
from connectors.records import HUBSPOT, Crm, FieldUpdate, HubFieldSpec, ObjectKind, WriteResult

#: Kinds this connector reads; others yield nothing.
KINDS: tuple[str, ...] = ("owner", *KIND_SPECS)


class HubSpotConnector:
    """Reads HubSpot incrementally and writes the hub's ``crmhub_*`` company properties.

    ``limiter``/``sleep``/``clock`` are for tests (a fake clock instead of real waiting); by
    default the connector shares the process-wide limiter of its portal.
    """

    crm: Crm = HUBSPOT

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        limiter: PortalLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        # Mapping first: a bad field_map or hub-field name fails before any request.
        self.mapping = FieldMapping(config)
        self.client = HubSpotClient(config, limiter=limiter, sleep=sleep, clock=clock)
        self.reader = HubSpotReader(self.client, config, self.mapping)
        self.writer = HubSpotWriter(self.client, config, sleep=sleep)
        self.contacts = HubSpotContactTarget(
            self,
            HubSpotWriter(
                self.client,
                config,
                sleep=sleep,
                object_type=CONTACTS,
                specs=config.contact_hub_fields,
            ),
        )

    # ---- reads ----------------------------------------------------------------------------
    def read(self, kind: ObjectKind | str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        """Changed and archived records of ``kind`` since ``cursor`` (None: everything)."""
        if kind == "owner":
            return self.reader.read_owners(cursor)
        if kind in KIND_SPECS:
            return self.reader.read_kind(kind, cursor)
        return iter(())

    def reconcile_ids(self, kind: ObjectKind | str) -> Iterator[Page]:
        """A full pass over live ids for hard-delete detection (last page: ``seen_ids``)."""
        if kind == "owner" or kind in KIND_SPECS:
            return self.reader.reconcile_ids(kind)
        return iter(())

    def validate(self, kinds: Sequence[str] | None = None) -> None:
        """Check the field mapping against the portal's properties (one call per object)."""
        for kind in kinds or tuple(KIND_SPECS):
            for name in KIND_SPECS.get(kind, (kind,) if kind in SPECS else ()):
                self.reader.validate(name)

    # ---- writes ---------------------------------------------------------------------------
    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Set hub fields on companies: one result per update, in order."""
        return self.writer.write(updates)

    def intent_batch_size(self, pending: int) -> int:
        """Records per unit of work: one batch update call (the hub records intents per unit)."""
        return min(self.config.write_batch_size, 100)

    @property
    def write_concurrency(self) -> int:
        """Units of work the writeback may keep in flight at once (``write`` is thread-safe:
        the client's counts, token and limiter are locked, the SDK's pool is urllib3's)."""
        return self.config.write_concurrency

    def ensure_fields(
        self, specs: Sequence[HubFieldSpec], *, dry_run: bool = False
    ) -> list[ProvisionResult]:
        return fields.ensure_fields(self.client, self.config, specs, dry_run=dry_run)

    def read_hub_fields(self, source_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        return self.writer.read_hub_fields(source_ids)

    # ---- diagnosis ------------------------------------------------------------------------
    def diagnose(self, specs: Sequence[HubFieldSpec], *, deep: bool = True) -> list[Check]:
        """What ``crmhub doctor`` reports for this portal; nothing is written.

        Host (DNS, TLS), the token, read access to owners and every synced object (one
        one-record page each), every mapped property, and with ``deep`` the hub's properties,
        the write and property-creation scopes (probed with requests HubSpot refuses before they
        change anything: an empty batch update, a property with an invalid name) and the daily
        quota left. Stops at the first layer that fails. Without ``deep`` (the sync's preflight)
        only the host, the token and the mapped properties: five calls.
        """
        checks = [
            check_host(
                HUBSPOT,
                "HubSpot",
                self.config.base_url,
                variable="CRMHUB_HS_BASE_URL",
                ca_variable="CRMHUB_HS_CA_BUNDLE",
                ca_bundle=self.config.ca_bundle,
            )
        ]
        if checks[0].status == "fail":
            return checks
        client = self.client
        probes: list[tuple[str, Callable[[], Any]]] = [
            ("owners", lambda: client.api("owners").get_page(limit=1))
        ]
        for spec in SPECS.values():
            probes.append(
                (
                    spec.object_type,
                    partial(client.api("objects").get_page, spec.object_type, limit=1),
                )
            )
        readable: list[str] = []
        if not deep:  # preflight: the properties reads below prove the token (5 calls in all)
            probes = []
        for name, probe in probes:
            try:
                client.call(f"read {name}", probe, retry=False)
                readable.append(name)
            except AuthenticationError as exc:
                return [*checks, error_check(HUBSPOT, "credentials", exc)]
            except ConnectorError as exc:
                checks.append(_scope_check(f"read {name}", exc))
        kind = "OAuth app" if self.config.uses_oauth else "private app token"
        if deep:
            checks.append(Check(HUBSPOT, "credentials", "pass", f"accepted ({kind})"))
        if readable:
            checks.append(summarise(HUBSPOT, "read objects", readable, "objects readable"))
        mapped = 0
        for kind_name in SPECS:
            try:
                self.reader.validate(kind_name)
                mapped += 1
            except AuthenticationError as exc:
                return [*checks, error_check(HUBSPOT, "credentials", exc)]
            except MappingError as exc:
                checks.append(
                    Check(HUBSPOT, f"mapped fields ({kind_name})", "fail", "MappingError", str(exc))
                )
            except ConnectorError as exc:
                checks.append(_scope_check(f"read {SPECS[kind_name].object_type} properties", exc))
        if mapped:
            checks.append(
                Check(
                    HUBSPOT, "mapped fields", "pass", f"mapped properties exist on {mapped} objects"
                )
            )
        if deep:
            checks.extend(self._diagnose_hub_fields(specs))
            usage = client.usage
            checks.append(
                budget_check(HUBSPOT, usage.quota_used, usage.quota_max, self.config.budget_share)
            )
        return checks

    def _diagnose_hub_fields(self, specs: Sequence[HubFieldSpec]) -> list[Check]:
        client = self.client
        checks: list[Check] = []
        try:
            results = self.ensure_fields(specs, dry_run=True)
        except ConnectorError as exc:
            return [_scope_check("hub properties", exc)]
        ok = [r.crm_name for r in results if r.action == "exists"]
        missing = [r.crm_name for r in results if r.action == "would_create"]
        if ok:
            checks.append(summarise(HUBSPOT, "hub fields", ok, "hub properties exist"))
        for r in results:
            if r.action == "not_writable":
                checks.append(
                    Check(HUBSPOT, f"hub field {r.crm_name}", "fail", "not writable", r.detail)
                )
        empty = BatchInputSimplePublicObjectBatchInput(inputs=[])
        checks.append(
            _probe(
                "write companies",
                lambda: client.api("batch").update("companies", empty),
                "crm.objects.companies.write",
            )
        )
        invalid = PropertyCreate(
            name="Crmhub Doctor Probe",  # invalid (upper case, space): HubSpot answers 400
            label="crmhub doctor probe",
            type="string",
            field_type="text",
            group_name=self.config.property_group,
        )
        create = _probe(
            "create properties",
            lambda: client.api("properties").create("companies", invalid),
            "crm.schemas.companies.write",
        )
        contacts_missing: list[str] = []
        if self.contacts.enabled:  # the marketing-suppression fields go onto contacts
            try:
                on_contacts = self.contacts.ensure_fields(
                    self.config.contact_hub_fields, dry_run=True
                )
            except ConnectorError as exc:
                return [*checks, _scope_check("hub contact properties", exc)]
            contacts_missing = [r.crm_name for r in on_contacts if r.action == "would_create"]
            present = [r.crm_name for r in on_contacts if r.action == "exists"]
            if present:
                checks.append(
                    summarise(HUBSPOT, "hub contact fields", present, "contact properties exist")
                )
            for r in on_contacts:
                if r.action == "not_writable":
                    checks.append(
                        Check(HUBSPOT, f"hub field {r.crm_name}", "fail", "not writable", r.detail)
                    )
            checks.append(
                _probe(
                    "write contacts",
                    lambda: client.api("batch").update(CONTACTS, empty),
                    "crm.objects.contacts.write",
                )
            )
        if create.status == "fail" and not missing and not contacts_missing:
            # all properties exist: creating more is not needed today
            create = Check(HUBSPOT, create.name, "warn", create.detail, create.fix)
        checks.append(create)
        if contacts_missing:
            checks.append(
                Check(
                    HUBSPOT,
                    "hub contact fields missing",
                    "warn",
                    f"{len(contacts_missing)} contact properties missing: "
                    + ", ".join(contacts_missing[:4])
                    + (" …" if len(contacts_missing) > 4 else ""),
                    "the first sync creates them, or run `crmhub fields ensure`",
                )
            )
        if missing:
            checks.append(
                Check(
                    HUBSPOT,
                    "hub fields missing",
                    "warn",
                    f"{len(missing)} hub properties missing: {', '.join(missing[:4])}"
                    + (" …" if len(missing) > 4 else ""),
                    "the first sync creates them, or run `crmhub fields ensure`",
                )
            )
        return checks

    # ---- accounting -----------------------------------------------------------------------
    def usage(self) -> ApiUsage:
        return self.client.usage

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HubSpotConnector:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class HubSpotContactTarget:
    """The connector's write side for *contacts*: what ``unified_model.writeback`` drives.

    Why a separate object with the connector's write interface: the writeback machinery (intents,
    ledger, settlement after a kill, batching) works on one target at a time; the contacts get
    their own, with the same client, budget and rate limiter as the companies.
    """

    def __init__(self, connector: HubSpotConnector, writer: HubSpotWriter) -> None:
        self._connector = connector
        self.writer = writer

    @property
    def enabled(self) -> bool:
        """Whether any contact field is configured (none: the hub writes no contact)."""
        return bool(self.writer.names)

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Set hub fields on contacts: one result per update, in order (batches of 100)."""
        return self.writer.write(updates)

    def intent_batch_size(self, pending: int) -> int:
        return self._connector.intent_batch_size(pending)

    @property
    def write_concurrency(self) -> int:
        return self._connector.write_concurrency

    def ensure_fields(
        self, specs: Sequence[HubFieldSpec], *, dry_run: bool = False
    ) -> list[ProvisionResult]:
        return fields.ensure_fields(
            self._connector.client,
            self._connector.config,
            specs,
            dry_run=dry_run,
            object_type=CONTACTS,
        )

    def read_hub_fields(self, source_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        return self.writer.read_hub_fields(source_ids)

    def usage(self) -> ApiUsage:
        return self._connector.usage()


def _scope_check(name: str, exc: ConnectorError) -> Check:
    if isinstance(exc, MissingScopeError):
        scopes = ", ".join(exc.scopes) or "a scope HubSpot did not name"
        return Check(
            HUBSPOT,
            name,
            "fail",
            f"missing scope {scopes}",
            f"add {scopes} to the private app's scopes (or re-authorise the OAuth app), then "
            "update CRMHUB_HS_ACCESS_TOKEN / CRMHUB_HS_REFRESH_TOKEN",
        )
    return error_check(HUBSPOT, name, exc)


def _probe(name: str, call: Callable[[], Any], scope: str) -> Check:
    """A request HubSpot refuses for a missing scope (403) before it validates the body (400)."""
    try:
        call()
    except MissingScopeError as exc:
        return _scope_check(name, exc)
    except CrmRequestError:
        pass  # the body was refused, so the scope was granted
    except ConnectorError as exc:
        return error_check(HUBSPOT, name, exc)
    except Exception as exc:  # the SDK's 4xx: scope granted, body refused
        if getattr(exc, "status", None) == 403:
            return Check(HUBSPOT, name, "fail", "HTTP 403", f"grant {scope} to the app")
    return Check(HUBSPOT, name, "pass", f"scope {scope} granted")
