"""One writer per hub, and nothing lost or written twice after a kill: two ``crmhub sync`` started
together on one hub database (SQLite and PostgreSQL) write every record once and the second exits
75 with who holds the hub; a sync SIGKILLed at each named crash point (after a page fetch, after a
page is stored but before its cursor, after write intents are committed, after a batch is sent but
before its outcome is stored, after the outcome is stored) converges on re-run to the fault-free
result with exactly one audit row per record write and no record written twice; text the
databases cannot hold (NUL, a lone surrogate, an over-long domain) is stored normalised without
blocking its page; and two syncs on unchanged data leave identical handover states.

Every sync here is the real ``crmhub`` command in its own process (so SIGKILL is real), against
the built-in sandbox (tiny profile), with its own CRMHUB_HOME and Dagster home.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sandbox.state import HS, SF, SandboxState
from unified_model import tables as t
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WRITE_PATHS = ("/composite/sobjects", "/batch/update", "/jobs/ingest")


@dataclass
class Hub:
    """One hub: CRMHUB_HOME (sandbox state, Dagster home) and its database URL."""

    home: Path
    db_url: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMHUB_")}
        dagster_home = self.home / "dagster"
        dagster_home.mkdir(parents=True, exist_ok=True)
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env.update(
            CRMHUB_HOME=str(self.home),
            CRMHUB_DATABASE_URL=self.db_url,
            DAGSTER_HOME=str(dagster_home),
            CRMHUB_LOCK_WAIT_SECONDS="0",
        )
        env.update(extra)
        return env

    def command(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "crmhub.cli", *argv]

    def run(self, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*argv),
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=600,
        )

    def sync(self, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("sync", "--profile", "tiny", **extra)

    def seed(self) -> None:
        done = self.run("sandbox", "seed", "--profile", "tiny", "--seed", "42")
        assert done.returncode == 0, done.stderr

    def sandbox(self) -> SandboxState:
        return SandboxState(self.home / "sandbox" / "sandbox.db")

    def store(self) -> HubStore:
        return HubStore(self.db_url)


def _new_hub(tmp_path: Path, dialect: str, request: pytest.FixtureRequest) -> Hub:
    home = tmp_path / "home"
    if dialect == "sqlite":
        return Hub(home, f"sqlite:///{home / 'hub.db'}")
    pg = request.getfixturevalue("postgres_url")
    return Hub(home, pg)


# --------------------------------------------------------------------------------------------
# What a hub holds, for comparison with a fault-free run
# --------------------------------------------------------------------------------------------


def record_writes(state: SandboxState) -> dict[str, int]:
    """Record-write requests the CRMs executed, per CRM (a lost answer was still executed)."""
    out = {SF: 0, HS: 0}
    for r in state.ledger(0):
        if (
            r["method"] in ("POST", "PATCH", "PUT")
            and any(p in r["path"] for p in WRITE_PATHS)
            and "/batch/read" not in r["path"]
            and r["status"]
            and 200 <= r["status"] < 300
        ):
            out[r["crm"]] += 1
    return out


def crm_hub_values(state: SandboxState) -> dict[tuple[str, str, str], Any]:
    """The hub's fields as the CRMs hold them (``last_sync`` left out: it is a time)."""
    out: dict[tuple[str, str, str], Any] = {}
    with state._lock:
        rows = state._conn.execute(
            "SELECT crm, id, data FROM records WHERE deleted = 0 AND "
            "((crm = 'salesforce' AND object = 'Account') OR "
            "(crm = 'hubspot' AND object = 'companies'))"
        ).fetchall()
    for crm, rid, raw in rows:
        for key, value in json.loads(raw).items():
            hub = key.startswith("crmhub_") or (key.startswith("Hub_") and key.endswith("__c"))
            if hub and "last_sync" not in key.lower() and value not in (None, ""):
                out[(crm, rid, key)] = value
    return out


@dataclass
class Snapshot:
    ledger: dict[tuple[str, str, str], str | None]
    handover: dict[str, tuple[str, str, str]]
    crm: dict[tuple[str, str, str], Any]
    source_rows: dict[str, int]
    writes: dict[str, int]


def snapshot(hub: Hub) -> Snapshot:
    store = hub.store()
    try:
        ledger = {
            (r.source, r.source_id, r.field_key): r.value
            for r in store.all(t.WritebackLedger)
            if r.field_key != "last_sync"
        }
        handover = {
            h.customer_id: (h.status, h.summary, json.dumps(h.reasons, sort_keys=True))
            for h in store.all(t.HandoverState)
        }
        source_rows = {
            model.__tablename__: store.count(model, live_only=False)  # type: ignore[attr-defined]
            for model in t.SOURCE_TABLES.values()
        }
    finally:
        store.dispose()
    state = hub.sandbox()
    try:
        return Snapshot(ledger, handover, crm_hub_values(state), source_rows, record_writes(state))
    finally:
        state.close()


