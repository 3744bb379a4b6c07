"""``SalesforceConnector``: one Salesforce org as the hub sees it (the ``Connector`` protocol).

What it does for the rest of the hub: read every object kind incrementally with checkpoints
(``read``), find records purged for good (``reconcile_ids``), write the hub's own fields onto
Accounts (``write``), create those fields where missing (``ensure_fields``), read them back for
drift detection (``read_hub_fields``), and report every API call it spent (``usage``).

Salesforce objects per kind: owner -> User, account -> Account and AccountHistory (owner
changes, one query per run: when each account got its current owner), contact -> Contact and Lead,
deal -> Opportunity, deal_stage -> OpportunityHistory, email -> EmailMessage, ticket -> Case,
activity -> Task and Event. Cursor of a kind: the object's cursor (see ``reader.py``); for
contact and activity, whose kinds span two objects, ``{"Contact": {...}, "Lead": {...}}`` and
``{"Task": {...}, "Event": {...}}`` (a single-object cursor stored before activity read Event is
taken as Task's, so upgrading costs no re-read). A connector instance asks
``limits/recordCount`` at most once, for all these objects, when the first first sync needs to
choose between REST and Bulk API 2.0 (see ``reader.py``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

from connectors.base import ApiUsage, Page, ProvisionResult
from connectors.diagnostics import (
    Check,
    budget_check,
    check_host,
    error_check,
    host_of,
    summarise,
)
from connectors.errors import ConnectorError, CrmRequestError
from connectors.records import SALESFORCE, Crm, FieldUpdate, HubFieldSpec, WriteResult
from connectors.salesforce import soql
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceConfig, SessionIdAuth
from connectors.salesforce.fields import (
    HubField,
    HubFieldNames,
    custom_field_metadata,
    invisible_detail,
    not_writable_detail,
)
from connectors.salesforce.mapping import (
    HISTORY_OBJECTS,
    KIND_OBJECTS,
    MAPPABLE,
    FieldMap,
    hub_value,
    iso_ts,
)
from connectors.salesforce.reader import CountsSource, ObjectReader, RecordCounts, Schema
from connectors.salesforce.writer import AccountWriter

ACCOUNT = "Account"


class SalesforceConnector:
    """Reads, writes and provisions one Salesforce org. Build one per run; ``close`` it after."""

    crm: Crm = SALESFORCE

    def __init__(
        self, config: SalesforceConfig, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.config = config
        self._field_map = FieldMap(config.field_map)
        for key, name in self._field_map.entries.items():
            if name:
                soql.check_identifier(name, f"field mapping '{key}'")
        self._hub = HubFieldNames(config.hub_fields, config.hub_field_names)
        self._client = SalesforceClient(config, sleep=sleep)
        self._schema = Schema(self._client)
        # Every object the connector reads: one record-count call sizes all their first syncs.
        objects = [o for kind_objects in KIND_OBJECTS.values() for o in kind_objects]
        self._counts = RecordCounts(self._client, objects)
        self._reader = ObjectReader(
            self._client, self._field_map, self._schema, self._hub.names(), self._counts
        )
        self._writer = AccountWriter(self._client, self._hub.fields)

    # ---- reading ---------------------------------------------------------------------------
    def record_counts(self) -> dict[str, int] | None:
        """The org's record counts this connector fetched ({}: unavailable; None: not asked).

        Why public: under the multiprocess executor every extraction step builds its own
        connector, and each would spend the ``limits/recordCount`` call again. The step that
        made it hands the answer on (:meth:`use_record_counts`), so a run asks once.
        """
        return self._counts.fetched()

    def use_record_counts(self, counts: dict[str, int]) -> None:
        """Size first syncs from counts an earlier step of the same run fetched."""
        self._counts.prime(counts)

    def share_record_counts(self, source: CountsSource) -> None:
        """Fetch the record counts through ``source`` when a first sync needs them.

        Why: steps of one run that start their first syncs together would each make the call
        (they find nothing to :meth:`use_record_counts` from yet); ``source`` serialises them
        across processes, so the first one fetches and the others take its answer.
        """
        self._counts.share(source)

    def read(self, kind: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        """Changed and deleted records of one kind since ``cursor`` (None: everything)."""
        objects = KIND_OBJECTS.get(kind)
        if not objects:
            return
        state = _split(objects, cursor)
        for sf_object in objects:
            first_sync = not state.get(sf_object)
            for records, object_cursor in self._reader.read(sf_object, state.get(sf_object)):
                state[sf_object] = object_cursor
                total = None
                if first_sync:  # the org's record count, when the reader already asked for it
                    counts = [self._counts.known(o) for o in objects]
                    known = [c for c in counts if c is not None]
                    total = sum(known) if len(known) == len(counts) else None
                yield Page(records=records, cursor=_join(objects, state), total=total)

    def reconcile_ids(self, kind: str) -> Iterator[Page]:
        """A full pass over the live ids of a kind; the last page lists them all.

        Why: a record emptied from the recycle bin (or hard-deleted) never appears in
        ``queryAll`` again; only its absence from a full id pass tells. Costs one call per 2000
        ids; the assets run it every ``reconcile_interval_hours``.
        """
        # History rows are never purged on their own: only the records' own ids need the pass.
        objects = tuple(o for o in KIND_OBJECTS.get(kind, ()) if o not in HISTORY_OBJECTS)
        if not objects:
            return
        seen: set[str] = set()
        for sf_object in objects:
            for _ in self._reader.live_ids(sf_object, seen):
                pass
        server = self._client.usage.server_time
        yield Page(
            records=[],
            cursor={"reconciled_at": iso_ts(server) if server else None, "objects": list(objects)},
            full_pass_complete=True,
            seen_ids=frozenset(seen),
        )

    def reconcile_due(self, last_reconciled_at: dt.datetime | None) -> bool:
        """Whether the hard-delete pass is due (by ``reconcile_interval_hours``)."""
        if last_reconciled_at is None:
            return True
        now = self._client.usage.server_time or dt.datetime.now(dt.UTC)
        return now - last_reconciled_at >= dt.timedelta(hours=self.config.reconcile_interval_hours)

    def validate(self) -> None:
        """Check every mapped field exists (one describe per object with mapped fields)."""
        for sf_object in sorted({m.sf_object for m in MAPPABLE.values()}):
            if self._field_map.fields_for(sf_object):
                self._reader.validate(sf_object)

    def diagnose(self, specs: Sequence[HubFieldSpec], *, deep: bool = True) -> list[Check]:
        """What ``crmhub doctor`` reports for this org; nothing is written.

        Host (DNS, TLS), login, read access to every synced object (describe), every mapped
        field, and with ``deep`` the hub's fields (exist, writable) and the API budget left.
        Without ``deep`` (the sync's preflight): login and the objects with mapped fields only. Stops
        at the first layer that fails: a later check would only repeat the cause.
        """
        config = self.config
        checks = [
            check_host(
                SALESFORCE,
                "Salesforce",
                config.instance_url,
                variable="CRMHUB_SF_INSTANCE_URL",
                ca_variable="CRMHUB_SF_CA_BUNDLE",
                ca_bundle=config.ca_bundle,
            )
        ]
        if host_of(config.token_url)[0] != host_of(config.instance_url)[0] and not isinstance(
            config.auth, SessionIdAuth
        ):
            checks.append(
                check_host(
                    SALESFORCE,
                    "Salesforce login",
                    config.token_url,
                    variable="CRMHUB_SF_TOKEN_URL",
                    ca_variable="CRMHUB_SF_CA_BUNDLE",
                    ca_bundle=config.ca_bundle,
                )
            )
        if any(c.status == "fail" for c in checks):
            return checks
        try:
            _ = self._client.sf
        except ConnectorError as exc:
            return [*checks, error_check(SALESFORCE, "credentials", exc)]
        checks.append(
            Check(SALESFORCE, "credentials", "pass", f"logged in ({type(config.auth).__name__})")
        )
        readable: list[str] = []
        described: dict[str, dict[str, dict[str, Any]]] = {}
        objects = list(dict.fromkeys(o for objs in KIND_OBJECTS.values() for o in objs))
        if not deep:  # preflight: only the objects whose mapped fields must be checked
            objects = [o for o in objects if self._field_map.fields_for(o)]
        for sf_object in objects:
            try:
                described[sf_object] = _lower(self._schema.fields(sf_object))
                readable.append(sf_object)
            except ConnectorError as exc:
                checks.append(error_check(SALESFORCE, f"read {sf_object}", exc))
        if readable:
            checks.append(summarise(SALESFORCE, "read objects", readable, "objects readable"))
        mapped: list[str] = []
        for key, name in self._field_map.entries.items():
            sf_object = self._field_map.object_of(key)
            if not name or sf_object not in described:
                continue
            if name.lower() in described[sf_object]:
                mapped.append(f"{sf_object}.{name}")
            else:
                checks.append(
                    Check(
                        SALESFORCE,
                        f"mapped field {key}",
                        "fail",
                        f"{sf_object}.{name} does not exist or is hidden by field-level security",
                        f"fix salesforce.read.{key} in mapping.yaml, or create the field / grant "
                        "the integration user read access to it",
                    )
                )
        if mapped:
            checks.append(summarise(SALESFORCE, "mapped fields", mapped, "mapped fields exist"))
        if deep and ACCOUNT in described:
            checks.extend(self._diagnose_hub_fields(specs))
            usage = self._client.usage
            checks.append(
                budget_check(SALESFORCE, usage.quota_used, usage.quota_max, config.budget_share)
            )
        return checks

    def _diagnose_hub_fields(self, specs: Sequence[HubFieldSpec]) -> list[Check]:
        try:
            results = self.ensure_fields(specs, dry_run=True)
        except ConnectorError as exc:
            return [error_check(SALESFORCE, "hub fields", exc)]
        checks: list[Check] = []
        ok = [r.crm_name for r in results if r.action == "exists"]
        missing = [r.crm_name for r in results if r.action == "would_create"]
        if ok:
            checks.append(
                summarise(SALESFORCE, "hub fields", ok, "hub fields exist and are writable")
            )
        for r in results:
            if r.action == "not_writable":
                checks.append(
                    Check(SALESFORCE, f"hub field {r.crm_name}", "fail", "not writable", r.detail)
                )
        if missing:
            checks.append(
                Check(
                    SALESFORCE,
                    "create hub fields",
                    "warn",
                    f"{len(missing)} hub fields missing on Account: {', '.join(missing[:4])}"
                    + (" …" if len(missing) > 4 else ""),
                    "the first sync creates them (the integration user needs 'Customize "
                    "Application'), or run `crmhub fields ensure`",
                )
            )
        return checks

    # ---- writing ---------------------------------------------------------------------------
    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Set hub-owned fields on Accounts; one result per update, in order."""
        return self._writer.write(updates)

    def write_stream(self, updates: Iterable[FieldUpdate]) -> list[WriteResult]:
        """Set hub-owned fields on many Accounts through one Bulk API job, consuming lazily.

        The hub uses it when :meth:`intent_batch_size` makes the whole set one unit; one
        result per update, in no particular order.
        """
        return self._writer.write_stream(updates)

    def intent_batch_size(self, pending: int) -> int:
        """Records per unit of work: one Collections call (200), or all of them when the set
        goes to one Bulk API job (the hub records write intents per unit)."""
        if pending > self.config.bulk_write_threshold:
            return pending
        return self.config.write_batch_size

    def ensure_fields(
        self, specs: Sequence[HubFieldSpec], *, dry_run: bool = False
    ) -> list[ProvisionResult]:
        """Create missing hub fields on Account through the Tooling API (idempotent)."""
        wanted = [HubField(spec, self._hub.name_for(spec.key)) for spec in specs]
        for hub_field in wanted:
            custom_field_metadata(hub_field.spec)  # refuse unknown kinds before any call
        described = _lower(self._schema.fields(ACCOUNT, refresh=True))
        results: dict[str, ProvisionResult] = {}
        created: list[HubField] = []
        for hub_field in wanted:
            key, name = hub_field.spec.key, hub_field.name
            present = described.get(name.lower())
            if present is not None:
                results[key] = _existing(key, name, present)
            elif dry_run:
                results[key] = ProvisionResult(key, name, "would_create", f"Account.{name}")
            else:
                self._create_field(hub_field)
                created.append(hub_field)
        if created:
            described = _lower(self._schema.fields(ACCOUNT, refresh=True))
            for hub_field in created:
                key, name = hub_field.spec.key, hub_field.name
                present = described.get(name.lower())
                if present is None:
                    results[key] = ProvisionResult(
                        key, name, "not_writable", invisible_detail(name)
                    )
                elif not present["updateable"]:
                    results[key] = ProvisionResult(
                        key, name, "not_writable", not_writable_detail(name)
                    )
                else:
                    results[key] = ProvisionResult(key, name, "created", f"Account.{name}")
        return [results[h.spec.key] for h in wanted]

    def _create_field(self, hub_field: HubField) -> None:
        body = {
            "FullName": f"{ACCOUNT}.{hub_field.name}",
            "Metadata": custom_field_metadata(hub_field.spec),
        }
        try:
            self._client.call(
                ACCOUNT,
                lambda sf: sf.toolingexecute("sobjects/CustomField", method="POST", data=body),
            )
        except CrmRequestError as exc:
            if exc.code != "DUPLICATE_DEVELOPER_NAME":  # created meanwhile: fine
                raise

    def read_hub_fields(self, source_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """Current values of the hub's fields on these Accounts (deleted ones left out)."""
        described = _lower(self._schema.fields(ACCOUNT))
        present = {
            key: f.name for key, f in self._hub.fields.items() if f.name.lower() in described
        }
        if not present or not source_ids:
            return {}
        out: dict[str, dict[str, str | None]] = {}
        fields = ",".join(["Id", *present.values()])
        size = self.config.retrieve_batch_size
        for start in range(0, len(source_ids), size):
            chunk = list(source_ids[start : start + size])
            params = {"ids": ",".join(chunk), "fields": fields}
            rows = self._client.call(ACCOUNT, partial(_retrieve, params=params))
            for row in rows or []:
                if row is None:
                    continue
                out[str(row["Id"])] = {
                    key: hub_value(row.get(name)) for key, name in present.items()
                }
        return out

    # ---- accounting ------------------------------------------------------------------------
    def usage(self) -> ApiUsage:
        """Calls spent by this connector (per object) and the org's daily quota figures."""
        return self._client.usage

    def close(self) -> None:
        self._client.close()


def _retrieve(sf: Any, *, params: dict[str, str]) -> Any:
    return sf.restful(f"composite/sobjects/{ACCOUNT}", params=params)


def _split(objects: tuple[str, ...], cursor: dict[str, Any] | None) -> dict[str, Any]:
    if not cursor:
        return {}
    if objects[0] not in cursor and (len(objects) == 1 or "ts" in cursor or "bulk" in cursor):
        # One object's own cursor: the kind's only object, or the first object of a kind that
        # has gained objects since (activity read Task alone before Event).
        return {objects[0]: cursor}
    return {o: cursor[o] for o in objects if cursor.get(o)}


def _join(objects: tuple[str, ...], state: dict[str, Any]) -> dict[str, Any]:
    if len(objects) == 1:
        return dict(state[objects[0]])
    return {o: dict(state[o]) for o in objects if o in state}


def _lower(fields: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name.lower(): f for name, f in fields.items()}


def _existing(key: str, name: str, described: dict[str, Any]) -> ProvisionResult:
    if described["updateable"]:
        return ProvisionResult(key, name, "exists", f"Account.{name}")
    return ProvisionResult(key, name, "not_writable", not_writable_detail(name))


__all__ = ["SalesforceConnector"]
