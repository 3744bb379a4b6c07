"""Write calls of the hub's writeback per 10,000 changed records per CRM, next to the minimum.

Why: the writeback spends the same API quota as the extraction, on every run; it must batch as
far as the APIs allow (HubSpot batch update: 100 companies per call, so 100 calls per 10,000;
Salesforce sObject Collections: 200 Accounts per call, so 50; Bulk API 2.0 ingest, which the
connector uses above ``bulk_write_threshold``, a handful per job) and must write nothing at all
when nothing changed (issue 4).

What it does, in a temporary folder with the sandbox CRMs and a fresh hub database:

0. ``initial``: seed a small profile (owners, a few customers), run the hub once (extract both
   CRMs, unify, insights) and write back: this provisions the hub's fields (calls reported);
1. ``10k new``: the mutator creates ``--records`` Accounts and as many HubSpot companies (new
   customers: every one gets hub field values), the hub runs again and writes back with its
   default connectors (Salesforce: Bulk 2.0 ingest, above the 2,000-record threshold);
2. ``no change``: the hub runs again with nothing changed: zero write calls expected;
3. ``10k new, Collections``: another ``--records`` Accounts, written with the Bulk threshold
   lifted so that the Salesforce connector uses sObject Collections (200 per call).

Calls come from the sandbox's request ledger (what the CRM saw), cross-checked with the write
calls the writeback itself counted. Usage: ``uv run python benchmarks/writeback_calls.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    WRITE_CATEGORIES,
    build_hubspot,
    build_salesforce,
    ceil_div,
    count_calls,
    machine_line,
    markdown_table,
    per_10k,
    ratio,
    scratch_dir,
)

from assets.extract import HS_KINDS, SF_KINDS
from assets.resources import HubConfigResource
from connectors.salesforce.connector import SalesforceConnector
from crmhub import settings
from sandbox.mutate import mutate
from sandbox.runner import Sandbox
from sandbox.state import HS, SF
from unified_model.insights import compute_customer_insights
from unified_model.store import HubStore
from unified_model.sync import extract
from unified_model.unify import unify
from unified_model.writeback import run_writeback

HS_BATCH = 100
SF_COLLECTION = 200
#: Bulk 2.0 ingest, one job: create, upload, close, one status poll, successful + failed results.
SF_BULK_MIN = 6


def hub_run(sb: Sandbox, store: HubStore) -> None:
    """One hub run without the writeback: extract both CRMs, unify, evaluate insights."""
    for build, kinds in ((build_salesforce, SF_KINDS), (build_hubspot, HS_KINDS)):
        connector = build(sb.info)
        try:
            for kind in kinds:
                stats = extract(store, connector, kind)
                if stats.stopped:
                    raise RuntimeError(f"{connector.crm} {kind} stopped early: {stats.notes}")
        finally:
            connector.close()
    now = dt.datetime.now(dt.UTC)
    unify(store, now=now)
    compute_customer_insights(store, HubConfigResource().rules(), now=now)


def create(sb: Sandbox, obj: str, n: int, seed: int) -> int:
    """Create ``n`` records of ``obj`` through the mutator, 1,000 per transaction."""
    done, chunk = 0, 0
    while done < n:
        chunk += 1
        size = min(1000, n - done)
        result = mutate(sb.state, seed=seed * 1000 + chunk, share=0.0, objects=[obj], creates=size)
        done += result["created"]
    return done


def minimum_calls(crm: str, changed: int, *, bulk: bool) -> int:
    """The fewest write calls the APIs' batch sizes allow for ``changed`` records."""
    if crm == HS:
        return ceil_div(changed, HS_BATCH)
    collections = ceil_div(changed, SF_COLLECTION)
    return min(collections, SF_BULK_MIN) if bulk else collections


