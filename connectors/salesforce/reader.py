"""Incremental reading of one Salesforce object: one keyset query stream that also carries deletes.

Why this shape:

- ``queryAll`` with ``ORDER BY SystemModstamp, Id`` returns changed *and* deleted rows (those in
  the recycle bin, ``IsDeleted = true``) in one stream, so an unchanged object costs exactly one
  call per run and deletes need no second endpoint (``/deleted`` only covers 15 days anyway).
- The position after each page is the last row's ``(SystemModstamp, Id)``; it is the page's
  checkpoint. The stored cursor never moves backwards.
- Late commits: a transaction that commits late can carry a SystemModstamp older than rows
  already read, at most ``overlap_seconds`` older than the moment it becomes visible. A row the
  previous run could not see was therefore still uncommitted when that run sent its first query,
  so its SystemModstamp lies after ``read_at - overlap``, where ``read_at`` is a time the org's
  clock had certainly reached before that query (from the ``Date`` header of an earlier
  response, see :meth:`SalesforceClient.org_time_floor`), kept in the cursor. The next run
  starts at ``min(position, read_at - overlap)``: a run long after the last change re-reads
  nothing and continues at the stored keyset position; only rows changed within the overlap
  before a run's start are read again. Those the run delivered are remembered in ``recent``
  (``{Id: SystemModstamp}``, capped at :data:`RECENT_CAP`; beyond the cap a few duplicates pass,
  which the store's upsert absorbs) and skipped. A cursor without ``read_at`` (written before it
  existed, or by a run that had no ``Date`` yet) starts ``overlap`` before its position.
- A first sync chooses REST or Bulk API 2.0 by the object's size. The sizes of every object the
  connector reads come from one ``limits/recordCount`` call per connector instance
  (:class:`RecordCounts`, asked on the first first sync that needs a size). Those counts are
  approximate (a snapshot Salesforce refreshes now and then, without the recycle bin), so they
  only ever save a call: a count above ``bulk_threshold`` goes straight to one Bulk job for the
  whole object; a count at or below it, a missing count, or a failed call (no "View Setup and
  Configuration" permission, an API version before 40.0) leaves the choice to the first REST
  page, read with ``LIMIT max(bulk_threshold, page_size) + 1``: its ``totalSize`` (the rows that
  query matches) is authoritative, tells whether the object holds more than ``bulk_threshold``
  rows and more than one page, and the limit keeps the ordered query cheap on huge objects.
  Above ``bulk_threshold`` the rest (strictly after that page's last position, so no row is read
  twice and none is skipped) comes from one Bulk API 2.0 job; the cursor then holds the job and
  locator until the last chunk. Otherwise REST keyset pages continue.
- Field history objects (``AccountHistory``, the owner changes) have no SystemModstamp: a row is
  written once and never changes, so their position is ``(CreatedDate, Id)``, with the same
  overlap logic, and every query on them carries its fixed filter (``Field = 'Owner'``): one
  query per run reads only the owner changes since the last one.
- Records purged from the recycle bin never show up in ``queryAll``: :meth:`ObjectReader.live_ids`
  serves the periodic full id pass that finds them.

Cursor of one object: ``{"ts": "2026-05-01T07:25:37.000Z", "id": "001...", "read_at": "...",
"recent": {id: ts}}``; Account also keeps ``hub`` (the hub-owned fields found on Account) and
``hub_checked`` (when describe last looked); during a Bulk first sync:
``{"bulk": {"job", "locator", "from": {"ts", "id"}, "ts", "id", "read_at", "recent"}}`` (``job``
None until the job is created; ``from`` is where the job starts).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from connectors.errors import CrmRequestError, MappingError, MissingScopeError, TransientError
from connectors.records import SALESFORCE, AnyRecord
from connectors.salesforce import bulk, soql
from connectors.salesforce.client import InvalidFieldError, SalesforceClient, safe_code
from connectors.salesforce.mapping import (
    HISTORY_OBJECTS,
    STANDARD_FIELDS,
    FieldMap,
    cursor_field,
    field_types,
    iso_ts,
    parse_datetime,
    select_fields,
    to_record,
    typed_csv_row,
    wanted_row,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
Position = tuple[dt.datetime, str]
#: At most this many delivered rows are remembered for the overlap window.
RECENT_CAP = 500
#: ``usage().calls_by_object`` bucket of the ``limits/recordCount`` call.
RECORD_COUNT = "recordCount"

log = logging.getLogger(__name__)


class Recent:
    """Rows delivered inside the overlap window: skipped when the next run's overlap re-reads them.

    ``before`` (from the cursor) is what this run skips; it is never pruned during the run.
    ``entries`` is what the next run will skip: ``before`` plus every row read now, pruned after
    each page to the next run's window (so memory stays at the cap plus one page).
    """

    def __init__(self, entries: dict[str, str] | None) -> None:
        self.before = dict(entries or {})
        self.entries = dict(self.before)

    def seen(self, row_id: str, ts: str) -> bool:
        return self.before.get(row_id) == ts

    def add(self, row_id: str, ts: str) -> None:
        self.entries[row_id] = ts

    def pruned(self, floor: dt.datetime) -> dict[str, str]:
        """Entries after ``floor`` (where the next run starts), newest first up to the cap."""
        low = iso_ts(floor)
        kept = sorted(((ts, rid) for rid, ts in self.entries.items() if ts > low), reverse=True)[
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


#: Where the counts come from when several connectors of one run need them: called with the
#: connector's own fetch (one ``limits/recordCount`` call), it returns the counts, from an
#: earlier fetch of the same run when there was one. Why: under the multiprocess executor the
#: steps of a run each build a connector, and several may start their first syncs together.
CountsSource = Callable[[Callable[[], dict[str, int]]], dict[str, int]]


class RecordCounts:
    """Approximate row counts of the objects the connector reads: one call per connector instance.

    Why: a first sync must know whether an object is large enough for Bulk API 2.0 before its
    first read; ``GET limits/recordCount?sObjects=...`` tells it for every object at once,
    instead of one sizing page per object. The call is made on the first :meth:`count`, counted
    like every other call (bucket :data:`RECORD_COUNT`), and its answer (or its failure) is kept
    for the connector's life. An object missing from the answer (no records, or not counted by
    Salesforce) has no count. A failure that is not about the session or the API quota (403
    without the "View Setup and Configuration" permission, 404 before API 40.0, a server error
    after the retries) is logged once at info level and leaves every count unknown: the first
    syncs then size each object by its first REST page, never fail for it.
    """

    def __init__(self, client: SalesforceClient, objects: Sequence[str]) -> None:
        self._client = client
        self._objects = tuple(dict.fromkeys(objects))
        self._counts: dict[str, int] | None = None
        self._shared: CountsSource | None = None

    def known(self, sf_object: str) -> int | None:
        """The count if it was already fetched (never spends a call: for progress displays)."""
        return (self._counts or {}).get(sf_object)

    def fetched(self) -> dict[str, int] | None:
        """What the one call answered ({} when it failed); None before it was made."""
        return None if self._counts is None else dict(self._counts)

    def prime(self, counts: dict[str, int]) -> None:
        """Take the counts another connector of the same run fetched (no call of its own)."""
        if self._counts is None:
            self._counts = {str(k): int(v) for k, v in counts.items()}

    def share(self, source: CountsSource) -> None:
        """Fetch through ``source`` when the counts are first needed (see :data:`CountsSource`)."""
        self._shared = source

    def count(self, sf_object: str) -> int | None:
        """The approximate number of live rows of ``sf_object``; None when unknown."""
        if self._counts is None:
            counts = self._shared(self._fetch) if self._shared is not None else self._fetch()
            self._counts = {str(k): int(v) for k, v in counts.items()}
        return self._counts.get(sf_object)

    def _fetch(self) -> dict[str, int]:
        params = {"sObjects": ",".join(self._objects)}
        try:
            answer = self._client.call(
                RECORD_COUNT, lambda sf: sf.restful("limits/recordCount", params=params)
            )
        except (MissingScopeError, CrmRequestError, TransientError) as exc:
            log.info(
                "Salesforce record counts (limits/recordCount) unavailable: %s. Each first sync "
                "sizes its object by its first REST page instead (one call more per object "
                "large enough for Bulk API 2.0).",
                _why_no_counts(exc),
            )
            return {}
        return _record_counts(answer)


class ObjectReader:
    """Reads one Salesforce object for the connector, page by page."""

    def __init__(
        self,
        client: SalesforceClient,
        field_map: FieldMap,
        schema: Schema,
        hub_names: dict[str, str],
        counts: RecordCounts | None = None,
    ) -> None:
        self.client = client
        self.config = client.config
        self.field_map = field_map
        self.schema = schema
        #: Configured hub key -> Account field name (whether or not it exists yet).
        self.hub_names = hub_names
        #: Approximate object sizes for first syncs (None: always size by the first REST page).
        self.counts = counts

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
        previous = _ts(cursor["read_at"]) if cursor.get("read_at") else None
        floor = (previous if previous is not None else stored[0]) - self._overlap
        # Nothing can have committed late behind the position: continue right after it.
        since, after = (None, stored) if floor >= stored[0] else (floor, None)
        # Both the previous run's read time and the org clock now are lower bounds of this
        # run's first snapshot; the later one keeps the next window smallest.
        now = self.client.org_time_floor()
        read_at = (
            max(now, previous) if now is not None and previous is not None else now or previous
        )
        yield from self._rest(
            sf_object,
            since=since,
            after=after,
            stored=stored,
            extra=extra,
            recent=Recent(cursor.get("recent")),
            read_at=read_at,
        )

    def _first_sync(
        self, sf_object: str, cursor: dict[str, Any]
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        self.validate(sf_object)
        extra = self._hub_state(sf_object, cursor, first_sync=True)
        threshold = self.config.bulk_threshold
        count = (
            self.counts.count(sf_object)
            if threshold is not None and self.counts is not None
            else None
        )
        read_at = self.client.org_time_floor()
        if count is not None and threshold is not None and count > threshold:
            # Large by the org's record count: the whole object through one Bulk job, no
            # sizing page. (Counts are approximate; a needless job costs no row, only calls.)
            yield from self._bulk(
                sf_object,
                extra,
                job=None,
                locator="",
                start=None,
                best=None,
                recent=Recent(None),
                read_at=read_at,
            )
            return
        # Small, unknown, or stale: the first REST page's totalSize decides (see ``_rest``).
        yield from self._rest(
            sf_object,
            since=None,
            after=None,
            stored=None,
            extra=extra,
            recent=Recent(None),
            read_at=read_at,
            first_sync=True,
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
        read_at: dt.datetime | None,
        first_sync: bool = False,
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        """Keyset pages until the last one; ``stored`` is the position already checkpointed.

        ``read_at``: the org time known before this run's first query (stored in the cursor).
        ``first_sync``: the first page's query is limited to ``max(bulk_threshold, page_size) + 1``
        rows and its ``totalSize`` decides whether the rest comes from REST pages or from one
        Bulk API 2.0 job.
        """
        limit = self.config.page_size
        threshold = self.config.bulk_threshold
        first = True
        while True:
            probe = first and first_sync and threshold is not None
            query = soql.changed_since(
                sf_object,
                self._fields(sf_object, extra),
                since=since if first else None,
                after=after,
                # totalSize = min(rows, this): above the threshold <=> more than the threshold.
                limit=max(threshold or 0, limit) + 1 if probe else limit,
                ts_field=cursor_field(sf_object),
                static=HISTORY_OBJECTS.get(sf_object, ""),
            )
            total: int | None = None
            if probe:
                answer = self._first_page(sf_object, query, extra, limit)
                if answer is None:  # a hub field vanished: the state was refreshed, ask again
                    continue
                rows, total = answer
            else:
                got = self._query(sf_object, query, extra)
                if got is None:  # a hub field vanished: the state was refreshed, ask again
                    continue
                rows = got
            records: list[AnyRecord] = []
            stamp = cursor_field(sf_object)
            for row in rows:
                row_id, ts = str(row["Id"]), iso_ts(_ts(row[stamp]))
                if not recent.seen(row_id, ts) and wanted_row(sf_object, row):
                    records.append(self._record(sf_object, row, extra))
                recent.add(row_id, ts)
            if rows:
                last = rows[-1]
                after = (_ts(last[stamp]), str(last["Id"]))
                if stored is None or after > stored:
                    stored = after
            position = stored or (EPOCH, "")
            window = recent.pruned(self._window_floor(position, read_at))
            more = bool(rows) and (len(rows) >= limit if total is None else total > len(rows))
            if probe and more and total is not None and threshold is not None and total > threshold:
                # The rest through Bulk API 2.0, strictly after this page's last row.
                state = _bulk_state(None, "", after, position, window, read_at)
                yield records, {"bulk": state, **extra}
                yield from self._bulk(
                    sf_object,
                    extra,
                    job=None,
                    locator="",
                    start=after,
                    best=stored,
                    recent=recent,
                    read_at=read_at,
                )
                return
            yield records, _cursor(position, extra, window, read_at)
            if not more:
                return
            first = False

    def _window_floor(self, position: Position, read_at: dt.datetime | None) -> dt.datetime:
        """Where the next run will start reading: rows after it may be read again."""
        return (read_at if read_at is not None else position[0]) - self._overlap

    def _first_page(
        self, sf_object: str, query: str, extra: dict[str, Any], limit: int
    ) -> tuple[list[dict[str, Any]], int] | None:
        """The first answer of a sizing query: up to ``limit`` rows and ``totalSize``.

        One call: the locator of the rest is not followed (keyset pages or Bulk continue after
        the last row kept). ``Sforce-Query-Options`` asks for a batch of ``limit`` rows (the API
        accepts 200 to 2,000); rows beyond ``limit`` are dropped and read again by the next page.
        """
        headers = {"Sforce-Query-Options": f"batchSize={max(200, limit)}"} if limit < 2000 else {}
        try:
            result = self.client.call(
                sf_object, lambda sf: sf.query(query, include_deleted=True, headers=headers)
            )
        except InvalidFieldError as exc:
            self._on_invalid_field(sf_object, exc, extra)
            return None
        return list(result["records"])[:limit], int(result["totalSize"])

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
        origin = state.get("from")
        start = (_ts(origin["ts"]), str(origin["id"])) if origin else None
        # The original run's read time: the job's snapshot is at least as late.
        read_at = _ts(state["read_at"]) if state.get("read_at") else None
        recent = Recent(state.get("recent"))
        try:
            yield from self._bulk(
                sf_object,
                extra,
                job=str(state["job"]) if state.get("job") else None,
                locator=str(state.get("locator") or ""),
                start=start,
                best=best,
                recent=recent,
                read_at=read_at,
            )
        except CrmRequestError as exc:
            if exc.status != 404:
                raise
            # The job expired (Salesforce keeps results for 7 days): extract again.
            yield from self._bulk(
                sf_object,
                extra,
                job=None,
                locator="",
                start=start,
                best=best,
                recent=recent,
                read_at=read_at,
            )

    def _bulk(
        self,
        sf_object: str,
        extra: dict[str, Any],
        *,
        job: str | None,
        locator: str,
        start: Position | None,
        best: Position | None,
        recent: Recent,
        read_at: dt.datetime | None,
    ) -> Iterator[tuple[list[AnyRecord], dict[str, Any]]]:
        """The rows after ``start`` (None: all) through one ``queryAll`` job, a page per chunk."""
        fields = self._fields(sf_object, extra)
        if job is None:
            job = bulk.create_query_job(
                self.client,
                sf_object,
                soql.full_extract(
                    sf_object,
                    fields,
                    after=start,
                    ts_field=cursor_field(sf_object),
                    static=HISTORY_OBJECTS.get(sf_object, ""),
                ),
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
        while True:
            chunk = bulk.fetch_chunk(self.client, sf_object, job, locator)
            records: list[AnyRecord] = []
            for raw in chunk.rows:
                row = typed_csv_row(raw, types)
                position = (_ts(row[cursor_field(sf_object)]), str(row["Id"]))
                ts = iso_ts(position[0])
                if not recent.seen(position[1], ts) and wanted_row(sf_object, row):
                    records.append(self._record(sf_object, row, extra))
                recent.add(position[1], ts)
                if best is None or position > best:
                    best = position
            locator = chunk.next_locator
            done = best or (EPOCH, "")
            window = recent.pruned(self._window_floor(done, read_at))
            if locator:
                state = _bulk_state(job, locator, start, done, window, read_at)
                yield records, {"bulk": state, **extra}
                continue
            yield records, _cursor(done, extra, window, read_at)
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


def _cursor(
    position: Position, extra: dict[str, Any], window: dict[str, str], read_at: dt.datetime | None
) -> dict[str, Any]:
    cursor: dict[str, Any] = {"ts": iso_ts(position[0]), "id": position[1], **extra}
    if read_at is not None:
        cursor["read_at"] = iso_ts(read_at)
    if window:
        cursor["recent"] = window
    return cursor


def _bulk_state(
    job: str | None,
    locator: str,
    start: Position | None,
    best: Position,
    window: dict[str, str],
    read_at: dt.datetime | None,
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "job": job,
        "locator": locator,
        "ts": iso_ts(best[0]),
        "id": best[1],
        "recent": window,
    }
    if start is not None:
        state["from"] = {"ts": iso_ts(start[0]), "id": start[1]}
    if read_at is not None:
        state["read_at"] = iso_ts(read_at)
    return state


def _why_no_counts(exc: Exception) -> str:
    """A log-safe reason the record counts failed (connector errors hold no URL or body)."""
    if isinstance(exc, MissingScopeError):
        return (
            "refused (HTTP 403); the integration user needs the 'View Setup and Configuration' "
            "permission for it"
        )
    if isinstance(exc, CrmRequestError) and exc.status == 404:
        return (
            f"not found (HTTP 404, {safe_code(exc.code)}); it needs API version 40.0 or later "
            "(api_version)"
        )
    return str(exc)


def _record_counts(answer: Any) -> dict[str, int]:
    """``{name: count}`` of a ``limits/recordCount`` answer (``{"sObjects": [{count, name}]}``)."""
    entries = answer.get("sObjects") if isinstance(answer, dict) else None
    counts: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        name, count = entry.get("name"), entry.get("count")
        if isinstance(name, str) and isinstance(count, int) and not isinstance(count, bool):
            counts[name] = count
    return counts


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
