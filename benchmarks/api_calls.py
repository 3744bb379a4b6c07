"""API calls of the hub's extraction per CRM and object, next to the minimum the APIs allow.

Why: the hub spends the customer's API quota (Salesforce: per org per day; HubSpot: per portal per
day, shared with every other integration), so its read path must stay close to the least the page
and batch sizes of the APIs allow (issue 4), and HubSpot deals with their associations must cost
at most 80 calls per 10,000 changed deals (issue 7; Airbyte's connector needs about 200).

What it does: start the sandbox CRMs in a temporary folder, seed a profile, then run the real
connectors (built like ``crmhub sync`` builds them, one connector per CRM per run) through
``unified_model.sync.extract`` into a fresh hub database for four runs:

1. ``first``: a first sync of everything;
2. ``changed``: after ``mutate(share=0.01)`` (1 % of the records edited, plus the creates and
   deletes the mutator adds) and ``--gap`` seconds on the sandbox clock;
3. ``idle``: nothing changed, ``--gap`` seconds later (no periodic check due);
4. ``delete-check``: nothing changed, once HubSpot's periodic archived check is due (its default
   interval, six hours, after the first sync's check): what that check costs, reported on its
   own; the "nothing changed ≤ 1 call per object" target is judged on ``idle``.

Then, separately, 10,000 changed HubSpot deals (existing deals edited; created when the profile
has fewer) and one deals sync: calls per 10,000 changed deals against the target.

Calls come from the sandbox's request ledger (what the CRM saw), cross-checked with
``connector.usage()``. ``rows`` is what the CRM had to return (counted in the sandbox state);
``delivered`` is what the connector handed to the store (more than ``rows``: re-read duplicates). OAuth token requests are left out of the API counts and reported apart.

Minimum per object: the pages the page and batch sizes of the APIs allow, plus the field
discovery the issue requires, shown in their own columns:

- Pages, Salesforce REST: ``ceil(rows / 2000)`` per object (at least 1: a query that finds
  nothing is still a call; activity is Task and Event); a first sync may use Bulk 2.0 instead:
  create + 1 poll + ``ceil(rows / 50000)`` result chunks, whichever is less; ``rows`` counts
  deleted rows too (``queryAll`` returns them).
- Pages, HubSpot: per object type ``ceil(changed / 200)`` searches (at least 1) plus
  ``ceil(changed / 1000)`` v4 association batch reads per association type the record needs
  (activity: calls, meetings, notes and tasks, each with companies and deals); owners (no change filter):
  ``ceil(active owners / 500)``, on a first sync plus ``ceil(archived owners / 500)`` (at least
  1: the API lists archived owners separately, and a first read needs them). A first sync
  through the list endpoint (``--hs-first-sync-plan list``, the hub's default) instead costs
  ``ceil(n / 100)`` list pages per object type (at least 1) with the associations inline, plus
  ``ceil(cut / 1000)`` v4 batch reads per association type for the records whose inline list
  HubSpot cuts (more than 100 items of one type); increments search either way.
- Time floor, HubSpot: the seconds the calls of a run need at HubSpot's published limits
  (190 requests per 10 s, 5 searches per second) and at the hub's default share of them
  (``burst_limit`` 100 per 10 s, ``search_per_second`` 4), both rolling windows: about
  ``max(calls / burst rate, searches / search rate)``, less one window (see ``hs_floor``).
- Discovery (required): on a first sync, one Salesforce ``describe`` per object and one HubSpot
  properties list per object type (the mapping is validated against the CRM's fields before
  anything is read, with an error naming an unknown field; HubSpot owners have no mapping);
  none on later runs. ``discovery`` shows the describe/properties calls actually made; every
  call stays in ``calls`` (the ledger), the target is ``calls <= 1.10 x (pages + discovery)``.
- Salesforce record counts: the connector asks ``limits/recordCount`` once per run that has a
  first sync, for every object at once, to choose REST or Bulk before the first read. That call
  is one per run, not per object, so it gets its own row (kind ``record count``), taken out of
  the row of the kind during which it was made. It is required discovery (minimum 1) only when
  the run's first sync has an object that is cheaper through Bulk than through REST pages (Bulk
  without a sizing page needs the size first, and one call sizes every object); otherwise its
  minimum is 0 and the call is overhead, visible as such. Target for that row: at most one call.

The sandbox clock is advanced between runs instead of waiting. Usage:
``uv run python benchmarks/api_calls.py --profile demo`` (``large``: ~2.5 GB in /tmp, removed
afterwards; ``tiny`` for a quick check). ``--crm salesforce --runs first`` measures only the
Salesforce first sync (on ``large`` the data generation then takes most of the time).
``--hs-first-sync-plan search`` measures HubSpot's first sync through search instead of lists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import (
    DISCOVERY_CATEGORIES,
    RECORD_COUNT_CATEGORIES,
    Calls,
    build_hubspot,
    build_salesforce,
    ceil_div,
    count_calls,
    machine_line,
    markdown_table,
    per_10k,
    ratio,
    scratch_dir,
    usage_calls,
)

from assets.extract import HS_KINDS, SF_KINDS
from assets.resources import HubSpotResource
from connectors.hubspot.mapping import KIND_SPECS, SPECS
from connectors.salesforce.mapping import KIND_OBJECTS
from connectors.salesforce.reader import RECORD_COUNT
from sandbox.mutate import mutate
from sandbox.runner import Sandbox
from sandbox.state import HS, SF, SandboxState, fmt_ts
from unified_model.store import HubStore
from unified_model.sync import extract

SF_PAGE = 2000
SF_BULK_CHUNK = 50_000
HS_SEARCH_PAGE = 200
HS_LIST_PAGE = 100
#: Inline associations per type and record before HubSpot cuts the list (``paging.next``).
HS_INLINE_MAX = 100
HS_ASSOC_BATCH = 1000
#: HubSpot batch read: ids per call (the companies' owner history)
HS_BATCH_READ = 100
HS_OWNERS_PAGE = 500
#: HubSpot's published limits (Professional/Enterprise) and the hub's default share of them.
HS_LIMITS = {"HubSpot's limits": (190, 5.0), "the hub's share": (100, 4.0)}
DEALS_TARGET = 80
DEALS_AIRBYTE = 200
#: Above this share of the minimum a figure is reported as an inefficiency.
TOLERANCE = 1.10
#: The row of the Salesforce ``limits/recordCount`` call (one per run, not per object kind).
RECORD_COUNT_KIND = "record count"
SEARCH_CATEGORIES = frozenset({"search"})
PHASES = ("first", "changed", "idle", "delete-check")
#: The default archived-check interval of the HubSpot resource ``crmhub sync`` builds, in seconds.
HS_ARCHIVED_INTERVAL = int(
    HubSpotResource.model_fields["archived_check_interval_seconds"].default  # type: ignore[arg-type]
)
#: How ``crmhub sync`` reads a HubSpot object on a first sync unless configured otherwise.
HS_FIRST_SYNC_PLAN = str(HubSpotResource.model_fields["first_sync_plan"].default)


@dataclass
class Row:
    """One CRM object kind in one run."""

    phase: str
    crm: str
    kind: str
    objects: str
    rows: int
    calls: int
    #: describe / properties calls among ``calls``
    discovery: int
    #: the fewest data calls (pages, association reads) the APIs allow
    min_pages: int
    #: the field discovery a run of this kind needs (first sync: one per object)
    min_discovery: int
    usage: int
    oauth: int
    seconds: float
    records: int
    breakdown: str
    #: search requests among ``calls`` (HubSpot's tighter per-second limit)
    searches: int = 0

    @property
    def minimum(self) -> int:
        """What the target is measured against: pages plus required discovery."""
        return self.min_pages + self.min_discovery

    @property
    def ratio(self) -> str:
        return ratio(self.calls, self.minimum)


# ---- what the CRM had to return ----------------------------------------------------------------


def _count(state: SandboxState, crm: str, obj: str, since: str | None, *, deleted: bool) -> int:
    sql = "SELECT COUNT(*) FROM records WHERE crm=? AND object=?"
    params: list[Any] = [crm, obj]
    if not deleted:
        sql += " AND deleted=0"
    if since is not None:
        sql += " AND modified >= ?"
        params.append(since)
    return int(state.execute(sql, params)[0][0])


def _hs_owned(state: SandboxState, since: str | None) -> int:
    """Live companies with an owner read by a run: the hub reads when each got its owner (the
    owner property's history) by batch reads of 100."""
    sql = (
        "SELECT COUNT(*) FROM records WHERE crm=? AND object='companies' AND deleted=0 "
        "AND json_extract(data, '$.hubspot_owner_id') IS NOT NULL "
        "AND json_extract(data, '$.hubspot_owner_id') != ''"
    )
    params: list[Any] = [HS]
    if since is not None:
        sql += " AND modified >= ?"
        params.append(since)
    return int(state.execute(sql, params)[0][0])


def _sf_pages(n: int, first_sync: bool) -> tuple[int, bool]:
    """(minimum data calls, whether Bulk is the cheaper way) for ``n`` rows of one object."""
    rest = max(1, ceil_div(n, SF_PAGE))
    bulk = 2 + max(1, ceil_div(n, SF_BULK_CHUNK))
    return (bulk, True) if first_sync and bulk < rest else (rest, False)


def sf_minimum(state: SandboxState, kind: str, since: str | None) -> tuple[int, int, int, str]:
    """(rows, minimum pages, required discovery, objects) of a Salesforce kind.

    ``since`` None = first sync: one describe per object (mapping validation).
    """
    rows = minimum = 0
    for obj in KIND_OBJECTS[kind]:
        n = _count(state, SF, obj, since, deleted=True)
        pages, _ = _sf_pages(n, since is None)
        rows, minimum = rows + n, minimum + pages
    discovery = len(KIND_OBJECTS[kind]) if since is None else 0
    return rows, minimum, discovery, "+".join(KIND_OBJECTS[kind])


def sf_record_count_minimum(state: SandboxState, since: str | None) -> int:
    """Required record-count calls of a Salesforce run: 1 when a first sync has a Bulk object."""
    if since is not None:
        return 0
    objects = {o for objs in KIND_OBJECTS.values() for o in objs}
    return int(any(_sf_pages(_count(state, SF, o, None, deleted=True), True)[1] for o in objects))


def _hs_cut(state: SandboxState, from_ot: str, to_ot: str) -> int:
    """Live ``from_ot`` records with more than :data:`HS_INLINE_MAX` inline association items
    to ``to_ot`` (one item per type of a pair, live targets only): HubSpot cuts their list."""
    sql = (
        "SELECT COUNT(*) FROM (SELECT a.from_id FROM assoc a "
        "JOIN records t ON t.crm=? AND t.object=a.to_object AND t.id=a.to_id AND t.deleted=0 "
        "JOIN records f ON f.crm=? AND f.object=a.from_object AND f.id=a.from_id AND f.deleted=0 "
        "WHERE a.from_object=? AND a.to_object=? GROUP BY a.from_id HAVING COUNT(*) > ?)"
    )
    return int(state.execute(sql, (HS, HS, from_ot, to_ot, HS_INLINE_MAX))[0][0])


def hs_minimum(
    state: SandboxState, kind: str, since: str | None, *, plan: str = HS_FIRST_SYNC_PLAN
) -> tuple[int, int, int, str]:
    """(rows, minimum pages, required discovery, object) of a HubSpot kind.

    ``since`` None = first sync: one properties list per object type (mapping validation);
    owners have no mapping to validate. ``plan``: how a first sync reads (``list`` or
    ``search``; later runs always search).
    """
    if kind == "owner":
        n = _count(state, HS, "owners", None, deleted=True)
        active = _count(state, HS, "owners", None, deleted=False)
        pages = max(1, ceil_div(active, HS_OWNERS_PAGE))
        if since is None:
            # The owners API lists active or archived (deactivated) owners, never both in one
            # call; a first read needs both (deactivated owners still own records).
            pages += max(1, ceil_div(n - active, HS_OWNERS_PAGE))
        return n, pages, 0, "owners"
    # A kind may span several object types (activity: calls, meetings, notes, tasks): each is
    # searched (and, on a first sync, validated) on its own.
    rows = minimum = 0
    names: list[str] = []
    listed = since is None and plan == "list"
    for spec in (SPECS[name] for name in KIND_SPECS[kind]):
        n = _count(state, HS, spec.object_type, since, deleted=False)
        rows += n
        if listed:
            minimum += max(1, ceil_div(n, HS_LIST_PAGE)) + sum(
                ceil_div(_hs_cut(state, spec.object_type, to), HS_ASSOC_BATCH)
                for to in spec.associations
            )
        else:
            minimum += max(1, ceil_div(n, HS_SEARCH_PAGE)) + len(spec.associations) * ceil_div(
                n, HS_ASSOC_BATCH
            )
        joined = ",".join(spec.associations)
        assoc = f" ({'inline ' if listed else '+'}{joined})" if spec.associations else ""
        if spec.object_type == "companies":  # + when each company got its current owner
            minimum += ceil_div(_hs_owned(state, since), HS_BATCH_READ)
            assoc += " +owner history"
        names.append(spec.object_type + assoc)
    discovery = len(KIND_SPECS[kind]) if since is None else 0
    return rows, minimum, discovery, "+".join(names)


# ---- one sync run ------------------------------------------------------------------------------


def _record_count_usage(connector: Any) -> int:
    return int(connector.usage().calls_by_object.get(RECORD_COUNT, 0))


def sync_run(
    sb: Sandbox,
    store: HubStore,
    phase: str,
    since: str | None,
    crms: tuple[str, ...] = (SF, HS),
    hs_plan: str = HS_FIRST_SYNC_PLAN,
) -> list[Row]:
    """Extract every kind of the CRMs once, with fresh connectors (one run of ``crmhub sync``).

    Salesforce's ``limits/recordCount`` call (one per run with a first sync) is taken out of the
    kind it happened in and reported as a row of its own, kind :data:`RECORD_COUNT_KIND`.
    ``hs_plan``: HubSpot's ``first_sync_plan``.
    """
    out: list[Row] = []
    for crm, kinds, build, minimum in (
        (SF, SF_KINDS, build_salesforce, sf_minimum),
        (
            HS,
            HS_KINDS,
            functools.partial(build_hubspot, first_sync_plan=hs_plan),
            functools.partial(hs_minimum, plan=hs_plan),
        ),
    ):
        if crm not in crms:
            continue
        connector = build(sb.info)
        counted = Calls()
        counted_usage = counted_seconds = 0.0
        try:
            for kind in kinds:
                rows, least, discovery, objects = minimum(sb.state, kind, since)
                head, used, started = sb.state.ledger_head(), usage_calls(connector), time.time()
                used_counts = _record_count_usage(connector)
                stats = extract(store, connector, kind)
                seconds = time.time() - started
                calls, counts = count_calls(sb.state, head, crm).split(RECORD_COUNT_CATEGORIES)
                counts_usage = _record_count_usage(connector) - used_counts
                if counts.api:
                    counted.api += counts.api
                    counted.by_category.update(counts.by_category)
                    counted_usage += counts_usage
                    counted_seconds += seconds
                if stats.stopped:
                    print(f"WARNING {crm} {kind}: stopped early ({stats.stopped})", file=sys.stderr)
                out.append(
                    Row(
                        phase=phase,
                        crm=crm,
                        kind=kind,
                        objects=objects,
                        rows=rows,
                        calls=calls.api,
                        discovery=calls.of(DISCOVERY_CATEGORIES),
                        min_pages=least,
                        min_discovery=discovery,
                        usage=usage_calls(connector) - used - counts_usage,
                        oauth=calls.oauth,
                        seconds=seconds,
                        records=stats.records,
                        breakdown=calls.breakdown(),
                        searches=calls.of(SEARCH_CATEGORIES) if crm == HS else 0,
                    )
                )
                print(
                    f"  {phase:9s} {crm:10s} {kind:10s} rows {rows:>8,d} calls {calls.api:>5d} "
                    f"min {least:>5d} + discovery {discovery} ({seconds:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            required = sf_record_count_minimum(sb.state, since) if crm == SF else 0
            if crm == SF and (counted.api or required or since is None):
                out.append(
                    Row(
                        phase=phase,
                        crm=crm,
                        kind=RECORD_COUNT_KIND,
                        objects="every object (limits/recordCount)",
                        rows=0,
                        calls=counted.api,
                        discovery=counted.api,
                        min_pages=0,
                        min_discovery=required,
                        usage=int(counted_usage),
                        oauth=0,
                        # Included in the time of the kind it was made in; not added twice.
                        seconds=0.0,
                        records=0,
                        breakdown=counted.breakdown(),
                    )
                )
                print(
                    f"  {phase:9s} {crm:10s} record count: calls {counted.api} required {required}",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            connector.close()
    return out


# ---- 10,000 changed deals ----------------------------------------------------------------------


def change_deals(state: SandboxState, n: int, seed: int) -> dict[str, int]:
    """Edit ``n`` HubSpot deals (or all of them, creating the rest, on small profiles).

    Creates go in mutator calls of 1,000: one mutator transaction per 10,000 creates is far
    slower (each create counts the companies inside an ever larger open transaction).
    """
    live = state.count(HS, "deals")
    edits = min(n, live)
    done = {"edited": 0, "created": 0}
    if edits:
        result = mutate(
            state, seed=seed, share=edits / live, objects=["deals"], deletes=0, creates=0
        )
        done["edited"] = result["updated"]
    remaining, chunk = n - done["edited"], 0
    while remaining > 0:
        size = min(1000, remaining)
        chunk += 1
        result = mutate(
            state, seed=seed * 1000 + chunk, share=0.0, objects=["deals"], creates=size, deletes=0
        )
        done["created"] += result["created"]
        remaining -= result["created"]
    return done


def deals_run(sb: Sandbox, store: HubStore, n: int, seed: int) -> dict[str, Any]:
    since = fmt_ts(sb.state.now())
    started = time.time()
    changed = change_deals(sb.state, n, seed)
    mutate_seconds = time.time() - started
    # Past the connector's 30 s lag margin, well inside the hourly archived check.
    sb.state.advance_clock(120)
    rows, least, _, _ = hs_minimum(sb.state, "deal", since)
    connector = build_hubspot(sb.info)
    try:
        head, used, started = sb.state.ledger_head(), usage_calls(connector), time.time()
        stats = extract(store, connector, "deal")
        seconds = time.time() - started
        calls = count_calls(sb.state, head, HS)
        usage = usage_calls(connector) - used
    finally:
        connector.close()
    return {
        "changed": changed,
        "rows": rows,
        "records": stats.records,
        "calls": calls.api,
        "usage": usage,
        "minimum": least,
        "per_10k": per_10k(calls.api, rows),
        "breakdown": calls.breakdown(),
        "seconds": seconds,
        "mutate_seconds": mutate_seconds,
    }


# ---- report ------------------------------------------------------------------------------------


def phase_table(rows: list[Row]) -> str:
    return markdown_table(
        [
            "CRM",
            "kind",
            "objects",
            "rows",
            "delivered",
            "calls",
            "of which discovery",
            "min pages",
            "+ discovery",
            "min",
            "ratio",
            "usage()",
            "s",
            "breakdown",
        ],
        [
            (
                r.crm,
                r.kind,
                r.objects,
                "-" if r.kind == RECORD_COUNT_KIND else f"{r.rows:,}",
                "-" if r.kind == RECORD_COUNT_KIND else f"{r.records:,}",
                r.calls,
                r.discovery,
                r.min_pages,
                r.min_discovery,
                r.minimum,
                r.ratio,
                r.usage if r.usage == r.calls else f"{r.usage} MISMATCH",
                f"{r.seconds:.1f}",
                r.breakdown,
            )
            for r in rows
        ],
    )


def totals_table(rows: list[Row], phases: list[str], crms: tuple[str, ...] = (SF, HS)) -> str:
    body = []
    for phase in phases:
        for crm in crms:
            sel = [r for r in rows if r.phase == phase and r.crm == crm]
            calls, least = sum(r.calls for r in sel), sum(r.minimum for r in sel)
            body.append(
                (
                    phase,
                    crm,
                    f"{sum(r.rows for r in sel):,}",
                    calls,
                    sum(r.discovery for r in sel),
                    sum(r.min_pages for r in sel),
                    sum(r.min_discovery for r in sel),
                    least,
                    ratio(calls, least),
                    sum(r.oauth for r in sel),
                    f"{sum(r.seconds for r in sel):.1f}",
                )
            )
    return markdown_table(
        [
            "run",
            "CRM",
            "rows",
            "API calls",
            "of which discovery",
            "min pages",
            "+ discovery",
            "min",
            "ratio",
            "OAuth token calls",
            "s",
        ],
        body,
    )


def hs_floor(calls: int, searches: int, burst_per_10s: int, search_per_s: float) -> float:
    """Seconds HubSpot calls need at a burst and a search limit (searches count in both).

    Both limits are rolling windows (at most ``burst`` requests in any 10 s, ``search`` in any
    second), so the k-th request (from 0) can leave at ``(k // limit) * window`` at the
    earliest: the first window's worth goes at once, which is why a small run beats
    ``calls / rate``.
    """
    burst = ((calls - 1) // burst_per_10s) * 10.0 if calls else 0.0
    search = float((searches - 1) // int(search_per_s)) if searches else 0.0
    return max(burst, search)


def floor_table(rows: list[Row], phases: list[str]) -> str:
    """HubSpot's measured seconds per run next to the time floor of its calls at the limits."""
    body = []
    for phase in phases:
        sel = [r for r in rows if r.phase == phase and r.crm == HS]
        if not sel:
            continue
        calls, searches = sum(r.calls for r in sel), sum(r.searches for r in sel)
        body.append(
            (
                phase,
                calls,
                searches,
                *(f"{hs_floor(calls, searches, *limits):.1f}" for limits in HS_LIMITS.values()),
                f"{sum(r.seconds for r in sel):.1f}",
            )
        )
    headers = ["run", "calls", "of which searches"]
    headers += [f"floor s at {name} ({b}/10 s, {s:g}/s)" for name, (b, s) in HS_LIMITS.items()]
    return markdown_table([*headers, "measured s"], body)


def findings(rows: list[Row]) -> list[str]:
    """Every object whose calls exceed the targets, with the numbers and the call breakdown."""
    out = []
    for r in rows:
        if r.kind == RECORD_COUNT_KIND:
            # One call per run that has a first sync, whether or not it pays off.
            if r.calls > max(1, r.minimum):
                out.append(
                    f"{r.phase}: {r.crm} {r.kind}: {r.calls} calls, target ≤ {max(1, r.minimum)} "
                    f"per run; calls: {r.breakdown}"
                )
            continue
        if r.phase == "delete-check":
            continue  # the periodic delete check is reported on its own, not judged as idle
        idle = r.phase.startswith("idle")
        n_objects = len(KIND_OBJECTS[r.kind]) if r.crm == SF else len(KIND_SPECS.get(r.kind, "o"))
        over_min = r.calls > r.minimum * TOLERANCE
        over_idle = idle and r.calls > n_objects
        if over_min or over_idle:
            target = (
                f"≤ {n_objects} (nothing changed)" if idle else f"≤ {r.minimum * TOLERANCE:.1f}"
            )
            out.append(
                f"{r.phase}: {r.crm} {r.kind} ({r.objects}, {r.rows:,} rows): {r.calls} calls, "
                f"minimum {r.minimum} ({r.min_pages} pages + {r.min_discovery} discovery), "
                f"target {target}; calls: {r.breakdown}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=("tiny", "demo", "large"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--share", type=float, default=0.01, help="share of records changed")
    parser.add_argument(
        "--gap", type=float, default=3600.0, help="sandbox seconds between the runs (default 1 h)"
    )
    parser.add_argument("--deals", type=int, default=10_000, help="changed deals (0: skip)")
    parser.add_argument("--dir", default="/tmp", help="parent of the temporary folder")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--crm",
        default="both",
        choices=("both", SF, HS),
        help="measure one CRM only (the data set is still generated for both)",
    )
    parser.add_argument(
        "--runs",
        default="all",
        choices=("all", "first"),
        help="first: only the first sync (no mutation, later runs or deals)",
    )
    parser.add_argument(
        "--hs-first-sync-plan",
        default=HS_FIRST_SYNC_PLAN,
        choices=("list", "search"),
        help=f"how HubSpot's first sync reads (default {HS_FIRST_SYNC_PLAN}, as crmhub sync)",
    )
    args = parser.parse_args(argv)
    crms: tuple[str, ...] = (SF, HS) if args.crm == "both" else (args.crm,)
    phases = list(PHASES) if args.runs == "all" else ["first"]

    print(
        f"# API calls per CRM object: profile {args.profile}, seed {args.seed}, "
        f"CRM {args.crm}, runs {args.runs}, HubSpot first sync plan {args.hs_first_sync_plan}\n"
    )
    print(f"{machine_line()}\n")
    total_started = time.time()
    with (
        scratch_dir(args.dir, "crmhub-apibench-", keep=args.keep) as home,
        Sandbox(home / "sandbox") as sb,
    ):
        started = time.time()
        counts = sb.seed(args.profile, args.seed)
        seed_seconds = time.time() - started
        records = sum(v for k, v in counts.items() if "/" in k)
        print(f"Seeded {records:,} records in {seed_seconds:.1f} s.\n")
        store = HubStore(f"sqlite:///{home / 'hub.db'}")
        store.migrate()

        rows: list[Row] = []
        phase_seconds: dict[str, float] = {}

        def run(phase: str, since: str | None) -> None:
            started = time.time()
            rows.extend(sync_run(sb, store, phase, since, crms, args.hs_first_sync_plan))
            phase_seconds[phase] = time.time() - started

        run("first", None)
        changes: dict[str, int] | None = None
        deals: dict[str, Any] | None = None
        if args.runs == "all":
            since = fmt_ts(sb.state.now())
            started = time.time()
            changes = mutate(sb.state, seed=args.seed, share=args.share)
            mutate_seconds = time.time() - started
            sb.state.advance_clock(args.gap)
            run("changed", since)
            sb.state.advance_clock(args.gap)
            run("idle", fmt_ts(sb.state.now()))
            sb.state.advance_clock(max(0.0, HS_ARCHIVED_INTERVAL - 2 * args.gap) + 60)
            run("delete-check", fmt_ts(sb.state.now()))
            if args.deals and HS in crms:
                deals = deals_run(sb, store, args.deals, args.seed + 1)
        store.dispose()
    total_seconds = time.time() - total_started

    if changes is not None:
        print(
            f"Mutation before `changed`: {changes['updated']:,} edited, {changes['created']:,} "
            f"created, {changes['deleted']:,} deleted (share {args.share:g}; "
            f"{mutate_seconds:.1f} s); runs {args.gap:g} s apart on the sandbox clock, "
            f"`delete-check` {HS_ARCHIVED_INTERVAL:,} s after the first sync (HubSpot's "
            "archived check due).\n"
        )
    print("## Totals per run\n")
    print(totals_table(rows, phases, crms) + "\n")
    if HS in crms:
        print("## HubSpot: seconds against the time floor at the rate limits\n")
        print(floor_table(rows, phases) + "\n")
    for phase in phases:
        print(f"## Run `{phase}` ({phase_seconds[phase]:.1f} s)\n")
        print(phase_table([r for r in rows if r.phase == phase]) + "\n")
    if deals:
        verdict = "meets" if deals["per_10k"] <= DEALS_TARGET else "MISSES"
        print("## HubSpot deals with associations per 10,000 changed deals\n")
        print(
            f"{deals['rows']:,} changed deals ({deals['changed']['edited']:,} edited, "
            f"{deals['changed']['created']:,} created in {deals['mutate_seconds']:.1f} s), one "
            f"deals sync of {deals['records']:,} records: {deals['calls']} calls "
            f"(usage() {deals['usage']}; {deals['breakdown']}), minimum {deals['minimum']}; "
            f"**{deals['per_10k']:.1f} calls per 10,000 changed deals**, {verdict} the target "
            f"≤ {DEALS_TARGET} (Airbyte ~{DEALS_AIRBYTE}); {deals['seconds']:.1f} s.\n"
        )
    found = findings(rows)
    print(
        "## Above target (calls > 1.10 × (pages + required discovery), or nothing changed > 1 "
        "call per object)\n"
    )
    print("\n".join(f"- {line}" for line in found) if found else "None.")
    print(f"\nSeed {seed_seconds:.1f} s; total {total_seconds:.1f} s.")

    if args.json:
        payload = {
            "profile": args.profile,
            "seed": args.seed,
            "crm": args.crm,
            "runs": args.runs,
            "hs_first_sync_plan": args.hs_first_sync_plan,
            "machine": machine_line(),
            "when": dt.datetime.now(dt.UTC).isoformat(),
            "seed_seconds": seed_seconds,
            "total_seconds": total_seconds,
            "mutation": changes,
            "rows": [asdict(r) | {"minimum": r.minimum, "ratio": r.ratio} for r in rows],
            "deals": deals,
            "findings": found,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
