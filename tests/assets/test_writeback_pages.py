"""A large writeback in pages: the plans of every record are never held at once, and a set that
goes to one Salesforce Bulk job still goes to exactly one, with every outcome settled.

The tiny sandbox stands in for ``large``: the page size and the Bulk threshold are lowered so
that its few dozen Accounts span many pages and one Bulk job, the shape of a first writeback of
75,000 Accounts. The hub database comes from a real dry-run sync of the sandbox (extraction,
unify, handover, KPIs; nothing written); each test then runs the writeback itself against the
sandbox through the real Salesforce connector.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from connectors.errors import AuthenticationError
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.writer import _same, to_hubspot
from connectors.records import FieldUpdate, WriteResult
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.fields import derived_name
from crmhub import settings
from sandbox.runner import Sandbox
from sandbox.salesforce.testing import sandbox_client as salesforce_client
from tests.connectors.salesforce_support import make_config
from unified_model import incremental as changes_
from unified_model import tables as t
from unified_model import writeback as wb
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e

SF = "salesforce"
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
#: Record-writing requests of the Bulk API and of sObject Collections.
INGEST = "/jobs/ingest"
COLLECTIONS = "/composite/sobjects"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """A seeded sandbox and the hub database of a dry-run sync of it (nothing written yet)."""
    from assets.definitions import all_assets, build_resources, sync_job
    from assets.unify import unify_checks
    from assets.writeback import WritebackRunConfig, writeback_assets

    tmp = tmp_path_factory.mktemp("pages")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("CRMHUB_"):
                mp.delenv(key)
        with Sandbox(tmp / "sandbox") as sb:
            sb.seed("tiny", seed=11)
            for key, value in settings.sandbox_environment(sb.info).items():
                mp.setenv(key, value)
            mp.setenv("CRMHUB_DATABASE_URL", f"sqlite:///{tmp / 'hub.db'}")
            mp.setenv("CRMHUB_HOME", str(tmp / "home"))
            defs = dg.Definitions(
                assets=all_assets,
                asset_checks=unify_checks,
                jobs=[sync_job],
                resources=build_resources(),
            )
            result = defs.resolve_job_def("sync_job").execute_in_process(
                instance=dg.DagsterInstance.ephemeral(),
                run_config=dg.RunConfig(
                    ops={
                        a.node_def.name: WritebackRunConfig(dry_run=True) for a in writeback_assets
                    }
                ),
            )
            assert result.success
            yield sb, tmp / "hub.db"


@pytest.fixture
def store(synced: tuple[Sandbox, Path], tmp_path: Path) -> Iterator[HubStore]:
    """A copy of the synced hub database for one test."""
    copy = tmp_path / "hub.db"
    shutil.copy(synced[1], copy)
    hub = HubStore(f"sqlite:///{copy}")
    yield hub
    hub.dispose()


def connector(sb: Sandbox) -> SalesforceConnector:
    """The Salesforce connector as the hub builds it, every write of 3 or more a Bulk job."""
    specs = tuple(wb.WritebackConfig().specs())
    return SalesforceConnector(make_config(sb.info, hub_fields=specs, bulk_write_threshold=2))


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 3 records, and no plan kept from the counting pass (planned again to send)."""
    monkeypatch.setattr(wb, "PAGE_SIZE", 3)
    monkeypatch.setattr(wb, "KEEP_PLANNED", 4)


def ingest_uploads(sb: Sandbox, head: int) -> list[dict[str, Any]]:
    return [
        r
        for r in sb.state.ledger(head)
        if r["crm"] == SF and r["method"] == "PUT" and INGEST in r["path"]
    ]


def record_writes(sb: Sandbox, head: int) -> list[dict[str, Any]]:
    return [
        r
        for r in sb.state.ledger(head)
        if r["crm"] == SF
        and r["method"] in ("POST", "PATCH", "PUT")
        and (INGEST in r["path"] or COLLECTIONS in r["path"])
    ]


