"""The hub's own phases on a stored hub, without the CRMs: company KPIs, handover, unify.

Why: the end-to-end benchmark needs a sandbox and an hour on ``large``; a change to the KPI or
handover code is measured faster, and before/after on exactly the same rows, on a copy of the
hub database a kept run left (``sync_e2e.py --keep``: ``<folder>/hub/hub.db``). Each phase runs
in its own process (peak RSS is that phase's alone) on its own copy (handover writes).

    uv run python benchmarks/hub_phases.py /work/bench/<kept>/hub/hub.db [--phase kpis] [--json f]

``--phase first-unify`` (not run unless asked) times unify as a first sync runs it: the kept
hub's golden records removed, every account resolved, every golden record written again.

``--phase account-edits`` measures the steady state instead: every hundredth account gets a new
annual revenue (nothing the matching or the company KPIs read), then the incremental unify and
company KPIs run as a sync's would.

Prints seconds, the process's peak RSS and the commit. Run it from a checkout of the commit to
measure (a worktree), never from the tree being edited.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_line  # noqa: E402
from benchmarks.sync_e2e import _commit  # noqa: E402

if TYPE_CHECKING:
    from unified_model.rules import HubRules
    from unified_model.store import HubStore

PHASES = ("kpis", "handover", "unify", "account-edits", "first-unify")
#: not run unless asked: it measures the incremental path, not a phase
DEFAULT_PHASES = ("kpis", "handover", "unify")


def run_phase(db: Path, phase: str, now: dt.datetime) -> dict[str, object]:
    """One phase in this process: seconds and peak RSS."""
    from unified_model.insights import compute_company_kpis, compute_customer_insights
    from unified_model.rules import load_rules
    from unified_model.store import HubStore

    store = HubStore(f"sqlite:///{db}")
    rules = load_rules(ROOT / "config" / "rules.yaml")
    started = time.perf_counter()
    if phase == "kpis":
        report = compute_company_kpis(store, rules, now=now)
        detail = f"{len(report.rows)} periods, {len(report.owner_rows)} owners"
    elif phase == "handover":
        stats = compute_customer_insights(store, rules, now=now, incremental=False)
        detail = f"{stats.evaluated} customers evaluated"
    elif phase == "unify":  # a full re-resolution of every account, as after a settings change
        from unified_model.unify import unify

        ustats = unify(store, now=now, incremental=False)
        detail = f"{ustats.customers} customers, phases {ustats.seconds}"
    elif phase == "first-unify":  # a first sync's unify: no golden record yet, no watermark
        timed, found = _first_unify(store, now)
        detail = ", ".join(f"{k} {v}" for k, v in found.items())
    else:  # account-edits: 1 % of the accounts change a column the matching does not read
        timed, found = _account_edits(store, rules, now)
        detail = ", ".join(f"{k} {v}" for k, v in found.items())
    own_clock = phase in ("account-edits", "first-unify")
    seconds = timed if own_clock else time.perf_counter() - started
    store.dispose()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "phase": phase,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(rss_mb),
        "detail": detail,
    }


def _first_unify(store: HubStore, now: dt.datetime) -> tuple[float, dict[str, object]]:
    """Unify as a first sync runs it: every account resolved and every golden record new
    (the kept hub's golden records and unify's watermark removed first). Returns its seconds
    and phases (``golden records`` is survivorship and the writes of every customer)."""
    from unified_model import tables as t
    from unified_model.unify import forget_unify, unify

    with store.engine.begin() as conn:
        conn.execute(t.table_of(t.Customer).delete())
    forget_unify(store)
    started = time.perf_counter()
    ustats = unify(store, now=now, incremental=False)
    return time.perf_counter() - started, {
        "customers": ustats.customers,
        "golden records written": ustats.written.get("customer"),
        "unify phases": ustats.seconds,
    }


def _account_edits(
    store: HubStore, rules: HubRules, now: dt.datetime
) -> tuple[float, dict[str, object]]:
    """The steady state between two syncs: sellers edit accounts (here the annual revenue of
    every hundredth account, as a CRM re-read stores it), nothing the matching or the company
    KPIs read. Returns the seconds of the incremental unify and company KPIs that follow, and
    what they did."""
    import sqlalchemy as sa

    from unified_model import tables as t
    from unified_model.insights import refresh_company_kpis
    from unified_model.unify import unify

    acc = t.table_of(t.SourceAccount)
    with store.engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                sa.select(acc).where(acc.c.deleted.is_(False)).order_by(acc.c.source_id)
            ).mappings()
        ][::100]
    later = now - dt.timedelta(minutes=1)
    edited = [  # without ``changed_at``: the store dates the change, as on a CRM re-read
        {
            **{k: v for k, v in r.items() if k != "changed_at"},
            "annual_revenue": (r["annual_revenue"] or 0) + 1000.0,
            "modified_at": later,
        }
        for r in rows
    ]
    unify(store, now=now)  # whatever the kept run left undone, before the clock starts
    refresh_company_kpis(store, rules, now=now)
    store.upsert_rows(t.SourceAccount, edited)
    started = time.perf_counter()
    ustats = unify(store, now=now)
    unify_s = time.perf_counter() - started
    _, recomputed = refresh_company_kpis(store, rules, now=now)
    return time.perf_counter() - started, {
        "accounts edited": len(edited),
        "unify s": round(unify_s, 1),
        "resolution reused": ustats.resolution_reused,
        "golden records": ustats.survived,
        "unify phases": ustats.seconds,
        "company KPIs recomputed": recomputed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hub_db", nargs="?", help="a hub database (SQLite) a kept run left")
    parser.add_argument("--phase", action="append", choices=PHASES, help="default: all")
    parser.add_argument("--now", default=None, help="ISO time the phases judge at (default: now)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # db phase now
    args = parser.parse_args(argv)
    if args.child:
        db, phase, now = args.child
        print(json.dumps(run_phase(Path(db), phase, dt.datetime.fromisoformat(now))))
        return 0
    if not args.hub_db:
        parser.error("give the hub database of a kept run")
    now = args.now or dt.datetime.now(dt.UTC).isoformat()
    results = []
    for phase in args.phase or DEFAULT_PHASES:
        with tempfile.TemporaryDirectory(prefix="crmhub-phases-") as tmp:
            copy = Path(tmp) / "hub.db"
            with sqlite3.connect(args.hub_db) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)  # consistent even while a run writes the original
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(copy), phase, now],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        shutil.rmtree(tmp, ignore_errors=True)
    commit = _commit()
    print(f"# Hub phases, commit {commit}\n\n{machine_line()}; judged at {now}\n")
    print("| phase | seconds | peak RSS MB | detail |\n| --- | ---: | ---: | --- |")
    for r in results:
        print(f"| {r['phase']} | {r['seconds']} | {r['peak_rss_mb']} | {r['detail']} |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"commit": commit, "machine": machine_line(), "now": now, "results": results}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
