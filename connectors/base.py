"""The one interface both CRM connectors implement, and what they report.

Why an interface: the assets and the benchmarks drive Salesforce and HubSpot the same way (read an
object kind since a cursor, write a batch of hub-owned fields, make sure those fields exist, report
API usage), so everything right of the connectors stays CRM-agnostic and a third CRM would be one
more folder here.

Cursors are plain JSON-able dicts owned by the connector that produced them; the store keeps them
verbatim and hands them back. A connector yields a :class:`Page` per unit of work; the caller
persists the page's records and then its cursor, so a killed run resumes after the last stored page.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.records import AnyRecord, Crm, FieldUpdate, HubFieldSpec, ObjectKind, WriteResult


@dataclass(frozen=True)
class Page:
    """Records read in one step and the cursor to store once they are saved."""

    records: list[AnyRecord]
    cursor: dict[str, Any]
    #: True when this page ends a full pass (first sync or reconciliation) over the object:
    #: the caller may then mark records not seen in the pass as deleted (hard-delete detection).
    full_pass_complete: bool = False
    #: For a completed full id pass: every live source id seen during the pass.
    seen_ids: frozenset[str] | None = None
    #: About how many records this pass reads in all, when the CRM said so without an extra
    #: call (HubSpot's search ``total``, Salesforce's record count of a first sync): progress
    #: displays show an ETA from it. None: unknown.
    total: int | None = None


@dataclass
class ApiUsage:
    """API calls spent by one connector instance, and the CRM's own quota figures."""

    crm: Crm
    calls: int = 0
    calls_by_object: dict[str, int] = field(default_factory=dict)
    #: Daily quota as last reported by the CRM (Sforce-Limit-Info / X-HubSpot-RateLimit-Daily*).
    quota_used: int | None = None
    quota_max: int | None = None
    #: The CRM's clock (HTTP ``Date`` header of the last response): cursors use it, never ours.
    server_time: dt.datetime | None = None

    #: counts come from several threads when a writeback keeps several calls in flight
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def count(self, obj: str, n: int = 1) -> None:
        with self._lock:
            self.calls += n
            self.calls_by_object[obj] = self.calls_by_object.get(obj, 0) + n


@dataclass(frozen=True)
class ProvisionResult:
    """What ``ensure_fields`` found or did for one hub field."""

    key: str
    crm_name: str
    action: str  # "exists", "created", "would_create", "not_writable"
    detail: str = ""


class Connector(Protocol):
    """A CRM as the hub sees it."""

    crm: Crm

    def read(self, kind: ObjectKind, cursor: dict[str, Any] | None) -> Iterator[Page]:
        """Changed (and deleted, as tombstones) records of one kind since ``cursor``.

        ``None`` means first sync: read everything. Pages come in cursor order; each page's
        cursor is safe to store once its records are stored.
        """
        ...

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Set hub-owned fields on account/company records; one result per update, in order."""
        ...

    def ensure_fields(
        self, specs: Sequence[HubFieldSpec], *, dry_run: bool = False
    ) -> list[ProvisionResult]:
        """Create the hub's own fields where missing (idempotent)."""
        ...

    def read_hub_fields(self, source_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """What the CRM currently holds in the hub's fields (drift detection, and settling the
        write intents of a run killed between sending a batch and storing its outcome)."""
        ...

    def intent_batch_size(self, pending: int) -> int:
        """How many of ``pending`` updates make one unit of work (one batch call, one Bulk job):
        the hub commits write intents per unit, before it is sent."""
        ...

    def usage(self) -> ApiUsage: ...
