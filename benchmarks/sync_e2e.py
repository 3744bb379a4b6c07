"""End-to-end sync benchmark: the whole `crmhub sync` job on a sandbox profile, phase by phase.

Why: what a user with a large CRM waits for is the whole job (extraction under the CRMs' rate
limits, unify, handover, KPIs, writeback), not one part of it, and the hub's own work should add
little to the time the CRMs' published limits impose anyway. For each profile this script:

1. seeds the sandbox in its **own process** (the emulators' CPU and memory are not the hub's);
2. runs ``first`` (a first full sync), then lets the mutator change ``--share`` of the records
   (``changed``: an incremental sync), then ``idle`` (no change in the CRMs, but the echo of the
   previous writeback and the deletions HubSpot's six-hourly archived check finds) and
   ``settled`` (truly nothing new), each one hour later on the sandbox clock; every sync is a real Dagster run of ``sync_job`` (the job ``crmhub sync`` runs,
   with its resources built from the environment, its persistent instance and run config) in a
   **fresh child process**, so its peak RSS is the hub's own;
3. prints per phase and per step: wall seconds, records and records per second, API calls per
   CRM from the sandbox's request ledger next to the extraction's minimum (the logic of
   ``api_calls.py``; writes are shown as measured), the hub process's peak RSS, and the **floor**:
   the time the calls made would take at the real APIs' published limits (HubSpot: 190 requests
   per 10 s and 5 searches per second per portal; Salesforce has no per-second limit, only 25
   concurrent long-running requests: ``calls x --sf-call-seconds / min(25, Salesforce steps)``),
   with the hub's overhead = measured / floor;
4. writes the same figures as JSON (``--json``) and, with several profiles, the growth from the
   first to the last.

``--growth a.json b.json ...`` runs nothing: it reads the JSON of earlier runs (a ``large`` run
and a ``2x`` run take an hour or more each, so they are rarely one invocation) and prints the
growth curve across their profiles, with the exponent of each figure (1: linear, below 1:
sub-linear) and each step's peak RSS, the figure the flat-memory target is about.

Usage: ``uv run python benchmarks/sync_e2e.py --profile demo [--profile large ...] [--json out]``
(not part of ``uv run pytest``; ``demo`` takes a few minutes, ``large`` about an hour).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules
from api_calls import hs_minimum, sf_minimum, sf_record_count_minimum
from common import TOKEN_CATEGORIES, WRITE_CATEGORIES, classify, count_calls, machine_line

from assets.extract import HS_KINDS, SF_KINDS
from sandbox.catalog import PROFILES
from sandbox.mutate import mutate
from sandbox.runner import Sandbox
from sandbox.state import HS, SF, SandboxState, fmt_ts, parse_ts

ROOT = Path(__file__).resolve().parent.parent
#: HubSpot's published limits (Professional/Enterprise): burst per 10 s, searches per second.
HS_BURST_PER_10S = 190
HS_SEARCH_PER_S = 5
#: Salesforce: concurrent long-running requests per org (production).
SF_CONCURRENCY = 25
#: One-time field provisioning of the first writeback (Tooling API, HubSpot property creates).
PROVISIONING = frozenset({"tooling", "property create"})


# ---- the child processes ---------------------------------------------------------------------


def serve_child(home: Path, profile: str, seed: int) -> int:
    """Sandbox mode: seed, serve, print the sandbox info as JSON, serve until stdin closes."""
    sandbox = Sandbox(home)
    info = sandbox.start()
    started = time.perf_counter()
    # "existing": serve the state a kept run left (``--resume``), without seeding anew
    generated = {} if profile == "existing" else sandbox.seed(profile, seed=seed)
    generated["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps({"info": json.loads(info.to_json()), "generated": generated}), flush=True)
    sys.stdin.read()
    sandbox.stop()
    return 0


def _sync_job() -> Any:
    """The code location's sync job, module level: the multiprocess executor's step processes
    rebuild it from here (``dg.reconstructable``)."""
    from crmhub.runtime import _definitions

    return _definitions().resolve_job_def("sync_job")


class _TreePeak:
    """The largest peak RSS (``VmHWM``) of any process below this one, sampled from ``/proc``.

    Why: ``RUSAGE_CHILDREN`` only counts children that were waited for; the multiprocess
    executor's step processes are children of its fork server, which is not, so a 1.3 GB KPI
    step showed as the run's 400 MB. Each process's high-water mark survives until it exits,
    so sampling twice a second misses only the last half second of a step.
    """

    def __init__(self) -> None:
        import threading

        self.peak_kb = 0
        #: pid -> [peak kB, first seen, last seen] (epoch seconds)
        self.processes: dict[int, list[Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _descendants(self) -> list[int]:
        """The process tree below this one: through ``/proc/<pid>/task/<tid>/children`` (the
        tree only), else a scan of every process (a scan four times a second cost the run's
        own process 13 s of CPU in a 250 s writeback: the machine's two cores are the bench)."""
        if os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
            out, todo = [], [os.getpid()]
            while todo:
                pid = todo.pop()
                try:
                    tasks = os.listdir(f"/proc/{pid}/task")
                except OSError:  # ended meanwhile
                    continue
                for task in tasks:
                    try:
                        with open(f"/proc/{pid}/task/{task}/children") as f:
                            kids = [int(k) for k in f.read().split()]
                    except (OSError, ValueError):
                        continue
                    out.extend(kids)
                    todo.extend(kids)
            return out
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
        out, todo = [], [os.getpid()]
        while todo:
            kids = parents.get(todo.pop(), [])
            out.extend(kids)
            todo.extend(kids)
        return out

    def sample(self) -> None:
        now = time.time()
        for pid in self._descendants():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            kb = int(line.split()[1])
                            self.peak_kb = max(self.peak_kb, kb)
                            seen = self.processes.setdefault(pid, [kb, now, now])
                            seen[0], seen[2] = max(seen[0], kb), now
                            break
            except (OSError, ValueError):
                continue

    def by_step(self, steps: dict[str, dict[str, Any]]) -> None:
        """Each step's peak RSS, by the pid its worker logged (``STEP_WORKER_STARTED``)."""
        for step in steps.values():
            seen = self.processes.get(step.get("pid", -1))
            if seen is not None:
                step["peak_rss_mb"] = round(seen[0] / 1024)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


#: ``--hub-child ... writeback``: only the writeback steps (``--first-writeback``)
WRITEBACK_KEYS = (("salesforce", "writeback"), ("hubspot", "writeback"))


def _cpu_of_this_and_reaped() -> float:
    """CPU seconds (user and system) of this process and of every descendant already reaped.

    Why: the run's CPU is the hub's own work whatever the machine's contention does to the wall
    time (on the bench's two shared cores the same code's 1 % run wandered by 10 % in an hour).
    The multiprocess executor's step processes are reaped by its fork server, and the server,
    once stopped, by this process, so after ``stop_forkserver`` they are all counted here.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def hub_child(home: Path, info_path: Path, executor: str = "in-process", only: str = "") -> int:
    """Hub mode: one `crmhub sync` run (same definitions, instance and run config) as JSON.

    ``executor`` "multiprocess" runs the same job through Dagster's multiprocess executor (what
    the schedules use): the independent extraction steps of both CRMs in parallel, one process
    per step, so its wall time can be set next to the in-process one measured the same way."""
    from crmhub import settings

    info = json.loads(info_path.read_text())
    os.environ["CRMHUB_HOME"] = str(home)
    os.environ.update(settings.sandbox_environment(argparse.Namespace(**info)))
    os.chdir(home)  # dagster.yaml keeps the run storage in .crmhub/dagster below the cwd
    from crmhub.runtime import (
        SYNC_TRIGGER_TAG,
        _dagster_instance,
        _definitions,
        _fresh_forkserver,
        release_dead_syncs,
        stop_forkserver,
    )

    if executor == "multiprocess":  # as ``crmhub sync`` does: it imports while the run gets ready
        _fresh_forkserver(None)
    defs = _definitions()
    job = defs.resolve_job_def("sync_job")
    run_config = {"ops": {}, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    import dagster as dg

    selection = [dg.AssetKey(list(k)) for k in WRITEBACK_KEYS] if only == "writeback" else None
    cpu_before = _cpu_of_this_and_reaped()
    started = time.time()
    # only where step processes exist: the sampler thread costs the in-process run ~1 % CPU
    tree = _TreePeak() if executor == "multiprocess" else None
    with _dagster_instance() as instance:
        release_dead_syncs(instance)  # as crmhub sync does: a killed earlier run holds no slot
        if executor == "multiprocess":
            result: Any = dg.execute_job(
                dg.reconstructable(_sync_job),
                instance=instance,
                run_config=run_config,
                raise_on_error=False,
                tags=dict([SYNC_TRIGGER_TAG]),
                asset_selection=selection,
            )
        else:
            result = job.execute_in_process(
                instance=instance,
                run_config=run_config,
                raise_on_error=False,
                tags=dict([SYNC_TRIGGER_TAG]),
                asset_selection=selection,
            )
        ended = time.time()
        logs = instance.all_logs(result.run_id)
    tree_kb = tree.stop() if tree is not None else 0
    steps: dict[str, dict[str, Any]] = {}
    for entry in logs:
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        step = steps.setdefault(entry.step_key, {})
        kind = event.event_type_value
        if kind == "STEP_START":
            step["start"] = entry.timestamp
        elif kind == "STEP_WORKER_STARTED":  # the multiprocess executor: the step's process
            pid = event.event_specific_data.metadata.get("pid")
            if pid is not None:
                step["pid"] = int(pid.value)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            step["end"] = entry.timestamp
            step["ok"] = kind == "STEP_SUCCESS"
        elif kind == "ASSET_MATERIALIZATION":
            md = event.event_specific_data.materialization.metadata
            for name in ("records", "customers", "records_changed", "write_calls"):
                if name in md:
                    step[name] = int(md[name].value)
            # what the step did inside: unify's phases, how much the handover evaluated, whether
            # the company KPIs recomputed (the incremental paths are the 1 % run's figures)
            if "seconds_per_phase" in md:
                step["inner"] = dict(md["seconds_per_phase"].value)
            for name in (
                "evaluated",
                "changed",
                "full_recompute",
                "worker_processes",
                "recomputed",
                "golden_records_recomputed",
                "children_only",
                "resolution_reused",
                "skipped_unchanged",
            ):
                if name in md:
                    step.setdefault("detail", {})[name] = md[name].value
    if tree is not None:
        tree.by_step(steps)
    payload = {
        "success": result.success,
        "start": started,
        "end": ended,
        "steps": steps,
        # the largest hub process: this one, or (multiprocess) the largest step process
        "peak_rss_mb": round(
            max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                tree_kb,
            )
            / 1024,
            1,
        ),
        "executor": executor,
    }
    if executor == "multiprocess":  # reaped, the server's steps count as this one's children
        stop_forkserver()
    payload["cpu_seconds"] = round(_cpu_of_this_and_reaped() - cpu_before, 1)
    print(json.dumps(payload), flush=True)
    return 0 if result.success else 1


# ---- the parent --------------------------------------------------------------------------------


def _extraction_minimum(state: SandboxState, since: str | None) -> dict[str, int]:
    """The fewest extraction calls per CRM (pages + required discovery), as api_calls.py counts."""
    out = {SF: sf_record_count_minimum(state, since), HS: 0}
    for crm, kinds, minimum in ((SF, SF_KINDS, sf_minimum), (HS, HS_KINDS, hs_minimum)):
        for kind in kinds:
            _, pages, discovery, _ = minimum(state, kind, since)
            out[crm] += pages + discovery
    return out


def _floor(hs_calls: int, hs_searches: int, sf_calls: int, sf_call_seconds: float) -> float:
    """Seconds the calls need at the published limits, both CRMs read at the same time."""
    hs = max(hs_calls * 10.0 / HS_BURST_PER_10S, hs_searches / HS_SEARCH_PER_S)
    sf = sf_calls * sf_call_seconds / min(SF_CONCURRENCY, len(SF_KINDS))
    return max(hs, sf)


def _ledger(state: SandboxState, head: int) -> list[dict[str, Any]]:
    rows = []
    for r in state.ledger(since=head):
        category = classify(r["crm"], r["method"], r["path"])
        if category in TOKEN_CATEGORIES:
            continue
        rows.append({"crm": r["crm"], "ts": parse_ts(r["ts"]).timestamp(), "category": category})
    return rows


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(
    home: Path,
    info_path: Path,
    state: SandboxState,
    phase: str,
    since: str | None,
    args: Any,
    sandbox_pid: int,
) -> dict[str, Any]:
    """One hub run in a child process, with the sandbox's ledger and the minimum around it."""
    minimum = _extraction_minimum(state, since)
    sandbox_cpu = _cpu_seconds(sandbox_pid)
    head = state.ledger_head()
    offset = (state.now() - dt.datetime.now(dt.UTC)).total_seconds()  # sandbox clock - real
    started = time.time()
    command = [sys.executable, __file__, "--hub-child", str(home), str(info_path), args.executor]
    if phase == "first-writeback":
        command.append("writeback")
    if args.pyspy:  # sample the hub process: where its own time goes, per phase
        out = Path(args.pyspy) / f"{home.parent.name}-{phase}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = ["py-spy", "record", "-r", "20", "-f", "raw", "-o", str(out)]
        if args.executor == "multiprocess":  # the steps run in child processes of the run
            spy.append("--subprocesses")
        command = [*spy, "--", *command]
    child = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.time() - started
    sandbox_cpu = _cpu_seconds(sandbox_pid) - sandbox_cpu
    if child.returncode != 0 and not child.stdout.strip():
        raise RuntimeError(f"hub run {phase} failed:\n{child.stderr[-3000:]}")
    # the last JSON line (py-spy, when recording, prints its own lines too)
    run = json.loads([x for x in child.stdout.splitlines() if x.startswith("{")][-1])
    ledger = _ledger(state, head)
    calls = {crm: sum(1 for r in ledger if r["crm"] == crm) for crm in (SF, HS)}
    searches = sum(1 for r in ledger if r["crm"] == HS and r["category"] == "search")
    extraction, writes, breakdown = {}, {}, {}
    for crm in (SF, HS):
        counted = count_calls(state, head, crm)
        rest, written = counted.split(WRITE_CATEGORIES | PROVISIONING)
        extraction[crm], writes[crm], breakdown[crm] = rest.api, written.api, counted.breakdown()
    steps = []
    for key, step in sorted(run["steps"].items(), key=lambda kv: kv[1].get("start", 0)):
        lo, hi = step.get("start", 0) + offset, step.get("end", 0) + offset
        in_step = [r for r in ledger if lo <= r["ts"] <= hi]
        seconds = step.get("end", 0) - step.get("start", 0)
        records = step.get("records", step.get("customers", step.get("records_changed")))
        steps.append(
            {
                "step": key,
                "seconds": round(seconds, 2),
                "records": records,
                "records_per_s": round(records / seconds, 1) if records and seconds else None,
                "calls": len(in_step),
                "ok": step.get("ok"),
                **({"peak_rss_mb": step["peak_rss_mb"]} if "peak_rss_mb" in step else {}),
                **({"inner_seconds": step["inner"]} if step.get("inner") else {}),
                **({"detail": step["detail"]} if step.get("detail") else {}),
            }
        )
    records = sum(
        s["records"] or 0
        for s in steps
        if s["step"].startswith(("salesforce__", "hubspot__"))
        and not s["step"].endswith("writeback")
    )
    floor = _floor(calls[HS], searches, calls[SF], args.sf_call_seconds)
    hub_seconds = run["end"] - run["start"]
    return {
        "phase": phase,
        "success": run["success"],
        "wall_seconds": round(wall, 1),
        "job_seconds": round(hub_seconds, 1),
        "records_extracted": records,
        "records_per_s": round(records / hub_seconds, 1) if hub_seconds else None,
        "peak_rss_mb": run["peak_rss_mb"],
        "sandbox_cpu_seconds": round(sandbox_cpu, 1),
        # the hub's run: its process and every step process (the fork server's imports too)
        "hub_cpu_seconds": run.get("cpu_seconds"),
        "calls": calls,
        "extraction_calls": extraction,
        "write_calls": writes,
        "calls_breakdown": breakdown,
        "hs_searches": searches,
        "extraction_minimum": minimum,
        "floor_seconds": round(floor, 1),
        "over_floor": round(hub_seconds / floor, 2) if floor else None,
        "steps": steps,
    }


