"""Measure extraction and ``unify`` at scale (``large``: 100,000 customers): time and memory.

Why: the hub claims to resolve and unify 100k customers on a 2-core machine with flat memory.
This script checks it on the real path: the sandbox CRMs serve the ``large`` data set over HTTPS,
the real connectors read it through the hub's extraction loop (``unified_model.sync.extract``)
into a fresh SQLite ``HubStore``, and ``unified_model.unify.unify`` runs over it, twice by default:
the first run (every customer new) and a re-run with nothing changed (the steady state of a
scheduled sync). ``--orm-load`` also measures loading every account and contact as ORM rows
(what ``unify`` did before it streamed), for comparison.

Memory is the benchmark process's resident set, sampled every 50 ms by a thread (``/proc``),
reported per phase as start → end (peak). The emulators run in a child process, so their memory
and the data generation's are not counted. ``unify`` reports its own phases' seconds and the
rows it wrote per table (``UnifyStats.seconds``/``written``), printed per run. ``--cprofile``
runs unify once more under cProfile and prints the top functions; ``--score`` scores the matching against the sandbox's truth table (as
``match_quality.py`` does).

Generation of ``large`` takes a few minutes and ~2.5 GB under ``--dir``; everything is deleted at
the end unless ``--keep`` (then ``--reuse <dir>`` skips generation and extraction next time).

Usage: ``uv run python benchmarks/unify_scale.py [--profile large] [--kinds owner,account,contact]
[--cprofile] [--score] [--keep | --reuse DIR]``
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from match_quality import build_connectors, report, score  # sibling script, on sys.path

from sandbox.runner import Sandbox, SandboxInfo
from unified_model import tables as t
from unified_model import unify as unify_module
from unified_model.store import HubStore
from unified_model.sync import extract

PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class RssSampler:
    """A daemon thread keeping the highest RSS seen since the last ``reset``."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def reset(self) -> float:
        self.peak = rss_mb()
        return self.peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def phase(name: str, sampler: RssSampler, out: dict[str, dict[str, Any]]) -> Iterator[None]:
    """Time a phase and record RSS start, end and peak (MB) under ``out[name]``."""
    start_rss = sampler.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    end = rss_mb()
    out[name] = {
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "rss_start_mb": round(start_rss),
        "rss_end_mb": round(end),
        "rss_peak_mb": round(max(sampler.peak, end)),
    }


# --------------------------------------------------------------------------------------------
# unify's phases, timed from outside
# --------------------------------------------------------------------------------------------

#: Functions ``unify`` calls through its module namespace, wrapped to accumulate their time.
# --------------------------------------------------------------------------------------------
# The sandbox in a child process
# --------------------------------------------------------------------------------------------


def serve_child(home: Path, profile: str, seed: int) -> int:
    """Child mode: seed (unless seeded), serve, print the sandbox info as JSON, wait for stdin."""
    sandbox = Sandbox(home)
    info = sandbox.start()
    generated: dict[str, Any] = {}
    if not sandbox.is_seeded():
        start = time.perf_counter()
        generated = sandbox.seed(profile, seed=seed)
        generated["seconds"] = round(time.perf_counter() - start, 1)
    now = sandbox.state.now().isoformat()
    payload = {"info": json.loads(info.to_json()), "generated": generated, "now": now}
    print(json.dumps(payload), flush=True)
    sys.stdin.read()  # the parent closes stdin when it is done
    sandbox.stop()
    return 0


