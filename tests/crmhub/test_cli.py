"""The ``crmhub`` command against its own sandbox (tiny profile, a temporary CRMHUB_HOME): ``sync``
prints a summary that agrees with the hub database and the sandbox's request ledger and exits 0,
``sync --dry-run`` shows changes and sends nothing, the look-up commands (customer, kpis, matches,
writeback log) answer from the hub database, an erased person stays out after a full re-read, the
sandbox commands seed and mutate the CRMs, and a configuration mistake stops the command with exit
code 2 and one line naming the key, before any CRM call.

The commands run in this process through ``crmhub.cli.main`` (one subprocess checks the installed
``crmhub`` script); they share one sandbox state and hub database, in file order.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from sandbox.runner import SANDBOX_HS_TOKEN, SANDBOX_SF_CLIENT_SECRET
from sandbox.state import SandboxState
from tests.crmhub.cli_support import Output, cli
from unified_model import tables as t
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
RECORD_WRITE_PATHS = ("/composite/sobjects", "/objects/companies/batch/update", "/jobs/ingest")


@dataclass
class Home:
    """The temporary CRMHUB_HOME: hub database and sandbox state of the CLI."""

    path: Path

    def store(self) -> HubStore:
        return HubStore(f"sqlite:///{self.path / 'hub.db'}")

    @contextlib.contextmanager
    def sandbox_state(self) -> Iterator[SandboxState]:
        state = SandboxState(self.path / "sandbox" / "sandbox.db")
        try:
            yield state
        finally:
            state.close()

    def ledger_head(self) -> int:
        with self.sandbox_state() as state:
            return state.ledger_head()

    def requests_since(self, head: int) -> list[dict[str, Any]]:
        with self.sandbox_state() as state:
            return state.ledger(head)


def record_writes(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in requests
        if r["method"] in ("POST", "PATCH", "PUT")
        and any(p in r["path"] for p in RECORD_WRITE_PATHS)
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """No CRM credentials (so the CLI serves the sandbox), a fresh CRMHUB_HOME, and a Dagster
    home of its own (run history stays out of the repository)."""
    tmp = tmp_path_factory.mktemp("cli")
    dagster_home = tmp / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("CRMHUB_"):
                mp.delenv(key)
        mp.setenv("CRMHUB_HOME", str(tmp / "home"))
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        yield Home(tmp / "home")


@pytest.fixture(scope="module")
def first_sync(home: Home) -> Output:
    return cli("sync", "--profile", "tiny")


def _one_line_error(output: Output | subprocess.CompletedProcess[str], *words: str) -> None:
    err = output.err if isinstance(output, Output) else output.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("crmhub: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------------
# sync
# --------------------------------------------------------------------------------------------


def test_sync_prints_a_summary_that_matches_the_hub_and_the_ledger(
    home: Home, first_sync: Output
) -> None:
    assert first_sync.code == 0, first_sync.out + first_sync.err
    out = first_sync.out
    assert "Seeding the sandbox CRMs with the 'tiny' data profile" in out
    assert f"Hub database: sqlite:///{home.path / 'hub.db'}" in out

    store = home.store()
    accounts = store.live(t.SourceAccount)
    for crm in ("salesforce", "hubspot"):
        n = sum(1 for a in accounts if a.source == crm)
        assert re.search(rf"^  {crm}\s+accounts\s+{n} records", out, re.M), crm
    customers = store.all(t.Customer)
    sources: dict[str, set[str]] = {}
    for a in accounts:
        sources.setdefault(a.customer_id or "", set()).add(a.source)
    both = sum(1 for c in customers if len(sources.get(c.id, set())) == 2)
    assert f"Customers: {len(customers)} unified — {both} matched across both CRMs" in out
    statuses = dict(
        (s, int(n))
        for s, n in re.findall(r"(\w+) (\d+)", out.split("Handover status: ")[1].splitlines()[0])
    )
    assert sum(statuses.values()) == len(customers)
    # a first run evaluates every customer (later runs only those whose data changed)
    assert f"Re-evaluated: {len(customers)} all customers (first run" in out

    for crm in ("salesforce", "hubspot"):
        linked = sum(1 for a in accounts if a.source == crm and a.customer_id)
        assert re.search(
            rf"^  {crm}\s+{linked} records changed, \d+ fields; ok {linked}, failed 0, "
            r"skipped 0; 1 write calls$",
            out,
            re.M,
        ), crm
    # the API calls it reports are the calls the sandboxes served
    calls_line = out.split("API calls this run:")[1].splitlines()[0].split(" (incl.")[0]
    reported = dict(re.findall(r"(salesforce|hubspot) (\d+)", calls_line))
    served = home.requests_since(0)
    for crm in ("salesforce", "hubspot"):
        assert int(reported[crm]) == sum(1 for r in served if r["crm"] == crm)
    assert "Some steps failed" not in out
    for secret in (SANDBOX_SF_CLIENT_SECRET, SANDBOX_HS_TOKEN):
        assert secret not in first_sync.out + first_sync.err
    store.dispose()


def test_sync_stores_every_activity_of_both_crms_with_its_customer(
    home: Home, first_sync: Output
) -> None:
    # Salesforce Tasks and Events, HubSpot calls, meetings, notes and tasks: each live one is a
    # live ``activity`` row attached to the customer of its account / company.
    assert first_sync.code == 0, first_sync.out + first_sync.err
    objects = {
        "salesforce": ("Task", "Event"),
        "hubspot": ("calls", "meetings", "notes", "tasks"),
    }
    with home.sandbox_state() as state:
        expected = {
            crm: {
                str(r[0])
                for obj in objs
                for r in state.execute(
                    "SELECT id FROM records WHERE crm=? AND object=? AND deleted=0",
                    (crm, obj),
                )
            }
            for crm, objs in objects.items()
        }
    store = home.store()
    activities = store.live(t.Activity)
    accounts = {(a.source, a.source_id): a.customer_id for a in store.live(t.SourceAccount)}
    for crm, ids in expected.items():
        assert ids, crm  # the tiny profile seeds activities in both CRMs
        assert {a.source_id for a in activities if a.source == crm} == ids, crm
    kinds = {(a.source, a.kind) for a in activities}
    assert {("salesforce", "meeting"), ("hubspot", "call"), ("hubspot", "meeting")} <= kinds
    assert {("hubspot", "note"), ("hubspot", "task")} <= kinds
    for a in activities:
        assert a.customer_id is not None, (a.source, a.source_id)
        assert a.customer_id == accounts[(a.source, a.account_source_id)]
    store.dispose()


@pytest.mark.timeout(180)
def test_a_sync_killed_mid_run_does_not_block_the_next_one(home: Home, first_sync: Output) -> None:
    """A sync killed mid-step stays "started" and holds its CRM pool's slot; the next sync used to
    wait for that slot forever. It now marks the dead run failed and frees the slot."""
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
    from dagster._core.utils import make_new_run_id

    instance = dg.DagsterInstance.get()
    storage = instance.event_log_storage
    storage.set_concurrency_slots("salesforce", 1)
    dead = instance.add_run(
        DagsterRun(
            job_name="sync_job",
            run_id=make_new_run_id(),
            status=DagsterRunStatus.STARTED,
            tags={"crmhub/trigger": "crmhub sync"},
        )
    )
    assert storage.claim_concurrency_slot("salesforce", dead.run_id, "salesforce__writeback")
    assert storage.get_concurrency_info("salesforce").claimed_slots  # the only slot is taken

    again = cli("sync", "--profile", "tiny", "-q")
    assert again.code == 0, again.err
    assert f"an earlier sync (run {dead.run_id[:8]}…) died mid-run" in again.err
    run = instance.get_run_by_id(dead.run_id)
    assert run is not None and run.status == DagsterRunStatus.FAILURE
    assert all(
        s.run_id != dead.run_id for s in storage.get_concurrency_info("salesforce").claimed_slots
    )
    instance.dispose()


def test_sandbox_mutate_then_dry_run_shows_changes_and_sends_nothing(
    home: Home, first_sync: Output
) -> None:
    with home.sandbox_state() as state:
        cases = state.count("salesforce", "Case")
    mutated = cli("sandbox", "mutate", "--share", "0.05", "--seed", "3")
    assert mutated.code == 0
    totals = dict(re.findall(r"(\w+): (\d+)", mutated.out.splitlines()[-1]))
    assert int(totals["updated"]) > 0
    case_row = next(line for line in mutated.out.splitlines() if "salesforce Case " in line)
    case = {k: int(v) for k, v in re.findall(r"(\w+): (\d+)", case_row)}
    with home.sandbox_state() as state:
        assert state.count("salesforce", "Case") == cases + case.get("created", 0) - case.get(
            "deleted", 0
        )

    head = home.ledger_head()
    dry = cli("sync", "--dry-run", "--profile", "tiny")
    assert dry.code == 0, dry.out + dry.err
    assert "Written back (dry run: nothing sent)" in dry.out
    changed = re.findall(
        r"^  (?:salesforce|hubspot)\s+(\d+) records changed, \d+ fields; ok 0, failed 0, "
        r"skipped 0; 0 write calls$",
        dry.out,
        re.M,
    )
    assert len(changed) == 2 and sum(map(int, changed)) > 0, dry.out
    requests = home.requests_since(head)
    assert requests, "the dry run still reads the CRMs"
    assert record_writes(requests) == []
    assert [r for r in requests if r["method"] in ("PATCH", "PUT", "DELETE")] == []


# --------------------------------------------------------------------------------------------
# look-ups
# --------------------------------------------------------------------------------------------


def _customer_in_both(store: HubStore) -> tuple[t.Customer, list[t.SourceAccount]]:
    accounts = store.live(t.SourceAccount)
    for customer in sorted(store.all(t.Customer), key=lambda c: c.id):
        mine = [a for a in accounts if a.customer_id == customer.id]
        if customer.domain and {a.source for a in mine} == {"salesforce", "hubspot"}:
            return customer, mine
    raise AssertionError("the tiny profile has customers in both CRMs")


def test_customer_show_finds_a_customer_by_any_form_of_its_domain(
    home: Home, first_sync: Output
) -> None:
    store = home.store()
    customer, accounts = _customer_in_both(store)
    with store.session() as s:
        handover = s.get(t.HandoverState, customer.id)
    assert handover is not None
    shown = cli("customer", "show", f"https://www.{customer.domain}/contact")
    assert shown.code == 0
    assert shown.out.startswith(f"{customer.name}  [{customer.id}]")
    assert f"Handover status: {handover.status}" in shown.out
    for account in accounts:
        assert account.source_id in shown.out
    missing = cli("customer", "show", "no-such-customer.example")
    assert missing.code == 1 and "No customer matches" in missing.out
    store.dispose()


def test_kpis_as_csv_and_json_parse_to_the_same_rows(home: Home, first_sync: Output) -> None:
    as_csv = cli("kpis", "--format", "csv")
    as_json = cli("kpis", "--format", "json")
    assert as_csv.code == 0 and as_json.code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    data = json.loads(as_json.out)
    assert rows and len(rows) == len(data)
    assert [r["period"] for r in rows] == [d["period"] for d in data]
    for r, d in zip(rows, data, strict=True):
        assert int(r["won_deals"]) == d["won_deals"]
        assert set(r) == set(d)


def test_kpis_by_owner_lists_each_owner_with_the_unanswered_inquiries(
    home: Home, first_sync: Output
) -> None:
    from unified_model.kpis import unanswered_inquiries
    from unified_model.rules import HubRules

    as_json = cli("kpis", "--by", "owner", "--format", "json")
    table = cli("kpis", "--by", "owner")
    assert as_json.code == 0 and table.code == 0
    rows = json.loads(as_json.out)
    assert rows and all(r["owner"] for r in rows)
    assert [r["owner"] for r in rows] == sorted(r["owner"] for r in rows)
    store = home.store()
    waiting = unanswered_inquiries(store.live(t.Email), HubRules(), dt.datetime.now(dt.UTC))
    store.dispose()
    # every inquiry still unanswered is on exactly one owner's row
    assert sum(r["unanswered_inquiries"] for r in rows) == len(waiting)
    assert table.out.splitlines()[0].split()[:2] == ["owner", "customers"]


def test_matches_review_lists_the_pending_pairs_and_records_a_decision(
    home: Home, first_sync: Output
) -> None:
    store = home.store()
    pending = [r for r in store.all(t.MatchReview) if r.status == "pending"]
    listed = cli("matches", "review")
    assert listed.code == 0
    if not pending:
        assert "No pending match reviews." in listed.out
        return
    assert f"{len(pending)} possible matches need a decision" in listed.out
    for review in pending:
        assert re.search(rf"#{review.id}\s", listed.out)
        assert f"{review.left_source}:{review.left_id}" in listed.out
    rejected = cli("matches", "review", "--reject", str(pending[0].id))
    assert rejected.code == 0 and f"Review {pending[0].id} rejected" in rejected.out
    with store.session() as s:
        review = s.get(t.MatchReview, pending[0].id)
        assert review is not None and review.status == "rejected"
    store.dispose()


def test_writeback_log_lists_what_the_hub_wrote_for_a_customer(
    home: Home, first_sync: Output
) -> None:
    store = home.store()
    customer, accounts = _customer_in_both(store)
    with store.session() as s:
        audit = list(s.exec(select(t.WriteAudit).where(t.WriteAudit.customer_id == customer.id)))
    assert audit
    log = cli("writeback", "log", customer.domain or "", "--limit", "1000")
    assert log.code == 0
    lines = log.out.splitlines()
    assert len(lines) == sum(len(row.field_changes()) for row in audit)
    for account in accounts:
        line = next(x for x in lines if account.source_id in x and "handover_status" in x)
        assert line.endswith(" ok")
    store.dispose()


# --------------------------------------------------------------------------------------------
# erasure
# --------------------------------------------------------------------------------------------


def test_erased_person_does_not_come_back_with_a_full_re_read(
    home: Home, first_sync: Output
) -> None:
    store = home.store()
    by_email: dict[str, set[str]] = {}
    for c in store.live(t.Contact):
        if c.email_normalized:
            by_email.setdefault(c.email_normalized, set()).add(c.source)
    email = sorted(e for e, crms in by_email.items() if crms == {"salesforce", "hubspot"})[0]
    rows = sum(1 for c in store.live(t.Contact) if c.email_normalized == email)

    erased = cli("erase", "--email", email.upper(), "--yes")
    assert erased.code == 0
    assert erased.out.startswith(f"Erased: {rows} contacts")
    assert "future syncs will not bring this address back" in erased.out

    again = cli("sync", "--full-refresh", "--profile", "tiny")
    assert again.code == 0, again.out + again.err
    with home.sandbox_state() as state:  # every contact was read again, the erased one too
        sf_contacts = state.count("salesforce", "Contact") + state.count("salesforce", "Lead")
    reread = re.search(r"^  salesforce contacts\s+(\d+) records", again.out, re.M)
    assert reread and int(reread.group(1)) >= sf_contacts - 1
    with store.session() as s:
        assert list(s.exec(select(t.Contact).where(t.Contact.email_normalized == email))) == []
        for e in s.exec(select(t.Email)):
            addresses = [e.from_address, *(e.to_addresses or [])]
            assert email not in [(a or "").strip().casefold() for a in addresses]
    store.dispose()


# --------------------------------------------------------------------------------------------
# configuration mistakes
# --------------------------------------------------------------------------------------------


def _config_dir(tmp_path: Path, rules: str | None = None, mapping: str | None = None) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    if rules is None:
        shutil.copy(REPO_CONFIG / "rules.yaml", folder / "rules.yaml")
    else:
        (folder / "rules.yaml").write_text(rules)
    if mapping is not None:
        (folder / "mapping.yaml").write_text(mapping)
    return folder


def test_bad_rules_file_exits_2_with_one_line_naming_the_key(
    home: Home, first_sync: Output, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _config_dir(tmp_path, rules="handover:\n  maturity:\n    user_error_threshhold: 3\n")
    key = "handover.maturity.user_error_threshhold"
    head = home.ledger_head()
    script = Path(sys.executable).with_name("crmhub")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "crmhub.cli"]
    done = subprocess.run(
        [*command, "sync", "--profile", "tiny"],
        env={**os.environ, "CRMHUB_CONFIG_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    _one_line_error(done, key, "user_error_threshold")
    assert done.stdout == ""  # stopped before starting anything
    assert home.requests_since(head) == []

    monkeypatch.setenv("CRMHUB_CONFIG_DIR", str(folder))
    kpis = cli("kpis")
    assert kpis.code == 2
    _one_line_error(kpis, key)


def test_hub_field_outside_the_allow_list_stops_sync_before_any_crm_call(
    home: Home, first_sync: Output, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _config_dir(
        tmp_path, mapping="writeback:\n  salesforce_names:\n    handover_status: Name\n"
    )
    monkeypatch.setenv("CRMHUB_CONFIG_DIR", str(folder))
    head = home.ledger_head()
    refused = cli("sync", "--profile", "tiny")
    assert refused.code == 2
    _one_line_error(refused, "handover_status", "names Name", "writeback.salesforce_names")
    assert home.requests_since(head) == []


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CRMHUB_MAX_CONCURRENT_STEPS", "four", "positive whole number"),
        ("CRMHUB_CRM_STEPS", "two", "positive whole number"),
        ("CRMHUB_EXECUTOR", "threads", "use multiprocess, celery or k8s"),
        ("CRMHUB_HS_BURST_LIMIT", "abc", "not a whole number"),
        ("CRMHUB_HS_BURST_LIMIT", "0", "not a whole number of 1 or more"),
        ("CRMHUB_HS_ARCHIVED_CHECK_SECONDS", "6h", "not a whole number"),
        ("CRMHUB_HUB_WORKERS", "0", "positive whole number"),
    ],
)
def test_bad_setting_exits_2_with_one_line_naming_the_variable(
    home: Home,
    first_sync: Output,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(variable, value)
    head = home.ledger_head()
    refused = cli("sync", "--profile", "tiny")
    assert refused.code == 2, refused.text
    named = variable if variable == "CRMHUB_EXECUTOR" else f"{variable}={value!r}"
    _one_line_error(refused, named, expected)
    assert refused.out == ""  # refused before the sandbox started (its header line)
    assert home.requests_since(head) == []


# --------------------------------------------------------------------------------------------
# sandbox data
# --------------------------------------------------------------------------------------------


def test_sandbox_seed_replaces_the_data_with_the_profile(home: Home, first_sync: Output) -> None:
    seeded = cli("sandbox", "seed", "--profile", "tiny", "--seed", "5")
    assert seeded.code == 0
    counts = {
        f"{crm}/{obj}": int(n)
        for crm, obj, n in re.findall(r"^  (\w+) (\w+)\s+records: (\d+)", seeded.out, re.M)
    }
    assert counts["salesforce/Account"] > 0 and counts["hubspot/companies"] > 0
    with home.sandbox_state() as state:
        for key, n in counts.items():
            crm, obj = key.split("/")
            assert state.count(crm, obj) == n, key
        assert len(state.truth()) == int(re.search(r"truth: (\d+)", seeded.out).group(1))  # type: ignore[union-attr]
