"""Incremental reading of one Salesforce object: one keyset query stream that also carries deletes.

Why this shape:

- ``queryAll`` with ``ORDER BY SystemModstamp, Id`` returns changed *and* deleted rows (those in
  the recycle bin, ``IsDeleted = true``) in one stream, so an unchanged object costs exactly one
  call per run and deletes need no second endpoint (``/deleted`` only covers 15 days anyway).
- The position after each page is the last row's ``(SystemModstamp, Id)``; it is the page's
  checkpoint. The stored cursor never moves backwards.
- Each run's first page starts ``overlap_seconds`` before the stored position, because a
  transaction that committed late can carry a SystemModstamp older than rows already read.
  So that the overlap does not hand out the same rows again on every run, the cursor remembers
  the ``(Id, SystemModstamp)`` of the rows it delivered inside that last window (``recent``,
  capped at :data:`RECENT_CAP`; beyond the cap a few duplicates pass, which the store's upsert
  absorbs) and skips exactly those.
- A first sync counts the rows (one ``COUNT()`` call) and switches to Bulk API 2.0 above
  ``bulk_threshold``; its cursor then holds the job and locator until the last chunk.
- Records purged from the recycle bin never show up in ``queryAll``: :meth:`ObjectReader.live_ids`
  serves the periodic full id pass that finds them.

Cursor of one object: ``{"ts": "2026-05-01T07:25:37.000Z", "id": "001...", "recent": {id: ts}}``;
Account also keeps
``hub`` (the hub-owned fields found on Account) and ``hub_checked`` (when describe last looked);
during a Bulk first sync: ``{"bulk": {"job", "locator", "ts", "id"}}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from connectors.errors import CrmRequestError, MappingError
from connectors.records import SALESFORCE, AnyRecord
from connectors.salesforce import bulk, soql
from connectors.salesforce.client import InvalidFieldError, SalesforceClient
from connectors.salesforce.mapping import (
    STANDARD_FIELDS,
    FieldMap,
    field_types,
    iso_ts,
    parse_datetime,
    select_fields,
    to_record,
    typed_csv_row,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
Position = tuple[dt.datetime, str]
#: At most this many delivered rows are remembered for the overlap window.
RECENT_CAP = 500


class Recent:
    """Rows delivered within ``overlap`` of the newest position: skipped when the overlap re-reads them."""

    def __init__(self, entries: dict[str, str] | None, overlap: dt.timedelta) -> None:
        self.entries = dict(entries or {})
        self.overlap = overlap

    def seen(self, row_id: str, ts: str) -> bool:
        return self.entries.get(row_id) == ts

    def add(self, row_id: str, ts: str) -> None:
        self.entries[row_id] = ts

    def pruned(self, newest: dt.datetime) -> dict[str, str]:
        """Entries still inside the window before ``newest``, newest first up to the cap."""
        floor = iso_ts(newest - self.overlap)
        kept = sorted(((ts, rid) for rid, ts in self.entries.items() if ts >= floor), reverse=True)[
            :RECENT_CAP
        ]
        self.entries = {rid: ts for ts, rid in kept}
        return dict(self.entries)


class Schema:
    """What describe said about each object, fetched at most once per connector instance."""

    def __init__(self, client: SalesforceClient) -> None:
        self._client = client
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}

    def fields(self, sf_object: str, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """``{field name: {"type", "updateable"}}`` of one object (one describe call)."""
        if refresh or sf_object not in self._fields:
            described = self._client.call(sf_object, lambda sf: getattr(sf, sf_object).describe())
            self._fields[sf_object] = {
                str(f["name"]): {
                    "type": str(f.get("type") or "string"),
                    "updateable": bool(f.get("updateable")),
                    "length": int(f.get("length") or 0),
                }
                for f in described.get("fields", [])
            }
        return self._fields[sf_object]

    def known(self, sf_object: str) -> bool:
        return sf_object in self._fields

    def forget(self, sf_object: str) -> None:
        self._fields.pop(sf_object, None)


class ObjectReader:
    """Reads one Salesforce object for the connector, page by page."""

    def __init__(
        self,
        client: SalesforceClient,
        field_map: FieldMap,
        schema: Schema,
        hub_names: dict[str, str],
    ) -> None:
        self.client = client
        self.config = client.config
        self.field_map = field_map
        self.schema = schema
        #: Configured hub key -> Account field name (whether or not it exists yet).
        self.hub_names = hub_names

    # ---- validation ------------------------------------------------------------------------
    def validate(self, sf_object: str) -> None:
        """Check every field read from ``sf_object`` exists (one describe, cached)."""
        described = self.schema.fields(sf_object)
        lowered = {name.lower() for name in described}
        for key, name in self.field_map.fields_for(sf_object).items():
            if name.lower() not in lowered:
                raise self.field_map.unknown_field_error(key, sf_object, name)
        for name in STANDARD_FIELDS[sf_object]:
            if name.lower() not in lowered:
                raise _standard_field_missing(sf_object, name)

    def present_hub_fields(self) -> list[str]:
        """Configured hub fields that exist on Account, per describe (cached)."""
        described = {n.lower() for n in self.schema.fields("Account")}
        return [n for n in self.hub_names.values() if n.lower() in described]

    # ---- incremental read ------------------------------------------------------------------
    def read(
        self, sf_object: str, cursor: dict[str, Any] | None
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        """Pages of records and the object's cursor after each page."""
        cursor = dict(cursor or {})
        if "bulk" in cursor:
            yield from self._resume_bulk(sf_object, cursor)
            return
        if cursor.get("ts") is None:
            yield from self._first_sync(sf_object, cursor)
            return
        extra = self._hub_state(sf_object, cursor, first_sync=False)
        stored = (_ts(cursor["ts"]), str(cursor.get("id") or ""))
        since = stored[0] - self._overlap
        recent = Recent(cursor.get("recent"), self._overlap)
        yield from self._rest(
            sf_object, since=since, after=None, stored=stored, extra=extra, recent=recent
        )

    def _first_sync(
        self, sf_object: str, cursor: dict[str, Any]
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        self.validate(sf_object)
        extra = self._hub_state(sf_object, cursor, first_sync=True)
        count = self.client.call(sf_object, lambda sf: sf.query(soql.count_rows(sf_object)))[
            "totalSize"
        ]
        if int(count) > self.config.bulk_threshold:
            yield from self._bulk(sf_object, extra, job=None, locator="", best=None)
            return
        yield from self._rest(
            sf_object,
            since=None,
            after=None,
            stored=None,
            extra=extra,
            recent=Recent(None, self._overlap),
        )

    def _rest(
        self,
        sf_object: str,
        *,
        since: dt.datetime | None,
        after: Position | None,
        stored: Position | None,
        extra: dict[str, Any],
        recent: Recent,
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        """Keyset pages until a short page; ``stored`` is the position already checkpointed."""
        limit = self.config.page_size
        first = True
        while True:
            query = soql.changed_since(
                sf_object,
                self._fields(sf_object, extra),
                since=since if first else None,
                after=after,
                limit=limit,
            )
            rows = self._query(sf_object, query, extra)
            if rows is None:  # a hub field vanished: the state was refreshed, ask again
                continue
            records: list[AnyRecord] = []
            for row in rows:
                row_id, ts = str(row["Id"]), iso_ts(_ts(row["SystemModstamp"]))
                if not recent.seen(row_id, ts):
                    records.append(self._record(sf_object, row, extra))
                    recent.add(row_id, ts)
            if rows:
                last = rows[-1]
                after = (_ts(last["SystemModstamp"]), str(last["Id"]))
                if stored is None or after > stored:
                    stored = after
            position = stored or (EPOCH, "")
            cursor = {"ts": iso_ts(position[0]), "id": position[1], **extra}
            window = recent.pruned(position[0])
            if window:
                cursor["recent"] = window
            yield records, cursor
            if len(rows) < limit:
                return
            first = False

    def _query(
        self, sf_object: str, query: str, extra: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """All rows of one query (one call unless Salesforce splits the response)."""
        try:
            result = self.client.call(sf_object, lambda sf: sf.query(query, include_deleted=True))
            rows = list(result["records"])
            while not result.get("done", True):
                next_url = result["nextRecordsUrl"]
                result = self.client.call(sf_object, partial(_query_more, url=next_url))
                rows.extend(result["records"])
            return rows
        except InvalidFieldError as exc:
            self._on_invalid_field(sf_object, exc, extra)
            return None

    def _on_invalid_field(
        self, sf_object: str, exc: InvalidFieldError, extra: dict[str, Any]
    ) -> None:
        name = exc.field_name or ""
        if sf_object == "Account" and name.lower() in {h.lower() for h in extra.get("hub", [])}:
            # A hub field was deleted (or hidden) since the last describe: look again.
            self.schema.forget("Account")
            extra["hub"] = self.present_hub_fields()
            extra["hub_checked"] = self._now_iso()
            return
        key = self.field_map.key_for(sf_object, name)
        if key is not None:
            raise self.field_map.unknown_field_error(key, sf_object, name) from None
        raise _standard_field_missing(sf_object, name or "(unnamed)") from None

    # ---- Bulk API 2.0 first sync ------------------------------------------------------------
    def _resume_bulk(
        self, sf_object: str, cursor: dict[str, Any]
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        state = cursor.pop("bulk")
        self.validate(sf_object)
        extra = self._hub_state(sf_object, cursor, first_sync=True)
        best = (_ts(state["ts"]), str(state["id"])) if state.get("ts") else None
        try:
            yield from self._bulk(
                sf_object,
                extra,
                job=str(state["job"]),
                locator=str(state["locator"]),
                best=best,
                recent_entries=state.get("recent"),
            )
        except CrmRequestError as exc:
            if exc.status != 404:
                raise
            # The job expired (Salesforce keeps results for 7 days): extract again.
            yield from self._bulk(sf_object, extra, job=None, locator="", best=best)

    def _bulk(
        self,
        sf_object: str,
        extra: dict[str, Any],
        *,
        job: str | None,
        locator: str,
        best: Position | None,
        recent_entries: dict[str, str] | None = None,
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        fields = self._fields(sf_object, extra)
        if job is None:
            job = bulk.create_query_job(
                self.client, sf_object, soql.full_extract(sf_object, fields)
            )
            bulk.wait_for_query_job(self.client, sf_object, job)
        types = field_types(
            sf_object,
            {
                "fields": [
                    {"name": n, "type": f["type"]} for n, f in self.schema.fields(sf_object).items()
                ]
            },
        )
        recent = Recent(recent_entries, self._overlap)
        while True:
            chunk = bulk.fetch_chunk(self.client, sf_object, job, locator)
            records: list[AnyRecord] = []
            for raw in chunk.rows:
                row = typed_csv_row(raw, types)
                records.append(self._record(sf_object, row, extra))
                position = (_ts(row["SystemModstamp"]), str(row["Id"]))
                recent.add(position[1], iso_ts(position[0]))
                if best is None or position > best:
                    best = position
            locator = chunk.next_locator
            done = best or (EPOCH, "")
            window = recent.pruned(done[0])
            if locator:
                state = {"job": job, "locator": locator, "ts": iso_ts(done[0]), "id": done[1]}
                yield records, {"bulk": {**state, "recent": window}, **extra}
                continue
            cursor = {"ts": iso_ts(done[0]), "id": done[1], **extra}
            if window:
                cursor["recent"] = window
            yield records, cursor
            return

    # ---- hard deletes ----------------------------------------------------------------------
    def live_ids(self, sf_object: str, seen: set[str]) -> Iterator[int]:
        """Add every live id of the object to ``seen``, one keyset page per call."""
        last: str | None = None
        limit = self.config.reconcile_page_size
        while True:
            query = soql.ids_after(sf_object, last, limit)
            rows = self.client.call(sf_object, partial(_query, soql=query))["records"]
            seen.update(str(r["Id"]) for r in rows)
            yield len(rows)
            if len(rows) < limit:
                return
            last = str(rows[-1]["Id"])

    # ---- helpers ---------------------------------------------------------------------------
    @property
    def _overlap(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.config.overlap_seconds)

    def _fields(self, sf_object: str, extra: dict[str, Any]) -> list[str]:
        hub = tuple(extra.get("hub", ())) if sf_object == "Account" else ()
        return select_fields(sf_object, self.field_map, hub)

    def _record(self, sf_object: str, row: dict[str, Any], extra: dict[str, Any]) -> AnyRecord:
        hub: dict[str, str] = {}
        if sf_object == "Account":
            present = {n.lower() for n in extra.get("hub", [])}
            hub = {k: n for k, n in self.hub_names.items() if n.lower() in present}
        return to_record(sf_object, row, self.field_map, hub)

    def _hub_state(
        self, sf_object: str, cursor: dict[str, Any], *, first_sync: bool
    ) -> dict[str, Any]:
        """Account only: which hub fields to read, re-checked while some are still missing."""
        if sf_object != "Account" or not self.hub_names:
            return {}
        known = list(cursor.get("hub", []))
        checked = cursor.get("hub_checked")
        missing = len(known) < len(self.hub_names)
        stale = checked is None or (self._now() - _ts(checked)) > dt.timedelta(
            hours=self.config.hub_describe_interval_hours
        )
        if first_sync or self.schema.known("Account") or (missing and stale):
            return {"hub": self.present_hub_fields(), "hub_checked": self._now_iso()}
        return {"hub": known, "hub_checked": checked}

    def _now(self) -> dt.datetime:
        # The org's clock from the last response's Date header. Logging in (due anyway) gives
        # the first one; only a bare session id falls back to the local clock (a coarse
        # re-check interval, never a cursor).
        if self.client.usage.server_time is None:
            _ = self.client.sf
        return self.client.usage.server_time or dt.datetime.now(dt.UTC)

    def _now_iso(self) -> str:
        return iso_ts(self._now())


def _query(sf: Any, *, soql: str) -> Any:
    return sf.query(soql)


def _query_more(sf: Any, *, url: str) -> Any:
    return sf.query_more(url, identifier_is_url=True)


def _ts(value: Any) -> dt.datetime:
    parsed = parse_datetime(value)
    assert parsed is not None
    return parsed


def _standard_field_missing(sf_object: str, name: str) -> MappingError:
    return MappingError(
        f"Salesforce object {sf_object} has no readable field {name}, which the hub reads; "
        "grant the integration user's profile or permission set read access to it (field-level "
        "security) or check the API version (api_version)",
        crm=SALESFORCE,
    )


Reader = Callable[[str, dict[str, Any] | None], Iterator[tuple[list[AnyRecord], dict[str, Any]]]]