def write_back(
    sb: Sandbox, store: HubStore, crm: str, connector: Any, label: str, *, bulk: bool = True
) -> dict[str, Any]:
    """Run the writeback of one CRM and count what the CRM saw.

    ``bulk``: whether the connector may use Bulk 2.0 ingest (the minimum depends on it).
    """
    wb = HubConfigResource(config_dir=str(settings.config_dir())).writeback()
    head, started = sb.state.ledger_head(), time.time()
    try:
        report = run_writeback(
            store, connector, crm, wb, run_id=f"bench-{label}", now=dt.datetime.now(dt.UTC)
        )
    finally:
        connector.close()
    seconds = time.time() - started
    calls = count_calls(sb.state, head, crm)
    writes = calls.of(WRITE_CATEGORIES)
    changed = report.records_changed
    return {
        "run": label,
        "crm": crm,
        "changed": changed,
        "ok": report.ok,
        "failed": report.failed,
        "skipped": report.skipped,
        "write_calls": writes,
        "write_calls_counted": report.write_calls,
        "all_calls": calls.api,
        "oauth": calls.oauth,
        "minimum": minimum_calls(crm, changed, bulk=bulk),
        "per_10k": per_10k(writes, changed),
        "breakdown": calls.breakdown(),
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny", help="profile seeded first (default tiny)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--records", type=int, default=10_000, help="changed records per CRM")
    parser.add_argument("--dir", default="/tmp", help="parent of the temporary folder")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    print(f"# Writeback calls per CRM: {args.records:,} changed records, seed {args.seed}\n")
    print(f"{machine_line()}\n")
    results: list[dict[str, Any]] = []
    total_started = time.time()
    with (
        scratch_dir(args.dir, "crmhub-wbbench-", keep=args.keep) as home,
        Sandbox(home / "sandbox") as sb,
    ):
        sb.seed(args.profile, args.seed)
        store = HubStore(f"sqlite:///{home / 'hub.db'}")
        store.migrate()

        def run_all(label: str) -> None:
            started = time.time()
            hub_run(sb, store)
            print(f"  {label}: hub run {time.time() - started:.1f} s", file=sys.stderr)
            results.append(write_back(sb, store, SF, build_salesforce(sb.info), label))
            results.append(write_back(sb, store, HS, build_hubspot(sb.info), label))

        run_all("initial")
        created_sf = create(sb, "Account", args.records, args.seed)
        created_hs = create(sb, "companies", args.records, args.seed + 1)
        sb.state.advance_clock(120)  # past HubSpot's search lag margin
        run_all("10k new")
        sb.state.advance_clock(120)
        run_all("no change")
        created_sf2 = create(sb, "Account", args.records, args.seed + 2)
        sb.state.advance_clock(120)
        started = time.time()
        hub_run(sb, store)
        print(f"  collections: hub run {time.time() - started:.1f} s", file=sys.stderr)
        default = build_salesforce(sb.info)
        default.close()
        collections = SalesforceConnector(
            dataclasses.replace(default.config, bulk_write_threshold=10**9)
        )
        results.append(write_back(sb, store, SF, collections, "10k new, Collections", bulk=False))
        store.dispose()
    total_seconds = time.time() - total_started

    print(
        f"Created for `10k new`: {created_sf:,} Salesforce Accounts, {created_hs:,} HubSpot "
        f"companies; for `10k new, Collections`: {created_sf2:,} Accounts.\n"
    )
    rows = [
        (
            r["run"],
            r["crm"],
            f"{r['changed']:,}",
            f"{r['ok']:,}/{r['failed']:,}/{r['skipped']:,}",
            r["write_calls"],
            r["write_calls_counted"],
            r["minimum"],
            ratio(r["write_calls"], r["minimum"]),
            f"{r['per_10k']:.1f}" if r["changed"] >= 1000 else "-",
            r["all_calls"],
            r["oauth"],
            f"{r['seconds']:.1f}",
            r["breakdown"] or "none",
        )
        for r in results
    ]
    print(
        markdown_table(
            [
                "run",
                "CRM",
                "changed",
                "ok/failed/skipped",
                "write calls",
                "writeback's count*",
                "min",
                "ratio",
                "per 10k",
                "all calls",
                "OAuth",
                "s",
                "calls (ledger)",
            ],
            rows,
        )
    )
    problems = [
        r for r in results if r["run"] == "no change" and (r["write_calls"] or r["changed"])
    ]
    print(
        "\n*`WritebackReport.write_calls` (the connector's count around `write`); it includes "
        "the Salesforce login when the connector's first request is a write (a fresh connector)."
    )
    print(
        "\nNo-change run: "
        + (
            "FAILED, " + "; ".join(f"{r['crm']} {r['write_calls']} write calls" for r in problems)
            if problems
            else "zero write calls on both CRMs."
        )
    )
    print(f"Total {total_seconds:.1f} s.")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": machine_line(), "records": args.records, "results": results},
                indent=2,
                default=str,
            )
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