def forget_writebacks(hub: Path) -> None:
    """Make the kept hub's next writeback a first one: ledger, audit and watermarks dropped.

    Why: a first writeback of ``large`` (145,000 records, 1,300 calls) is the longest step after
    extraction; measuring it on a kept org takes minutes instead of a whole first sync. The hub
    fields are already provisioned, so no provisioning call is made (a real first run makes 34).
    """
    from unified_model import incremental
    from unified_model import tables as t
    from unified_model.store import HubStore

    store = HubStore(f"sqlite:///{hub / 'hub.db'}")
    try:
        with store.engine.begin() as conn:
            for model in (t.WritebackLedger, t.WriteAudit):
                conn.execute(t.table_of(model).delete())
        incremental.forget(
            store, *(p for p in incremental.DOWNSTREAM if p.startswith("writeback:"))
        )
    finally:
        store.dispose()


def start_sandbox(home: Path, profile: str, seed: int) -> tuple[subprocess.Popen[str], dict]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--sandbox-child", str(home), profile, str(seed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait()
        raise RuntimeError(f"sandbox child exited with {child.returncode} before serving")
    return child, json.loads(line)


def bench_profile(profile: str, args: Any) -> dict[str, Any]:
    """Seed, then first / changed / idle / settled; with ``--resume`` the kept folder of an earlier run
    (sandbox state and hub) is used instead of seeding and the first sync: the changed, idle and settled
    phases re-measured on new code without the hour a ``large`` first sync takes."""
    resume = Path(args.resume) if args.resume else None
    home = resume or Path(tempfile.mkdtemp(prefix=f"crmhub-e2e-{profile}-", dir=args.dir))
    sandbox: subprocess.Popen[str] | None = None
    try:
        started = time.time()
        if args.from_snapshot and resume is None:  # the same seeded org, without seeding again
            (home / "sandbox").mkdir(parents=True)
            shutil.copyfile(args.from_snapshot, home / "sandbox" / "sandbox.db")
        sandbox, ready = start_sandbox(
            home / "sandbox",
            "existing" if resume or args.from_snapshot else profile,
            args.seed,
        )
        if args.snapshot and resume is None:  # keep the freshly seeded org for another executor
            with (
                sqlite3.connect(ready["info"]["state_path"]) as src,
                sqlite3.connect(args.snapshot) as dst,
            ):
                src.backup(dst)
            print(f"[{profile}] seeded org saved to {args.snapshot}", file=sys.stderr)
        generated = ready["generated"]
        print(f"[{profile}] sandbox ready in {generated['seconds']} s", file=sys.stderr)
        info_path = home / "sandbox-info.json"
        info_path.write_text(json.dumps(ready["info"]))
        state = SandboxState(ready["info"]["state_path"])
        phases = []
        changes: dict[str, int] = {}  # --rounds 0: the first sync only
        mutate_seconds = 0.0
        if resume is None:
            (home / "hub").mkdir()
            first = run_phase(home / "hub", info_path, state, "first", None, args, sandbox.pid)
            phases.append(first)
            _progress(profile, phases[-1])
        else:
            state.advance_clock(args.gap)  # later than the kept run's last sync
        if resume is not None and args.first_writeback:
            forget_writebacks(home / "hub")
            phases.append(
                run_phase(
                    home / "hub", info_path, state, "first-writeback", None, args, sandbox.pid
                )
            )
            _progress(profile, phases[-1])

        def run_quiet(name: str) -> None:
            """A sync one gap after the last, with no change made in the CRMs meanwhile."""
            state.advance_clock(args.gap)
            since = fmt_ts(state.now())
            phases.append(run_phase(home / "hub", info_path, state, name, since, args, sandbox.pid))
            _progress(profile, phases[-1])

        for round_ in range(1, 0 if args.first_writeback else args.rounds + 1):
            tag = "" if round_ == 1 else f"-{round_}"
            # The mutation happens one gap before the next run, as api_calls.py does: HubSpot's
            # search index lags, so a read never reaches closer than a margin to the portal's now.
            since = fmt_ts(state.now())
            t = time.time()
            changes = mutate(state, seed=args.seed + round_ - 1, share=args.share)
            mutate_seconds = round(time.time() - t, 1)
            state.advance_clock(args.gap)
            print(f"[{profile}] mutate {args.share:g}: {mutate_seconds} s", file=sys.stderr)
            phases.append(
                run_phase(home / "hub", info_path, state, f"changed{tag}", since, args, sandbox.pid)
            )
            _progress(profile, phases[-1])
            # ``idle`` is the run after an incremental one: it reads the echo of that run's
            # writeback, and HubSpot deletions the archived check finds only then; ``settled``
            # is the one after it, with truly nothing new (the nothing-changed target)
            for name in ("idle", "settled"):
                run_quiet(f"{name}{tag}")
        for n in range(1, args.settled + 1):  # nothing changed since the last sync, again
            run_quiet(f"nothing-{n}")
        state.close()
        return {
            "profile": profile,
            "seed": args.seed,
            "seed_seconds": generated["seconds"],
            "resumed": str(resume) if resume else None,
            "generated": {k: v for k, v in generated.items() if "/" in k},
            "mutation": {k: changes.get(k, 0) for k in ("updated", "created", "deleted")},
            "mutate_seconds": mutate_seconds,
            "total_seconds": round(time.time() - started, 1),
            "phases": phases,
        }
    finally:
        if sandbox is not None:
            if sandbox.stdin:
                sandbox.stdin.close()
            try:
                sandbox.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sandbox.kill()
        if args.keep or resume:
            print(f"kept: {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)


def _progress(profile: str, p: dict[str, Any]) -> None:
    print(
        f"[{profile}] {p['phase']}: {p['job_seconds']} s, calls {p['calls']}, "
        f"peak RSS {p['peak_rss_mb']} MB, floor {p['floor_seconds']} s",
        file=sys.stderr,
        flush=True,
    )


#: settings that change how fast a run can go: printed and kept with the figures
TUNING_ENV = ("CRMHUB_HS_BURST_LIMIT", "CRMHUB_MAX_CONCURRENT_STEPS")


def tuning() -> dict[str, str]:
    """The performance settings this benchmark's hub runs see (unset: the hub's defaults)."""
    return {name: os.environ[name] for name in TUNING_ENV if os.environ.get(name)}


def report(results: list[dict[str, Any]], args: Any) -> str:
    settings_text = ", ".join(f"{k}={v}" for k, v in tuning().items()) or "default settings"
    lines = [
        f"# End-to-end sync, commit {_commit()}, executor {args.executor}, {settings_text}",
        "",
        machine_line(),
        "",
    ]
    for res in results:
        m = res["mutation"]
        lines += [
            f"## Profile `{res['profile']}` (seed {res['seed']}; sandbox seeded in its own process "
            f"in {res['seed_seconds']} s; mutation {args.share:g}: {m['updated']:,} edited, "
            f"{m['created']:,} created, {m['deleted']:,} deleted in {res['mutate_seconds']} s)",
            "",
            "| phase | job s | hub CPU s | sandbox CPU s | records | rec/s | peak RSS MB | SF calls "
            "| SF extraction (min) "
            "| HS calls | HS extraction (min) | HS searches | floor s | job / floor |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: |",
        ]
        for p in res["phases"]:
            mn = p["extraction_minimum"]
            lines.append(
                f"| {p['phase']}{'' if p['success'] else ' (FAILED)'} | {p['job_seconds']} "
                f"| {p.get('hub_cpu_seconds')} | {p['sandbox_cpu_seconds']} "
                f"| {p['records_extracted']:,} | {p['records_per_s']} | {p['peak_rss_mb']:,.0f} "
                f"| {p['calls'][SF]} | {p['extraction_calls'][SF]} ({mn[SF]}) "
                f"| {p['calls'][HS]} | {p['extraction_calls'][HS]} ({mn[HS]}) "
                f"| {p['hs_searches']} | {p['floor_seconds']} | {p['over_floor']} |"
            )
        lines.append("")
        lines.append(
            "Per-step calls are the calls of the step's CRM while the step ran: where steps of "
            "one CRM overlap (two per CRM pool), a call counts under each; the per-CRM totals "
            "above are exact."
        )
        lines.append("")
        for p in res["phases"]:
            cells = ", ".join(
                f"{s['step']} {s['seconds']} s"
                + (f" ({s['records']:,} rec, {s['records_per_s']}/s)" if s["records"] else "")
                + (f" {s['calls']} calls" if s["calls"] else "")
                + (f" {s['peak_rss_mb']:,} MB" if "peak_rss_mb" in s else "")
                + (
                    " [" + ", ".join(f"{k} {v} s" for k, v in s["inner_seconds"].items()) + "]"
                    if s.get("inner_seconds")
                    else ""
                )
                + (
                    " [" + ", ".join(f"{k} {v}" for k, v in s["detail"].items()) + "]"
                    if s.get("detail")
                    else ""
                )
                for s in p["steps"]
            )
            lines.append(f"- `{p['phase']}` steps: {cells}")
            lines.append(
                f"- `{p['phase']}` calls: Salesforce {p['calls_breakdown'][SF] or 'none'}; "
                f"HubSpot {p['calls_breakdown'][HS] or 'none'}"
            )
        lines.append("")
    if len(results) > 1:
        first, last = results[0], results[-1]
        lines.append(f"## Growth `{first['profile']}` → `{last['profile']}`")
        lines.append("")
        for a, b in zip(first["phases"], last["phases"], strict=True):
            lines.append(
                f"- {a['phase']}: job {a['job_seconds']} → {b['job_seconds']} s "
                f"(x{b['job_seconds'] / max(a['job_seconds'], 0.1):.1f}), peak RSS "
                f"{a['peak_rss_mb']:.0f} → {b['peak_rss_mb']:.0f} MB "
                f"(x{b['peak_rss_mb'] / max(a['peak_rss_mb'], 1):.1f}), records "
                f"{a['records_extracted']:,} → {b['records_extracted']:,}"
            )
    return "\n".join(lines)


def _exponent(a: float, b: float, n_a: int, n_b: int) -> float | None:
    """``k`` in ``b / a = (n_b / n_a) ** k``: 1 linear growth, below 1 sub-linear."""
    if a <= 0 or b <= 0 or n_a == n_b:
        return None
    return math.log(b / a) / math.log(n_b / n_a)


def growth_report(payloads: list[dict[str, Any]]) -> str:
    """The growth curve across the profiles of earlier runs' JSON (``--json``), smallest first.

    Per phase present in every run: job seconds, the floor, records read and the hub's peak
    RSS, each with its exponent from the smallest profile to the largest; then the peak RSS of
    every step of the first sync (where memory grows; multiprocess runs only, a step per
    process). Runs from different commits, machines or executors are labelled as such: their
    times differ by more than the data does, and an in-process run's peak is the whole job's.
    """
    runs = []
    for payload in payloads:
        for res in payload["results"]:
            customers = PROFILES[res["profile"]].customers
            label = (
                f"{payload.get('commit', '?')}, {payload.get('executor', 'executor not recorded')}"
            )
            runs.append((customers, res, label, payload.get("machine", "")))
    runs.sort(key=lambda r: r[0])
    if len({r[0] for r in runs}) < 2:
        raise SystemExit("--growth needs runs of at least two profiles (JSON written by --json)")
    head = " | ".join(f"`{r[1]['profile']}` (`{r[2]}`)" for r in runs)
    lines = [f"# Growth {' → '.join(r[1]['profile'] for r in runs)}", ""]
    lines += [f"- `{r[1]['profile']}` at `{r[2]}`: {r[3]}" for r in runs]
    lines.append("")
    lines.append(f"| phase | figure | {head} | exponent |")
    lines.append("| --- | --- |" + " ---: |" * (len(runs) + 1))
    (n_a, first, *_), n_b = runs[0], runs[-1][0]
    phases = [p["phase"] for p in first["phases"]]
    for name in phases:
        rows = [next((p for p in r[1]["phases"] if p["phase"] == name), None) for r in runs]
        if any(p is None for p in rows):
            continue
        for label, key in (
            ("job s", "job_seconds"),
            ("floor s", "floor_seconds"),
            ("records read", "records_extracted"),
            ("peak RSS MB", "peak_rss_mb"),
        ):
            values = [float(p[key]) for p in rows if p is not None]
            k = _exponent(values[0], values[-1], n_a, n_b)
            cells = " | ".join(f"{v:,.0f}" if v >= 100 else f"{v:,.1f}" for v in values)
            lines.append(f"| {name} | {label} | {cells} | {'' if k is None else f'{k:.2f}'} |")
    lines.append("")
    lines.append("Peak RSS per step of the first sync (MB), largest last profile first:")
    lines.append("")
    steps: dict[str, list[float | None]] = {}
    for i, r in enumerate(runs):
        phase = next((p for p in r[1]["phases"] if p["phase"] == "first"), None)
        for step in phase["steps"] if phase else []:
            if "peak_rss_mb" in step:
                steps.setdefault(step["step"], [None] * len(runs))[i] = float(step["peak_rss_mb"])
    lines.append(f"| step | {head} | exponent |")
    lines.append("| --- |" + " ---: |" * (len(runs) + 1))
    ranked = sorted(steps.items(), key=lambda kv: -(kv[1][-1] or 0.0))
    for step, per_run in ranked:
        if max((v or 0.0) for v in per_run) < 200:  # the step processes' own floor, ~160 MB
            continue
        first_v, last_v = per_run[0], per_run[-1]
        k = (
            _exponent(first_v, last_v, n_a, n_b)
            if first_v is not None and last_v is not None
            else None
        )
        cells = " | ".join("" if v is None else f"{v:,.0f}" for v in per_run)
        lines.append(f"| {step} | {cells} | {'' if k is None else f'{k:.2f}'} |")
    return "\n".join(lines)


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--sandbox-child"]:
        return serve_child(Path(argv[1]), argv[2], int(argv[3]))
    if argv[:1] == ["--hub-child"]:
        return hub_child(Path(argv[1]), Path(argv[2]), *argv[3:5])
    if argv[:1] == ["--growth"]:  # earlier runs' JSON files: print their growth, run nothing
        print(growth_report([json.loads(Path(f).read_text()) for f in argv[1:]]))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--profile", action="append", help="tiny, demo, large, 2x, 4x (repeat for growth)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--share", type=float, default=0.01, help="share of records changed")
    parser.add_argument("--gap", type=float, default=3600.0, help="sandbox seconds between runs")
    parser.add_argument(
        "--sf-call-seconds",
        type=float,
        default=1.0,
        help="assumed seconds per Salesforce call at the real API, for the floor",
    )
    parser.add_argument("--dir", default="/tmp", help="parent of the temporary folders")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument(
        "--resume",
        help="a folder kept by --keep: skip seeding and the first sync, measure changed, idle and settled",
    )
    parser.add_argument("--pyspy", help="record a py-spy profile of each hub run into this folder")
    parser.add_argument(
        "--first-writeback",
        action="store_true",
        help="with --resume: forget the kept hub's writebacks (ledger, audit, watermarks) and run "
        "only the two writeback steps, as a first sync writes back (mutates the kept folder)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat change + changed, idle and settled syncs this many times (the second round of a "
        "--resume after an upgrade shows the incremental figures)",
    )
    parser.add_argument(
        "--settled",
        type=int,
        default=0,
        help="then this many more syncs with nothing changed in the CRMs (with --resume "
        "--rounds 0: the nothing-changed target alone, repeated)",
    )
    parser.add_argument(
        "--executor",
        choices=["in-process", "multiprocess"],
        default="in-process",
        help="Dagster executor of the hub runs: in-process (crmhub sync) or multiprocess (the "
        "schedules' executor: extraction steps in parallel)",
    )
    parser.add_argument(
        "--snapshot", help="save the freshly seeded sandbox org to this file (SQLite backup)"
    )
    parser.add_argument(
        "--from-snapshot",
        help="start from an org saved by --snapshot instead of seeding (same data, e.g. to "
        "measure the other executor)",
    )
    args = parser.parse_args(argv)
    profiles = args.profile or ["demo"]
    results = [bench_profile(p, args) for p in profiles]
    text = report(results, args)
    print(text)
    if args.json:
        payload = {
            "commit": _commit(),
            "executor": args.executor,
            "settings": tuning(),
            "machine": machine_line(),
            "when": dt.datetime.now(dt.UTC).isoformat(),
            "share": args.share,
            "sf_call_seconds": args.sf_call_seconds,
            "results": results,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