def audit_rows(hub: Hub) -> list[t.WriteAudit]:
    store = hub.store()
    try:
        return list(store.all(t.WriteAudit))
    finally:
        store.dispose()


def duplicate_transitions(hub: Hub) -> int:
    store = hub.store()
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM (SELECT customer_id, from_status, to_status, "
                        "count(*) AS n FROM handover_transition "
                        "GROUP BY customer_id, from_status, to_status HAVING count(*) > 1) d"
                    )
                ).scalar()
                or 0
            )
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """A fault-free first sync of the same seeded sandbox."""
    home = tmp_path_factory.mktemp("reference") / "home"
    hub = Hub(home, f"sqlite:///{home / 'hub.db'}")
    hub.seed()
    done = hub.sync()
    assert done.returncode == 0, done.stdout + done.stderr
    snap = snapshot(hub)
    assert snap.writes[SF] >= 1 and snap.writes[HS] >= 1 and snap.ledger
    return snap


def assert_converged(hub: Hub, ref: Snapshot) -> None:
    got = snapshot(hub)
    assert got.source_rows == ref.source_rows  # nothing lost, nothing duplicated
    assert got.ledger == ref.ledger
    assert got.crm == ref.crm
    assert got.handover == ref.handover
    assert got.writes == ref.writes  # no record batch sent twice
    rows = audit_rows(hub)
    assert not [r for r in rows if r.outcome == "pending"]
    ok = [(r.source, r.source_id) for r in rows if r.outcome == "ok"]
    assert len(ok) == len(set(ok)), "a record has two successful writes"
    written = {(s, i) for s, i, _ in ref.ledger}
    assert set(ok) == written  # every record the CRM got has its one audit row
    assert duplicate_transitions(hub) == 0


# --------------------------------------------------------------------------------------------
# One writer per hub
# --------------------------------------------------------------------------------------------

