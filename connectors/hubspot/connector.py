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
from typing import Any

from connectors.base import ApiUsage, Page, ProvisionResult
from connectors.hubspot import fields
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.limiter import PortalLimiter
from connectors.hubspot.mapping import KIND_SPECS, SPECS, FieldMapping
from connectors.hubspot.reader import HubSpotReader
from connectors.hubspot.writer import HubSpotWriter
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

    def ensure_fields(
        self, specs: Sequence[HubFieldSpec], *, dry_run: bool = False
    ) -> list[ProvisionResult]:
        return fields.ensure_fields(self.client, self.config, specs, dry_run=dry_run)

    def read_hub_fields(self, source_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        return self.writer.read_hub_fields(source_ids)

    # ---- accounting -----------------------------------------------------------------------
    def usage(self) -> ApiUsage:
        return self.client.usage

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HubSpotConnector:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