def crm_values(sb: Sandbox, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Account id -> hub key -> value as Salesforce shows it (a SOQL query of the hub fields),
    as the hub's strings."""
    specs = {s.key: s for s in wb.WritebackConfig().specs()}
    names = {key: derived_name(key) for key in specs}
    wanted = set(ids)
    rows = salesforce_client(sb.info).query_all(
        f"SELECT Id, {', '.join(names.values())} FROM Account"
    )["records"]
    return {
        r["Id"]: {k: wb.render(r[n], specs[k].kind) for k, n in names.items()}
        for r in rows
        if r["Id"] in wanted
    }


def clear_hub_fields(sb: Sandbox, ids: Iterable[str]) -> None:
    """Empty the hub fields of these Accounts in the sandbox (an earlier test wrote them)."""
    empty = {derived_name(s.key): None for s in wb.WritebackConfig().specs()}
    for rid in ids:
        sb.state.update(SF, "Account", rid, empty)


def whole_plan(store: HubStore) -> list[wb.PlannedWrite]:
    with store.session() as s:
        return wb.plan_writeback(s, SF, wb.WritebackConfig(), NOW)


def fresh_plan(sb: Sandbox, store: HubStore) -> list[wb.PlannedWrite]:
    """The whole plan, with the hub fields of its Accounts emptied in the sandbox first (the
    module's tests share the sandbox; each starts from a CRM the hub never wrote to)."""
    expected = whole_plan(store)
    clear_hub_fields(sb, [p.source_id for p in expected])
    return expected


def test_pages_add_up_to_the_whole_plan(store: HubStore) -> None:
    whole = whole_plan(store)
    assert len(whole) > 9  # several pages of 3
    config = wb.WritebackConfig()
    with store.session() as s:
        pages = list(wb.plan_writeback_pages(s, SF, config, NOW, page_size=3))
        # ``since`` before everything: every record a candidate, the same plans
        since = list(
            wb.plan_writeback_pages(
                s, SF, config, NOW, since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), page_size=3
            )
        )
    assert all(len(p) <= 3 for p in pages)
    assert [p for page in pages for p in page] == whole
    assert [p for page in since for p in page] == whole
    ids = [p.source_id for p in whole]
    assert ids == sorted(ids)


def test_a_first_writeback_in_pages_is_one_bulk_job_with_every_outcome(
    synced: tuple[Sandbox, Path], store: HubStore, small_pages: None
) -> None:
    sb = synced[0]
    expected = fresh_plan(sb, store)
    head = sb.state.ledger_head()
    spy = Spy(connector(sb))
    report = wb.run_writeback(store, spy, SF, wb.WritebackConfig(), run_id="big", now=NOW)
    # handed over as a stream, never as one list of every update
    assert spy.streams == 1 and spy.batch_sizes == []
    assert report.records_changed == len(expected) and report.ok == len(expected)
    assert report.fields_changed == sum(len(p.changes) for p in expected)
    assert len(report.plans) == min(len(expected), wb.PREVIEW_PLANS)
    # one Bulk job for every record, however many pages, and nothing through Collections
    assert len(ingest_uploads(sb, head)) == 1
    assert [r["method"] for r in record_writes(sb, head)] == ["POST", "PUT", "PATCH"]
    # one settled audit row per record, in the one batch, each with the record's changes
    audit = {a.source_id: a for a in store.all(t.WriteAudit)}
    assert sorted(audit) == [p.source_id for p in expected]
    assert {(a.batch_id, a.outcome) for a in audit.values()} == {("big:1", "ok")}
    for plan in expected:
        assert audit[plan.source_id].field_changes() == plan.changes
    # the CRM holds the values and the ledger confirms every one of them
    held = crm_values(sb, audit)
    ledger = {(r.source_id, r.field_key): r.value for r in store.all(t.WritebackLedger)}
    for plan in expected:
        for key, (_, new) in plan.changes.items():
            assert ledger[(plan.source_id, key)] == new
            if key != "last_sync":
                assert wb._norm(held[plan.source_id][key]) == wb._norm(new), (plan, key)
    # and the next run has nothing left to write
    head = sb.state.ledger_head()
    again = wb.run_writeback(store, connector(sb), SF, wb.WritebackConfig(), run_id="n", now=NOW)
    assert again.records_changed == 0 and record_writes(sb, head) == []


class Spy:
    """The real connector, noting how the hub hands the updates over."""

    def __init__(self, real: SalesforceConnector) -> None:
        self.real = real
        self.streams = 0
        self.batch_sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def write(self, updates: list[FieldUpdate]) -> list[WriteResult]:
        self.batch_sizes.append(len(updates))
        return self.real.write(updates)

    def write_stream(self, updates: Iterable[FieldUpdate]) -> list[WriteResult]:
        self.streams += 1
        return self.real.write_stream(updates)


class Dies:
    """The real connector, except that the process "dies" around its Bulk job: before sending
    (``before``) or after the CRM took it (``after``), as a SIGKILL at those points would."""

    def __init__(self, real: SalesforceConnector, when: str) -> None:
        self.real, self.when = real, when

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def write_stream(self, updates: Iterable[FieldUpdate]) -> list[WriteResult]:
        if self.when == "before":
            for _ in updates:  # every intent committed, nothing sent
                pass
            raise SystemExit("killed before the Bulk job")
        self.real.write_stream(updates)
        raise SystemExit("killed after the Bulk job")