LOCKED = re.compile(
    r"^crmhub: another sync has been running since \d\d:\d\d \(run [0-9a-f]{8}…, pid \d+\); "
    r"try again later, or set CRMHUB_LOCK_WAIT_SECONDS to wait for it$"
)


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_syncs_started_together_write_once_and_the_second_says_who_runs(
    tmp_path: Path, dialect: str, request: pytest.FixtureRequest, reference: Snapshot
) -> None:
    hub = _new_hub(tmp_path, dialect, request)
    hub.seed()
    procs = [
        subprocess.Popen(
            hub.command("sync", "--profile", "tiny"),
            cwd=ROOT,
            env=hub.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 75], outputs
    loser = outputs[[p.returncode for p in procs].index(75)]
    lines = [line for line in loser[1].splitlines() if line.strip()]
    assert len(lines) == 1 and LOCKED.match(lines[0]), loser
    assert "Traceback" not in loser[0] + loser[1]
    assert_converged(hub, reference)


def test_a_second_sync_told_to_wait_runs_after_the_first_and_writes_nothing_new(
    tmp_path: Path, reference: Snapshot
) -> None:
    hub = Hub(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'hub.db'}")
    hub.seed()
    procs = [
        subprocess.Popen(
            hub.command("sync", "--profile", "tiny"),
            cwd=ROOT,
            env=hub.env(CRMHUB_LOCK_WAIT_SECONDS="300"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    # the second found everything written: no record twice, no transition twice
    assert_converged(hub, reference)
    assert sum("0 records changed" in out for out, _ in outputs) >= 2  # 2 CRMs in the later run


# --------------------------------------------------------------------------------------------
# SIGKILL at every named point
# --------------------------------------------------------------------------------------------

#: Killed runs in order: each re-run is killed at the next point; a last run is left to finish.
#: HubSpot's writeback runs before Salesforce's, so ``writeback.before_send:1`` kills HubSpot's
#: first batch before sending, the next run settles it (not landed) and is killed right after
#: re-sending it, the next settles that one (landed) and is killed after Salesforce's outcome.
KILLS = (
    "extract.after_fetch:3",
    "extract.after_store:5",
    "writeback.before_send:1",
    "writeback.after_send:1",
    "writeback.after_record:1",
)


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_sync_killed_at_each_named_point_converges_to_the_fault_free_result(
    tmp_path: Path, dialect: str, request: pytest.FixtureRequest, reference: Snapshot
) -> None:
    hub = _new_hub(tmp_path, dialect, request)
    hub.seed()
    for point in KILLS:
        done = hub.sync(CRMHUB_CRASH_AT=point, CRMHUB_LOCK_WAIT_SECONDS="30")
        assert done.returncode == -signal.SIGKILL, (point, done.stdout[-2000:], done.stderr[-2000:])
    final = hub.sync(CRMHUB_LOCK_WAIT_SECONDS="30")
    assert final.returncode == 0, final.stdout + final.stderr
    assert_converged(hub, reference)
    settled = [r for r in audit_rows(hub) if (r.reason or "").startswith("settled after")]
    outcomes = sorted(r.outcome for r in settled)
    # HubSpot's batch killed before sending settles as failed (sent again), the one killed after
    # sending settles as ok (never sent again)
    assert "failed" in outcomes and "ok" in outcomes, outcomes


# --------------------------------------------------------------------------------------------
# Text the databases cannot hold
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_nul_bytes_broken_characters_and_overlong_domains_are_stored_normalised(
    tmp_path: Path, dialect: str, request: pytest.FixtureRequest
) -> None:
    hub = _new_hub(tmp_path, dialect, request)
    hub.seed()
    state = hub.sandbox()
    try:
        with state._lock:
            account = state._conn.execute(
                "SELECT id FROM records WHERE crm='salesforce' AND object='Account' "
                "AND deleted=0 ORDER BY id LIMIT 1"
            ).fetchone()[0]
            company = state._conn.execute(
                "SELECT id FROM records WHERE crm='hubspot' AND object='companies' "
                "AND deleted=0 ORDER BY id LIMIT 1"
            ).fetchone()[0]
            email = state._conn.execute(
                "SELECT id FROM records WHERE crm='hubspot' AND object='emails' "
                "AND deleted=0 ORDER BY id LIMIT 1"
            ).fetchone()[0]
        # dated an hour ago: HubSpot's search shows a change only after its index lag
        earlier = state.now() - dt.timedelta(hours=1)
        state.update(SF, "Account", account, {"Name": "Null\x00Byte GmbH"}, modified=earlier)
        state.update(
            HS,
            "companies",
            company,
            {"domain": "x" * 3000 + ".example", "name": "Br\udc80oken"},
            modified=earlier,
        )
        state.update(HS, "emails", email, {"hs_email_subject": "Re:\x00 offer"}, modified=earlier)
        live = {
            (crm, obj): n
            for crm, obj, n in state._conn.execute(
                "SELECT crm, object, count(*) FROM records WHERE deleted=0 GROUP BY crm, object"
            )
        }
    finally:
        state.close()
    done = hub.sync()
    assert done.returncode == 0, done.stdout + done.stderr
    store = hub.store()
    try:
        with store.session() as s:
            sf = s.get(t.SourceAccount, (SF, account))
            hs = s.get(t.SourceAccount, (HS, company))
            mail = s.get(t.Email, (HS, email))
        assert sf is not None and sf.name == "NullByte GmbH"
        assert hs is not None and hs.name == "Br\ufffdoken"
        assert hs.domain is not None and len(hs.domain) <= 512
        assert mail is not None and mail.subject == "Re: offer"
        # the records around them are all there
        assert len(store.live(t.SourceAccount, source=SF)) == live[(SF, "Account")]
        assert len(store.live(t.SourceAccount, source=HS)) == live[(HS, "companies")]
        assert len(store.live(t.Email, source=HS)) == live[(HS, "emails")]
    finally:
        store.dispose()


# --------------------------------------------------------------------------------------------
# Stable reasons
# --------------------------------------------------------------------------------------------


def test_a_second_sync_on_unchanged_data_leaves_identical_handover_states(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'hub.db'}")
    hub.seed()

    def states() -> list[tuple[Any, ...]]:
        store = hub.store()
        try:
            with store.engine.connect() as conn:
                return [
                    tuple(row)
                    for row in conn.execute(
                        sa.text(
                            "SELECT customer_id, status, rule_kind, summary, reasons, "
                            "ready_since, handed_over_on FROM handover_state ORDER BY customer_id"
                        )
                    )
                ]
        finally:
            store.dispose()

    assert hub.sync().returncode == 0
    first = states()
    second_run = hub.sync()
    assert second_run.returncode == 0
    assert "0 records changed" in second_run.stdout
    assert first and states() == first
