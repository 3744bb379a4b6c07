"""Reading HubSpot incrementally: frozen search windows, batched associations, archived, owners.

Why search windows keyed on ``hs_object_id``: the search API is the only HubSpot API that filters
by last-modified time, but it pages by *offset* and refuses ``after + limit > 10,000``. So a
window ``[lower, upper]`` on the last-modified property is frozen at the start of a pass, results
are sorted by ``hs_object_id`` ascending, ``after`` is never sent, and each request asks for
``hs_object_id > last_id`` instead: every request is at offset 0, the cap is never reached, and a
record is neither lost nor repeated while users edit the portal (an edit after ``upper`` is the
next window's business). The window's ``upper`` is the portal's own clock (``Date`` header of the
pass's first search) minus ``lag_margin_seconds``; the next window starts ``overlap_seconds``
before it, because the search index lags and a record changed just before ``upper`` may show up
only later. First sync: ``lower`` = epoch.

First syncs through the list endpoint (``first_sync_plan = "list"``, the default): search is
limited to about 5 requests per second per portal, ordinary requests to 100-190 per 10 s, so a
first read of a large portal is faster through ``GET /crm/v3/objects/{ot}`` (100 a page, the
associations inline: no v4 batch reads) than through 200-record searches plus association
batches. The list cannot filter by time, so it is only a first read: the window's ``upper`` is
frozen from the portal's clock at the pass's first page, exactly as a search window's, and the
next (incremental, searching) window starts ``overlap_seconds`` before it, so anything changed
while the list pass ran is read again. The list's own ``after`` token is the resume point
(``in_list`` in the cursor). Inline associations are cut at 100 per type and record (with a
``paging.next`` of their own): such records get that type through the v4 batch read instead.

Why 1,000 records per checkpoint: the v4 associations batch read takes 1,000 ids, so the reader
gathers five search pages, makes one association call per needed type and yields one ``Page``:
10,000 changed deals cost 50 searches + 20 association calls.

Deletes: archived records are listed (``archived=true``) when the configured interval is due,
remembered in the cursor, so a sync with nothing changed costs one search call per object. Hard
deletes leave no archive: ``reconcile_ids`` makes a full id pass for the store to compare.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.associations.v4 import Configuration as AssociationsConfiguration
from hubspot.crm.objects import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)

from connectors.base import Page
from connectors.errors import CrmRequestError, TransientError
from connectors.hubspot.client import OBJECTS_MODEL_CONFIG, HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.mapping import (
    EPOCH,
    KIND_SPECS,
    OWNER_PROPERTY,
    SPECS,
    FieldMapping,
    ObjectSpec,
    RecordMapper,
    epoch_ms,
    instant,
    iso,
    ordered_inline,
    ordered_targets,
    owner_assignment,
    owner_record,
    tombstone,
)
from connectors.records import HUBSPOT, AnyRecord

#: The request models' configuration (validation switch only; shared, never mutated).
_ASSOCIATIONS_MODEL_CONFIG = AssociationsConfiguration()
log = logging.getLogger(__name__)

CURSOR_VERSION = 1
ARCHIVED_PAGE = 100  # the list API's maximum
BATCH_READ_MAX = 100
_ASSOC_ROUNDS = 3
#: Most ids remembered from a window's overlap zone (beyond it, re-reads are merely duplicates).
_RECENT_MAX = 1000


def _when(value: str | None) -> dt.datetime | None:
    return instant(value) if value else None


def _inline_block(obj: Any, to_ot: str) -> Any:
    """The inline ``associations`` entry of ``to_ot`` (keyed by the plural name asked for; the
    singular is accepted too)."""
    blocks = getattr(obj, "associations", None) or {}
    found = blocks.get(to_ot)
    if found is None and to_ot.endswith("s"):
        found = blocks.get(to_ot[:-1])
    return found


class HubSpotReader:
    """Reads one kind at a time; every method is a generator of checkpointed pages."""

    def __init__(self, client: HubSpotClient, config: HubSpotConfig, mapping: FieldMapping):
        self.client = client
        self.config = config
        self.mapping = mapping
        self.mapper = RecordMapper(mapping)
        self._validated: set[str] = set()

    # ---- validation -------------------------------------------------------------------------
    def validate(self, kind: str) -> None:
        """Check the field mapping of ``kind`` against the portal's properties (one call)."""
        if kind in self._validated or kind not in SPECS:
            return
        ot = SPECS[kind].object_type
        answer = self.client.call(
            f"list {ot} properties",
            lambda: self.client.api("properties").get_all(ot, archived=False),
        )
        names = [p.name for p in (answer.results if answer else [])]
        self.mapping.validate(kind, names)
        self._validated.add(kind)

    # ---- incremental objects ----------------------------------------------------------------
    def read_kind(self, kind: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        """Every object of a hub kind, one after the other, each from its own cursor.

        A kind of one object keeps that object's cursor as is; ``activity`` (calls, meetings,
        notes, tasks) keeps ``{"call": {...}, "meeting": {...}, ...}``, so each object has its
        own window, archived check and resume point.
        """
        names = KIND_SPECS.get(kind, ())
        if names == (kind,):
            yield from self.read_objects(kind, cursor)
            return
        state = {n: dict(c) for n, c in (cursor or {}).items() if n in names and c}
        for name in names:
            for page in self.read_objects(name, state.get(name)):
                state[name] = page.cursor
                yield Page(records=page.records, cursor={n: dict(c) for n, c in state.items()})

    def read_objects(self, kind: str, cursor: dict[str, Any] | None) -> Iterator[Page]:
        """One HubSpot object (a key of ``SPECS``): its search window, then its archived check."""
        spec = SPECS[kind]
        if cursor is None:
            self.validate(kind)
        state: dict[str, Any] = dict(cursor or {})
        state["v"] = CURSOR_VERSION
        first_sync = cursor is None or state.get("upper") is None
        if self._lists_first(state, first_sync=first_sync):
            yield from self._list_pass(kind, spec, state)
        else:
            yield from self._window_pass(kind, spec, state, first_sync=first_sync)
        yield from self._archived_pass(kind, spec, state)

    def _lists_first(self, state: dict[str, Any], *, first_sync: bool) -> bool:
        """Whether this pass reads through the list endpoint.

        A pass in progress finishes the way it started, whatever the setting says now: a list
        pass's ``after`` token means nothing to search, and a search window's ``last_id`` nothing
        to the list.
        """
        if state.get("in_list"):
            return True
        if state.get("in_window"):
            return False
        return first_sync and self.config.first_sync_plan == "list"

    def _search(
        self,
        spec: ObjectSpec,
        properties: list[str],
        *,
        lower: dt.datetime | None,
        upper: dt.datetime | None,
        last_id: str | None,
    ) -> Any:
        filters = []
        if lower is not None:
            filters.append(
                Filter(property_name=spec.lastmod, operator="GTE", value=epoch_ms(lower))
            )
        if upper is not None:
            filters.append(
                Filter(property_name=spec.lastmod, operator="LTE", value=epoch_ms(upper))
            )
        if last_id is not None:
            filters.append(Filter(property_name="hs_object_id", operator="GT", value=last_id))
        request = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=filters)] if filters else [],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],  # type: ignore[list-item]
            properties=properties,
            limit=self.config.search_page_size,
            # ``after`` deliberately unset: always offset 0, never near the 10,000 cap.
        )
        ot = spec.object_type
        answer = self.client.call(
            f"search {ot}",
            lambda: self.client.api("search").do_search(ot, request),
        )
        if answer is None:
            raise CrmRequestError(
                f"HubSpot answered the {ot} search with an unexpected status; check "
                "CRMHUB_HS_BASE_URL points at the HubSpot API",
                crm=HUBSPOT,
            )
        return answer

    def _window_pass(
        self, kind: str, spec: ObjectSpec, state: dict[str, Any], *, first_sync: bool
    ) -> Iterator[Page]:
        """One window ``[lower, upper]`` from where the cursor stands, a page per unit.

        De-duplication of the overlap: the cursor keeps ``{id: last-modified}`` of the records
        read in the last ``overlap_seconds`` of the previous window (``seen_recent``); found again
        unchanged in this window's overlap, they are dropped before any association call.
        """
        cfg = self.config
        overlap = dt.timedelta(seconds=cfg.overlap_seconds)
        window = state.get("in_window")
        if window:
            lower = _when(window.get("lower"))
            upper = _when(window.get("upper"))
            last_id = state.get("last_id")
            recent: dict[str, str] = dict(window.get("recent") or {})
        else:
            previous = _when(state.get("upper"))
            lower = EPOCH if previous is None else previous - overlap
            upper = None  # frozen from the portal's clock at the first search
            last_id = None
            recent = {}
        seen_before: dict[str, str] = dict(state.get("seen_recent") or {})
        previous_upper = _when(state.get("upper"))
        properties = self.mapping.properties(kind)
        first, rest = (
            properties[: cfg.max_properties_per_request],
            properties[cfg.max_properties_per_request :],
        )
        per_unit = max(1, cfg.association_batch_size // cfg.search_page_size)
        total: int | None = None
        done = False
        while not done:
            self.client.check_budget()
            objects: list[Any] = []
            for _ in range(per_unit):
                answer = self._search(spec, first, lower=lower, upper=upper, last_id=last_id)
                results = list(answer.results or [])
                if total is None and not window:
                    total = getattr(answer, "total", None)  # the whole window, on its first page
                if upper is None:
                    upper = self._freeze_upper(previous_upper)
                    if first_sync and not state.get("archived_checked_at"):
                        # Records archived before the first sync were never stored: the first
                        # archived check only needs what is archived from now on.
                        state["archived_checked_at"] = iso(upper)
                if results:
                    last_id = str(results[-1].id)
                for obj in results:
                    modified = self._modified(spec, obj)
                    if modified > upper:
                        # Only on the first page, asked before ``upper`` was known: the next
                        # window re-reads it (its lower bound lies below this upper).
                        continue
                    stamp = iso(modified)
                    oid = str(obj.id)
                    if modified >= upper - overlap and len(recent) < _RECENT_MAX:
                        # Also when skipped below: it lies in the next window's overlap too.
                        recent[oid] = stamp
                    if seen_before.get(oid) == stamp:
                        continue  # read unchanged by the previous window's overlap
                    objects.append(obj)
                if not results or answer.paging is None or answer.paging.next is None:
                    done = True
                    break
            if rest and objects:
                self._fill_properties(spec, objects, rest)
            records = self._records(kind, spec, objects)
            assert upper is not None
            if done:
                state.update(upper=iso(upper), last_id=None, in_window=None, seen_recent=recent)
            else:
                state.update(
                    last_id=last_id,
                    in_window={
                        "lower": iso(lower or EPOCH),
                        "upper": iso(upper),
                        "recent": dict(recent),
                    },
                )
            yield Page(records=records, cursor=dict(state), total=total)

    def _list_page(self, spec: ObjectSpec, properties: list[str], after: str | None) -> Any:
        kwargs: dict[str, Any] = {"limit": self.config.list_page_size, "properties": properties}
        if spec.associations:
            kwargs["associations"] = list(spec.associations)
        if after:
            kwargs["after"] = after
        ot = spec.object_type
        answer = self.client.call(
            f"list {ot}",
            functools.partial(self.client.api("objects").get_page, ot, **kwargs),
        )
        if answer is None:
            raise CrmRequestError(
                f"HubSpot answered the {ot} list with an unexpected status; check "
                "CRMHUB_HS_BASE_URL points at the HubSpot API",
                crm=HUBSPOT,
            )
        return answer

    def _list_pass(self, kind: str, spec: ObjectSpec, state: dict[str, Any]) -> Iterator[Page]:
        """A first sync through the list endpoint, a page per unit (``association_batch_size``).

        The cursor's ``in_list`` holds the window's frozen ``upper``, the list's ``after`` token
        of the next page and the overlap ids (``recent``): a run killed mid-pass resumes at the
        page after the last checkpoint. Records changed after ``upper`` are kept (the list has no
        time filter; they are simply read again by the next window); records in the window's
        overlap are remembered in ``seen_recent`` like a search window's, so the next window
        drops them when they come back unchanged.
        """
        cfg = self.config
        overlap = dt.timedelta(seconds=cfg.overlap_seconds)
        progress = dict(state.get("in_list") or {})
        upper = _when(progress.get("upper"))
        after: str | None = progress.get("after")
        recent: dict[str, str] = dict(progress.get("recent") or {})
        properties = self.mapping.properties(kind)
        first, rest = (
            properties[: cfg.max_properties_per_request],
            properties[cfg.max_properties_per_request :],
        )
        per_unit = max(1, cfg.association_batch_size // cfg.list_page_size)
        done = False
        while not done:
            self.client.check_budget()
            objects: list[Any] = []
            for _ in range(per_unit):
                answer = self._list_page(spec, first, after)
                if upper is None:
                    # The portal's clock at the pass's first page: everything changed after it
                    # is the next window's, however long the pass takes.
                    upper = self._freeze_upper(None)
                    if not state.get("archived_checked_at"):
                        # As for a search first sync: what was archived before was never stored.
                        state["archived_checked_at"] = iso(upper)
                results = list(answer.results or [])
                for obj in results:
                    modified = self._modified(spec, obj)
                    if modified >= upper - overlap and len(recent) < _RECENT_MAX:
                        recent[str(obj.id)] = iso(modified)
                objects.extend(results)
                nxt = getattr(getattr(answer, "paging", None), "next", None)
                if not results or nxt is None or not getattr(nxt, "after", None):
                    done = True
                    break
                after = str(nxt.after)
            if rest and objects:
                self._fill_properties(spec, objects, rest)
            records = self._inline_records(kind, spec, objects)
            assert upper is not None
            if done:
                state.update(
                    upper=iso(upper), last_id=None, in_window=None, in_list=None, seen_recent=recent
                )
            else:
                state["in_list"] = {"upper": iso(upper), "after": after, "recent": dict(recent)}
            yield Page(records=records, cursor=dict(state))

    def _inline_records(self, kind: str, spec: ObjectSpec, objects: list[Any]) -> list[AnyRecord]:
        """Records from list results with their inline associations.

        HubSpot cuts an inline association list at 100 (``paging.next`` set on that type): those
        records get that type through the v4 batch read, so no link is lost.
        """
        if not objects:
            return []
        assoc: dict[str, dict[str, list[str]]] = {}
        for to in spec.associations:
            found: dict[str, list[str]] = {}
            cut: list[str] = []
            for obj in objects:
                block = _inline_block(obj, to)
                if block is None:
                    continue
                oid = str(obj.id)
                nxt = getattr(getattr(block, "paging", None), "next", None)
                if nxt is not None:
                    cut.append(oid)
                    continue
                targets = ordered_inline(block.results or [])
                if targets:
                    found[oid] = targets
            if cut:
                found.update(self.associations(spec.object_type, to, cut))
            assoc[to] = found
        records = [self.mapper.record(kind, o, assoc) for o in objects]
        return records + self._owner_assignments(spec, objects)

    def _owner_assignments(self, spec: ObjectSpec, objects: list[Any]) -> list[AnyRecord]:
        """When the companies of a unit got their current owner: the versions of
        ``hubspot_owner_id`` through batch reads (100 companies a call; only companies that have
        an owner). Why a batch read and not ``propertiesWithHistory`` on the read itself: search
        cannot return history, and a list page asking for it holds 50 companies instead of 100,
        so both ways cost one call per 100 companies; the batch read serves first syncs and
        increments alike, and a run with no changed company makes none."""
        if spec.object_type != "companies":
            return []
        owned = [str(o.id) for o in objects if (o.properties or {}).get(OWNER_PROPERTY)]
        out: list[AnyRecord] = []
        for i in range(0, len(owned), BATCH_READ_MAX):
            request = BatchReadInputSimplePublicObjectId(
                inputs=[
                    SimplePublicObjectId(id=x, local_vars_configuration=OBJECTS_MODEL_CONFIG)
                    for x in owned[i : i + BATCH_READ_MAX]
                ],
                properties=[OWNER_PROPERTY],
                properties_with_history=[OWNER_PROPERTY],
            )
            answer = self.client.call(
                "batch read companies owner history",
                functools.partial(self.client.api("batch").read, spec.object_type, request),
            )
            for obj in answer.results if answer else []:
                record = owner_assignment(obj)
                if record is not None:
                    out.append(record)
        return out

    def _freeze_upper(self, previous_upper: dt.datetime | None) -> dt.datetime:
        now = self.client.usage.server_time
        if now is None:
            raise CrmRequestError(
                "HubSpot sent no Date header, so the sync cannot tell the portal's time; check "
                "that CRMHUB_HS_BASE_URL points at the HubSpot API and not at a proxy stripping "
                "headers",
                crm=HUBSPOT,
            )
        upper = now - dt.timedelta(seconds=self.config.lag_margin_seconds)
        if previous_upper is not None and upper < previous_upper:
            upper = previous_upper  # the portal's clock never moves a cursor backwards
        return upper

    @staticmethod
    def _modified(spec: ObjectSpec, obj: Any) -> dt.datetime:
        props = obj.properties or {}
        return instant(props.get(spec.lastmod)) or instant(obj.updated_at) or EPOCH

    def _fill_properties(self, spec: ObjectSpec, objects: list[Any], names: list[str]) -> None:
        """Properties beyond one request's share, read by batch read and merged in place."""
        ot = spec.object_type
        by_id = {str(o.id): o for o in objects}
        size = self.config.max_properties_per_request
        for start in range(0, len(names), size):
            chunk = names[start : start + size]
            ids = list(by_id)
            for i in range(0, len(ids), BATCH_READ_MAX):
                request = BatchReadInputSimplePublicObjectId(
                    inputs=[
                        SimplePublicObjectId(id=x, local_vars_configuration=OBJECTS_MODEL_CONFIG)
                        for x in ids[i : i + BATCH_READ_MAX]
                    ],
                    properties=chunk,
                    properties_with_history=[],
                )
                answer = self.client.call(
                    f"batch read {ot}",
                    functools.partial(self.client.api("batch").read, ot, request),
                )
                for extra in answer.results if answer else []:
                    target = by_id.get(str(extra.id))
                    if target is not None:
                        merged = dict(target.properties or {})
                        merged.update(extra.properties or {})
                        target.properties = merged

    def _records(self, kind: str, spec: ObjectSpec, objects: list[Any]) -> list[AnyRecord]:
        if not objects:
            return []
        ids = [str(o.id) for o in objects]
        assoc = {to: self.associations(spec.object_type, to, ids) for to in spec.associations}
        records = [self.mapper.record(kind, o, assoc) for o in objects]
        return records + self._owner_assignments(spec, objects)

    # ---- associations -----------------------------------------------------------------------
    def associations(self, from_ot: str, to_ot: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """``{from id: [to ids, primary first]}`` through v4 batch reads of up to 1,000 ids.

        Ids without associations are simply absent (HubSpot reports them as 207 errors). Other
        per-id errors are retried a few rounds; if they persist the unit fails as transient, so
        the page is not checkpointed with incomplete links.
        """
        out: dict[str, list[str]] = {}
        pending: list[tuple[str, str | None]] = [(i, None) for i in dict.fromkeys(ids)]
        rounds = 0
        size = self.config.association_batch_size
        while pending:
            next_round: list[tuple[str, str | None]] = []
            failed: list[tuple[str, str | None]] = []
            for start in range(0, len(pending), size):
                chunk = pending[start : start + size]
                answer = self._assoc_call(from_ot, to_ot, chunk)
                if answer is None:
                    continue
                for result in answer.results or []:
                    fid = str(result._from.id)
                    out.setdefault(fid, []).extend(ordered_targets(result.to or []))
                    nxt = getattr(getattr(result, "paging", None), "next", None)
                    if nxt is not None and getattr(nxt, "after", None):
                        next_round.append((fid, str(nxt.after)))
                for error in getattr(answer, "errors", None) or []:
                    if error.category == "OBJECT_NOT_FOUND":
                        continue  # no associations of this type
                    context = error.context or {}
                    bad = [*context.get("fromObjectId", []), *context.get("ids", [])]
                    lookup = dict(chunk)
                    failed.extend((b, lookup.get(b)) for b in bad if b in lookup)
            if failed:
                rounds += 1
                if rounds >= _ASSOC_ROUNDS:
                    raise TransientError(
                        f"HubSpot could not read the {from_ot}→{to_ot} associations of "
                        f"{len(failed)} records after {rounds} attempts; the page is not saved "
                        "and the next run resumes from the last checkpoint",
                        crm=HUBSPOT,
                    )
            pending = next_round + failed
        return out

    def _assoc_call(self, from_ot: str, to_ot: str, chunk: list[tuple[str, str | None]]) -> Any:
        # One model configuration for the whole batch: without it every one of the 1,000 input
        # models builds its own (loggers and all), a sixth of a HubSpot read's client time.
        cfg = _ASSOCIATIONS_MODEL_CONFIG
        request = BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[
                PublicFetchAssociationsBatchRequest(id=i, after=a, local_vars_configuration=cfg)
                if a
                else PublicFetchAssociationsBatchRequest(id=i, local_vars_configuration=cfg)
                for i, a in chunk
            ],
            local_vars_configuration=cfg,
        )
        try:
            return self.client.call(
                f"read {from_ot}→{to_ot} associations",
                lambda: self.client.api("associations").get_page(from_ot, to_ot, request),
            )
        except CrmRequestError as exc:
            if exc.status == 404 and exc.code == "OBJECT_NOT_FOUND":
                return None  # none of the ids has such associations
            raise

    # ---- archived ---------------------------------------------------------------------------
    def _archived_due(self, state: dict[str, Any]) -> bool:
        if state.get("archived_pass"):
            return True
        checked = _when(state.get("archived_checked_at"))
        now = self.client.usage.server_time
        if checked is None or now is None:
            return True
        interval = self.config.archived_check_interval_seconds
        return interval <= 0 or (now - checked).total_seconds() >= interval

    def _archived_pass(self, kind: str, spec: ObjectSpec, state: dict[str, Any]) -> Iterator[Page]:
        """Tombstones for records archived since the last check (minus the overlap).

        The first sync sets the check time to its window's upper bound without listing: records
        archived before it were never stored, later ones are caught by the next check.
        """
        now = self.client.usage.server_time
        if not self._archived_due(state):
            return
        ot = spec.object_type
        progress = dict(state.get("archived_pass") or {})
        if not progress:
            checked = _when(state.get("archived_checked_at"))
            since = checked - dt.timedelta(seconds=self.config.overlap_seconds) if checked else None
            progress = {
                "after": None,
                "since": iso(since) if since else None,
                "started": iso(now) if now else None,
            }
        since = _when(progress.get("since"))
        while True:
            self.client.check_budget()
            after = progress.get("after")
            kwargs: dict[str, Any] = {
                "limit": ARCHIVED_PAGE,
                "archived": True,
                "properties": ["hs_object_id"],
            }
            if after:
                kwargs["after"] = after
            answer = self.client.call(
                f"list archived {ot}",
                functools.partial(self.client.api("objects").get_page, ot, **kwargs),
            )
            if progress.get("started") is None and self.client.usage.server_time:
                progress["started"] = iso(self.client.usage.server_time)
            records: list[AnyRecord] = []
            for obj in answer.results if answer else []:
                when = instant(obj.archived_at) or instant(obj.updated_at) or EPOCH
                if since is None or when >= since:
                    records.append(tombstone(kind, str(obj.id), when))
            nxt = getattr(getattr(answer, "paging", None), "next", None)
            if nxt is not None and getattr(nxt, "after", None):
                progress["after"] = str(nxt.after)
                state["archived_pass"] = dict(progress)
                yield Page(records=records, cursor=dict(state))
                continue
            state["archived_pass"] = None
            state["archived_checked_at"] = progress.get("started")
            yield Page(records=records, cursor=dict(state))
            return

    # ---- owners -----------------------------------------------------------------------------
    def read_owners(self, cursor: dict[str, Any] | None) -> Iterator[Page]:
        """Every active owner every run (owners change without a trace); archived ones when due.

        Archived owners (deactivated users) come as ``active=False``: their ids still own
        records. They are listed on a first read and then at the archived-check interval, so a
        sync with nothing changed costs one owners call. A pass that listed both completes a
        full pass with every id seen.
        """
        seen: set[str] = set()
        previous = dict(cursor or {})
        for archived in (False, True):
            if archived and not (cursor is None or self._owners_archived_due(previous)):
                break
            after: str | None = None
            while True:
                self.client.check_budget()
                kwargs: dict[str, Any] = {
                    "limit": self.config.owners_page_size,
                    "archived": archived,
                }
                if after:
                    kwargs["after"] = after
                answer = self.client.call(
                    "list owners", functools.partial(self.client.api("owners").get_page, **kwargs)
                )
                records = [owner_record(o) for o in (answer.results if answer else [])]
                seen.update(r.source_id for r in records)
                nxt = getattr(getattr(answer, "paging", None), "next", None)
                after = str(nxt.after) if nxt is not None and getattr(nxt, "after", None) else None
                last = after is None and (
                    archived or not (cursor is None or self._owners_archived_due(previous))
                )
                if last:
                    now = self.client.usage.server_time
                    stamp = iso(now) if now else None
                    cursor_out = {
                        "v": CURSOR_VERSION,
                        "last_full_pass": stamp if archived else previous.get("last_full_pass"),
                        "archived_checked_at": stamp
                        if archived
                        else previous.get("archived_checked_at"),
                    }
                    yield Page(
                        records=records,  # type: ignore[arg-type]
                        cursor=cursor_out,
                        full_pass_complete=archived,
                        seen_ids=frozenset(seen) if archived else None,
                    )
                else:
                    yield Page(records=records, cursor=previous)  # type: ignore[arg-type]
                if after is None:
                    break

    def _owners_archived_due(self, previous: dict[str, Any]) -> bool:
        """Whether deactivated owners should be listed again (``archived_check_interval_seconds``)."""
        interval = self.config.archived_check_interval_seconds
        checked = _when(previous.get("archived_checked_at") or previous.get("last_full_pass"))
        now = self.client.usage.server_time
        if interval <= 0 or checked is None or now is None:
            return True
        return (now - checked).total_seconds() >= interval

    # ---- hard-delete reconciliation ---------------------------------------------------------
    def reconcile_ids(self, kind: str) -> Iterator[Page]:
        """A full pass over the live ids of ``kind`` (search by id, offset always 0).

        The final page has ``full_pass_complete=True`` and ``seen_ids``: the store tombstones
        live rows missing from it (GDPR deletes leave no archive to list).
        """
        if kind == "owner":
            for page in self.read_owners(None):
                if page.full_pass_complete:
                    yield Page(
                        records=[],
                        cursor={},
                        full_pass_complete=True,
                        seen_ids=page.seen_ids,
                    )
            return
        names = KIND_SPECS.get(kind, (kind,))
        if names != (kind,):
            # Several objects: one id pass each, completed once all of them are seen.
            everything: set[str] = set()
            for name in names:
                for page in self.reconcile_ids(name):
                    everything |= page.seen_ids or frozenset()
                    yield Page(records=[], cursor={name: page.cursor})
            yield Page(
                records=[], cursor={}, full_pass_complete=True, seen_ids=frozenset(everything)
            )
            return
        spec = SPECS[kind]
        seen: set[str] = set()
        last_id: str | None = None
        while True:
            self.client.check_budget()
            answer = self._search(spec, ["hs_object_id"], lower=None, upper=None, last_id=last_id)
            results = list(answer.results or [])
            seen.update(str(r.id) for r in results)
            if results:
                last_id = str(results[-1].id)
            if not results or answer.paging is None or answer.paging.next is None:
                yield Page(
                    records=[],
                    cursor={"reconcile_last_id": last_id},
                    full_pass_complete=True,
                    seen_ids=frozenset(seen),
                )
                return
            yield Page(records=[], cursor={"reconcile_last_id": last_id})