def test_a_writeback_killed_around_its_bulk_job_settles_every_intent(
    synced: tuple[Sandbox, Path], store: HubStore, small_pages: None
) -> None:
    sb = synced[0]
    expected = fresh_plan(sb, store)
    config = wb.WritebackConfig()
    with pytest.raises(SystemExit):
        wb.run_writeback(store, Dies(connector(sb), "before"), SF, config, run_id="k1", now=NOW)
    pending = store.all(t.WriteAudit)
    assert len(pending) == len(expected) and {a.outcome for a in pending} == {"pending"}
    assert changes_.load(store, changes_.writeback_phase(SF)) is None  # no watermark moved
    # the next run settles them from the CRM (not landed: failed), sends again, and dies after
    with pytest.raises(SystemExit):
        wb.run_writeback(store, Dies(connector(sb), "after"), SF, config, run_id="k2", now=NOW)
    first = [a for a in store.all(t.WriteAudit) if a.run_id == "k1"]
    assert {a.outcome for a in first} == {"failed"}
    assert all((a.reason or "").startswith("settled after") for a in first)
    # the last run settles the sent job as landed and sends nothing again
    head = sb.state.ledger_head()
    report = wb.run_writeback(store, connector(sb), SF, config, run_id="k3", now=NOW)
    assert record_writes(sb, head) == []
    assert report.settled == {"ok": len(expected)} and report.records_changed == 0
    second = [a for a in store.all(t.WriteAudit) if a.run_id == "k2"]
    assert len(second) == len(expected) and {a.outcome for a in second} == {"ok"}
    ledger = {(r.source_id, r.field_key): r.value for r in store.all(t.WritebackLedger)}
    for plan in expected:
        for key, (_, new) in plan.changes.items():
            assert ledger[(plan.source_id, key)] == new


# --------------------------------------------------------------------------------------------
# HubSpot: several batch updates in flight
# --------------------------------------------------------------------------------------------

HS = "hubspot"


def hubspot(sb: Sandbox, concurrency: int) -> HubSpotConnector:
    """The HubSpot connector on the sandbox, batches of 2 (the tiny org spans many)."""
    info = sb.info
    config = HubSpotConfig(
        base_url=info.hubspot_url,
        ca_bundle=info.ca_bundle,
        access_token=info.hs_token,
        hub_fields=tuple(wb.WritebackConfig().specs()),
        write_batch_size=2,
        write_concurrency=concurrency,
        rate_limit_store="memory",
    )
    return HubSpotConnector(config)


class InFlight:
    """The real connector, counting the batch updates in flight at once; each is held a moment
    before it is sent, so that calls the hub keeps in flight together meet. ``fail_at``: that
    call (1-based) fails as an expired token would, before reaching HubSpot, half a second
    after it was handed over."""

    def __init__(self, real: HubSpotConnector, fail_at: int | None = None) -> None:
        self.real, self.fail_at = real, fail_at
        self.lock = threading.Lock()
        self.calls = self.now = self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def write(self, updates: list[FieldUpdate]) -> list[WriteResult]:
        with self.lock:
            self.calls += 1
            number = self.calls
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            if number == self.fail_at:
                # slow to fail: the calls after it are sent and answered meanwhile
                time.sleep(0.5)
                raise AuthenticationError("HubSpot refused the token (test)", crm=HS)
            time.sleep(0.05)
            return self.real.write(updates)
        finally:
            with self.lock:
                self.now -= 1


def hs_plan(store: HubStore) -> list[wb.PlannedWrite]:
    with store.session() as s:
        return wb.plan_writeback(s, HS, wb.WritebackConfig(), NOW)


def hs_holds(conn: HubSpotConnector, plans: list[wb.PlannedWrite]) -> list[str]:
    """The company fields HubSpot does not hold as planned (read back; values compared as the
    writer's read-back does: numbers as numbers, text without case)."""
    specs = {s.key: s for s in wb.WritebackConfig().specs()}
    held = conn.read_hub_fields([p.source_id for p in plans])
    return [
        f"{p.source_id}.{key}"
        for p in plans
        for key, (_, new) in p.changes.items()
        if key != "last_sync"  # HubSpot renders a time its own way
        and not _same(held[p.source_id][key], to_hubspot(new, specs[key]))
    ]