def start_child(
    home: Path, profile: str, seed: int
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", str(home), "--profile", profile, "--seed", str(seed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait()
        raise RuntimeError(f"sandbox child exited with {child.returncode} before serving")
    return child, json.loads(line)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def _counts(store: HubStore) -> dict[str, int]:
    return {
        "accounts": store.count(t.SourceAccount),
        "contacts": store.count(t.Contact),
        "owners": store.count(t.Owner),
        "customers": store.count(t.Customer, live_only=False),
        "links": store.count(t.SourceLink, live_only=False),
    }


def measure_loading(store: HubStore, sampler: RssSampler, phases: dict[str, Any]) -> None:
    """Load the live accounts and contacts as ``unify`` does (ORM rows), to see what that costs.

    Why separately: ``unify`` starts by holding every live account and contact as a SQLModel
    object for the whole run; this shows how much of its time and memory that alone takes.
    """
    from sqlmodel import select

    held: list[Any] = []
    queries = (
        ("accounts", select(t.SourceAccount).where(t.SourceAccount.deleted.is_(False))),  # type: ignore[attr-defined]
        ("contacts", select(t.Contact).where(t.Contact.deleted.is_(False))),  # type: ignore[attr-defined]
    )
    for label, query in queries:
        name = f"load {label} as ORM rows"
        with phase(name, sampler, phases), store.session() as s:
            rows = list(s.exec(query))
        phases[name]["records"] = len(rows)
        held.append(rows)
    del held


def reset_unified(store: HubStore) -> None:
    """Forget a previous run's identity results, so that ``--reuse`` measures a first unify."""
    derived = ("source_link", "customer", "match_review", "handover_state", "customer_metrics")
    with store.engine.begin() as conn:
        for table in derived:
            conn.execute(sa.text(f"DELETE FROM {table}"))
        for table in ("source_account", "contact", "deal", "ticket", "activity", "email"):
            conn.execute(sa.text(f"UPDATE {table} SET customer_id = NULL"))


def read_truth(state_path: Path) -> list[dict[str, Any]]:
    """The sandbox's truth table, read-only (the emulators keep the database open)."""
    conn = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM truth ORDER BY customer_key")]
    finally:
        conn.close()


def print_match_quality(store: HubStore, truth: list[dict[str, Any]], show: int) -> None:
    """Precision/recall at scale, with the same scoring and report as ``match_quality.py``."""
    accounts = [a for a in store.all(t.SourceAccount) if not a.deleted]
    links = [lk for lk in store.all(t.SourceLink) if lk.object_type == "account"]
    reviews = store.all(t.MatchReview)
    truth_key: dict[tuple[str, str], str] = {}
    for row in truth:
        if row.get("sf_account_id"):
            truth_key[("salesforce", row["sf_account_id"])] = row["customer_key"]
        if row.get("hs_company_id"):
            truth_key[("hubspot", str(row["hs_company_id"]))] = row["customer_key"]
    result = score(accounts, links, truth)
    for line in report(
        result,
        {(a.source, a.source_id): a for a in accounts},
        {(lk.source, lk.source_id): lk for lk in links},
        reviews,
        truth_key,
        show,
    ):
        print(line)


def _print_phases(phases: dict[str, dict[str, Any]]) -> None:
    print(f"{'phase':34s} {'wall s':>8s} {'cpu s':>8s}  RSS MB start -> end (peak)")
    for name, p in phases.items():
        extra = f"  {p['records']:,d} records" if "records" in p else ""
        print(
            f"{name:34s} {p['seconds']:8.1f} {p['cpu_seconds']:8.1f}  "
            f"{p['rss_start_mb']:5d} -> {p['rss_end_mb']:5d} ({p['rss_peak_mb']:5d}){extra}"
        )


def _run_unify(
    store: HubStore, now: dt.datetime, name: str, sampler: RssSampler, phases: dict[str, Any]
) -> dict[str, float]:
    with phase(name, sampler, phases):
        stats = unify_module.unify(store, now=now)
    parts = dict(stats.seconds)  # unify times its own phases (also the Dagster metadata)
    phases[name]["parts"] = parts
    phases[name]["stats"] = {
        "customers": stats.customers,
        "matched_across": stats.matched_across,
        "pending_reviews": stats.pending_reviews,
        "by_method": stats.by_method,
        "written": stats.written,
    }
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", default="large")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", default="/tmp", help="parent directory of the temporary state")
    parser.add_argument(
        "--kinds",
        default="owner,account,contact",
        help="object kinds to extract from both CRMs (comma-separated)",
    )
    parser.add_argument(
        "--unify-runs", type=int, default=2, help="unify runs, the first on a fresh store"
    )
    parser.add_argument("--cprofile", action="store_true", help="profile one more unify run")
    parser.add_argument(
        "--orm-load",
        action="store_true",
        help="also measure loading all accounts and contacts as ORM rows (what unify avoids)",
    )
    parser.add_argument(
        "--score",
        action="store_true",
        help="also score the matching against the truth table, as match_quality.py does",
    )
    parser.add_argument("--show", type=int, default=10, help="errors listed per kind (--score)")
    parser.add_argument("--top", type=int, default=25, help="cProfile rows to print")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox and hub databases")
    parser.add_argument(
        "--reuse", help="a directory a --keep run left: no generation, no extraction"
    )
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return serve_child(Path(args.child), args.profile, args.seed)

    home = (
        Path(args.reuse)
        if args.reuse
        else Path(tempfile.mkdtemp(prefix="crmhub-scale-", dir=args.dir))
    )
    keep = args.keep or bool(args.reuse)
    sampler = RssSampler()
    phases: dict[str, dict[str, Any]] = {}
    child: subprocess.Popen[str] | None = None
    try:
        start = time.perf_counter()
        child, started = start_child(home / "sandbox", args.profile, args.seed)
        generated = started["generated"]
        print(
            f"sandbox ready in {time.perf_counter() - start:.1f} s"
            + (f" (generated '{args.profile}' in {generated['seconds']} s)" if generated else "")
        )
        if generated:
            interesting = ("truth", "salesforce/Account", "hubspot/companies", "salesforce/Contact")
            print("  " + ", ".join(f"{k} {generated[k]:,d}" for k in interesting if k in generated))
        info = SandboxInfo(**started["info"])
        now = dt.datetime.fromisoformat(started["now"])

        store = HubStore(f"sqlite:///{home / 'hub.db'}")
        store.migrate()
        if not args.reuse:
            sf, hs = build_connectors(info)
            try:
                connectors: tuple[Any, ...] = (sf, hs)  # both satisfy sync's reader protocol
                for connector in connectors:
                    for kind in args.kinds.split(","):
                        name = f"extract {connector.crm}/{kind}"
                        with phase(name, sampler, phases):
                            stats = extract(store, connector, kind)
                        phases[name]["records"] = stats.records
                        if stats.stopped:
                            phases[name]["stopped"] = stats.stopped
                        print(f"  {name}: {stats.records:,d} records, {phases[name]['seconds']} s")
            finally:
                sf.close()
                hs.close()
        if args.reuse:
            reset_unified(store)
        print("hub store:", json.dumps(_counts(store)))

        if args.orm_load:
            measure_loading(store, sampler, phases)
        runs = [f"unify (run {n + 1}{', first' if n == 0 else ''})"
                for n in range(args.unify_runs)]  # fmt: skip
        for n, name in enumerate(runs):
            _run_unify(store, now + dt.timedelta(minutes=30 * n), name, sampler, phases)
        print("hub store:", json.dumps(_counts(store)))
        _print_phases(phases)
        for name in runs:
            print(f"{name} parts (s): {json.dumps(phases[name]['parts'])}")
            print(f"{name} result: {json.dumps(phases[name]['stats'])}")
        extract_total = sum(p["seconds"] for n, p in phases.items() if n.startswith("extract"))
        print(
            f"extraction total {extract_total:.1f} s; process peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
            f"hub db {(home / 'hub.db').stat().st_size / 1e6:.0f} MB"
        )

        if args.score:
            print_match_quality(store, read_truth(Path(info.state_path)), args.show)
        if args.cprofile:
            profiler = cProfile.Profile()
            profiler.enable()
            unify_module.unify(store, now=now + dt.timedelta(minutes=30 * args.unify_runs))
            profiler.disable()
            buf = io.StringIO()
            stats_ = pstats.Stats(profiler, stream=buf)
            stats_.sort_stats("cumulative").print_stats(args.top)
            stats_.sort_stats("tottime").print_stats(args.top)
            print(buf.getvalue())
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(phases, indent=2))
        store.dispose()
        if keep:
            print(f"kept: {home} (rerun with --reuse {home})")
        return 0
    finally:
        sampler.stop()
        if child is not None:
            if child.stdin:
                child.stdin.close()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