def companies_only() -> wb.WritebackConfig:
    """The writeback configuration without contact fields: the contacts' suppression follows
    the companies through the same path, left out so that every call the spy sees is a company
    batch."""
    return wb.WritebackConfig(hubspot_contact_fields=())


@pytest.mark.parametrize("concurrency", [1, 3])
def test_hubspot_batches_in_flight_together_each_recorded_once(
    synced: tuple[Sandbox, Path], store: HubStore, concurrency: int
) -> None:
    sb = synced[0]
    expected = hs_plan(store)
    assert len(expected) >= 8  # four batches of 2 or more
    spy = InFlight(hubspot(sb, concurrency))
    report = wb.run_writeback(store, spy, HS, companies_only(), run_id="r", now=NOW)
    # ``concurrency`` calls in flight at once, never more (one: one after the other)
    assert spy.most == concurrency
    assert spy.calls == -(-len(expected) // 2)
    assert report.ok == report.records_changed == len(expected)
    audit = [a for a in store.all(t.WriteAudit) if a.source == HS]
    # one settled row per record, in the batch that carried it
    assert sorted(a.source_id for a in audit) == sorted(p.source_id for p in expected)
    assert {a.outcome for a in audit} == {"ok"}
    assert len({a.batch_id for a in audit}) == spy.calls
    ledger = {(r.source_id, r.field_key): r.value for r in store.all(t.WritebackLedger)}
    for plan in expected:
        for key, (_, new) in plan.changes.items():
            assert ledger[(plan.source_id, key)] == new
    assert hs_holds(spy.real, expected) == []


def test_a_failed_call_among_batches_in_flight_keeps_what_was_answered(
    synced: tuple[Sandbox, Path], store: HubStore
) -> None:
    sb = synced[0]
    expected = hs_plan(store)
    spy = InFlight(hubspot(sb, 3), fail_at=3)
    with pytest.raises(AuthenticationError):
        wb.run_writeback(store, spy, HS, companies_only(), run_id="r1", now=NOW)
    audit = {a.batch_id: [] for a in store.all(t.WriteAudit)}
    for a in store.all(t.WriteAudit):
        audit[a.batch_id].append(a.outcome)
    # every batch HubSpot answered is recorded, also those still in flight when the third
    # failed (the fourth and fifth); only the failed one is left pending for the next run
    assert audit["r1:1"] == ["ok", "ok"] and audit["r1:2"] == ["ok", "ok"]
    assert audit["r1:4"] == ["ok", "ok"] and audit["r1:5"] == ["ok", "ok"]
    assert {b for b, outcomes in audit.items() if "pending" in outcomes} == {"r1:3"}
    # the next run settles what was left pending and sends the rest: each record once ok
    later = NOW + dt.timedelta(hours=1)
    report = wb.run_writeback(
        store, InFlight(hubspot(sb, 3)), HS, companies_only(), run_id="r2", now=later
    )
    assert report.failed == 0
    ok = [a.source_id for a in store.all(t.WriteAudit) if a.outcome == "ok"]
    assert sorted(ok) == sorted(p.source_id for p in expected)
    assert not [a for a in store.all(t.WriteAudit) if a.outcome == "pending"]


@pytest.mark.parametrize("limit", [0, 10_000])
def test_hubspot_plans_once_unless_a_limit_needs_the_total_first(
    synced: tuple[Sandbox, Path],
    store: HubStore,
    small_pages: None,
    monkeypatch: pytest.MonkeyPatch,
    limit: int,
) -> None:
    """Without a safety limit nothing needs the total before the first call: every page is
    planned once and counted while it is sent; with one, the count comes first (and the plans
    are made again to send them, since more than ``KEEP_PLANNED`` change)."""
    sb = synced[0]
    expected = hs_plan(store)
    passes: list[int] = []
    real = wb.plan_writeback_pages

    def counting(*args: Any, **kwargs: Any) -> Iterator[list[wb.PlannedWrite]]:
        passes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(wb, "plan_writeback_pages", counting)
    config = wb.WritebackConfig(hubspot_contact_fields=(), max_changed_records=limit)
    report = wb.run_writeback(store, hubspot(sb, 2), HS, config, run_id="p", now=NOW)
    assert len(passes) == (2 if limit else 1)
    assert report.records_changed == report.ok == len(expected)
    assert report.fields_changed == sum(len(p.changes) for p in expected)
    assert [p.source_id for p in report.plans] == [p.source_id for p in expected][
        : wb.PREVIEW_PLANS
    ]
