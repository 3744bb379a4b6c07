"""Writeback through the Dagster sync job against the sandbox CRMs, with the real clients: the hub
creates its own fields, writes each linked record once, afterwards sends only the changed hub
fields of the records a source change affected, audits every failed record with its reason and
re-sends exactly those, skips (never re-creates) a record deleted meanwhile, corrects a manual edit
of a hub field, refuses a mapping that names a field it does not own, and writes nothing in a dry
run, behind a failed blocking check, or above the changed-records limit.

One seeded sandbox (tiny profile) and one hub database serve the whole module: the tests run in
file order and each one changes its own customers (``Hub.take_pair``), so their write counts stay
exact. Write calls are counted from the sandbox's request ledger, not from the hub's own metadata.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from hubspot.crm.companies import BatchReadInputSimplePublicObjectId, SimplePublicObjectInput
from sqlmodel import col, select

from connectors.hubspot.config import HubSpotConfig
from connectors.salesforce.fields import derived_name
from crmhub import settings
from crmhub.report import print_sync_summary
from sandbox.http import FaultRule
from sandbox.hubspot.client import sandbox_client as hubspot_client
from sandbox.runner import Sandbox
from sandbox.salesforce.testing import sandbox_client as salesforce_client
from unified_model import tables as t
from unified_model.store import HubStore
from unified_model.writeback import (
    DEFAULT_FIELDS,
    HANDOVER_STATUSES,
    HUB_CONTACT_FIELDS,
    HUBSPOT_CONTACT,
    WritebackConfig,
    plan_writeback,
)

pytestmark = pytest.mark.e2e

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
SF, HS = "salesforce", "hubspot"
#: Requests that change records' data (the hub writes nothing else onto records).
RECORD_WRITE_PATHS = ("/composite/sobjects", "/objects/companies/batch/update", "/jobs/ingest")
#: POST requests that only read (search, batch reads, logins, query jobs).
READ_ONLY_POSTS = ("/search", "/batch/read", "/oauth2/token", "/query")
SF_NAMES = {key: derived_name(key) for key in DEFAULT_FIELDS}
HS_NAMES = {key: f"crmhub_{key}" for key in DEFAULT_FIELDS}
#: the marketing suppression on HubSpot contacts
HS_CONTACT_NAMES = {key: f"crmhub_{key}" for key in HUB_CONTACT_FIELDS}
#: The HubSpot connector reads no closer to the portal's "now" than this (search index lag);
#: after a HubSpot edit the tests move the sandbox clock past it instead of sleeping.
HS_LAG = dt.timedelta(seconds=HubSpotConfig.lag_margin_seconds)


# --------------------------------------------------------------------------------------------
# the hub under test
# --------------------------------------------------------------------------------------------


def record_writes(requests: list[dict[str, Any]], crm: str | None = None) -> list[dict[str, Any]]:
    """Calls that write records (Collections PATCH, batch update, Bulk ingest)."""
    return [
        r
        for r in requests
        if r["method"] in ("POST", "PATCH", "PUT")
        and any(p in r["path"] for p in RECORD_WRITE_PATHS)
        and (crm is None or r["crm"] == crm)
    ]


def data_changes(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every call that may change anything in a CRM (records, fields, property groups)."""
    return [
        r
        for r in requests
        if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
        and not any(p in r["path"] for p in READ_ONLY_POSTS)
    ]


def object_of(crm: str) -> str:
    """The sandbox object holding the records the hub writes to."""
    return "Account" if crm == SF else "companies"


@dataclass(frozen=True)
class FieldAudit:
    """One field of a record's audit row."""

    old_value: str | None
    new_value: str | None
    outcome: str
    reason: str | None


@dataclass
class Run:
    """One job execution and the sandbox requests it made."""

    result: dg.ExecuteInProcessResult
    requests: list[dict[str, Any]]

    @property
    def run_id(self) -> str:
        return self.result.run_id

    def record_writes(self, crm: str | None = None) -> list[dict[str, Any]]:
        return record_writes(self.requests, crm)

    def data_changes(self) -> list[dict[str, Any]]:
        return data_changes(self.requests)

    def steps_started(self) -> set[str]:
        return {
            str(e.step_key) for e in self.result.all_events if e.event_type_value == "STEP_START"
        }

    def failures(self) -> dict[str, str]:
        """Failed step -> its error with every cause (the hub's own message is a cause)."""
        out: dict[str, str] = {}
        for event in self.result.all_events:
            if event.is_step_failure:
                error = getattr(event.event_specific_data, "error", None)
                out[str(event.step_key)] = error.to_string() if error else ""
        return out

    def writeback_metadata(self, crm: str) -> dict[str, Any]:
        for event in self.result.get_asset_materialization_events():
            mat = event.materialization
            if mat.asset_key == dg.AssetKey([crm, "writeback"]):
                return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        raise AssertionError(f"{crm} writeback did not materialize")


@dataclass
class Hub:
    """The module's sandbox, hub database and Dagster instance, with helpers the tests share."""

    sb: Sandbox
    db_url: str
    tmp: Path
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)
    _pairs: list[tuple[str, str]] = field(default_factory=list)
    #: Records with a source change that a refused run left unsent (the next full run sends it).
    pending: set[tuple[str, str]] = field(default_factory=set)
    _store: HubStore | None = None

    @property
    def store(self) -> HubStore:
        if self._store is None:
            self._store = HubStore(self.db_url)
        return self._store

    def run(self, *, dry_run: bool = False, hooks: set[dg.HookDefinition] | None = None) -> Run:
        """Execute the sync job (built from the current environment) and collect its requests."""
        from assets.definitions import all_assets, build_resources, sync_job
        from assets.unify import unify_checks
        from assets.writeback import WritebackRunConfig, writeback_assets

        job_def: Any = sync_job
        if hooks:
            job_def = dg.define_asset_job(
                sync_job.name,
                selection=sync_job.selection,
                executor_def=dg.in_process_executor,
                hooks=hooks,
            )
        defs = dg.Definitions(
            assets=all_assets,
            asset_checks=unify_checks,
            jobs=[job_def],
            resources=build_resources(),
        )
        run_config = dg.RunConfig(
            ops={a.node_def.name: WritebackRunConfig(dry_run=True) for a in writeback_assets}
            if dry_run
            else {}
        )
        head = self.sb.state.ledger_head()
        result = defs.resolve_job_def("sync_job").execute_in_process(
            instance=self.instance, run_config=run_config, raise_on_error=False
        )
        return Run(result, self.sb.state.ledger(head))

    def audit(
        self, run: Run, sources: tuple[str, ...] = (SF, HS)
    ) -> dict[tuple[str, str], dict[str, FieldAudit]]:
        """(crm, record id) -> field -> what the record's one audit row says of it, for one run.

        Accounts and companies only; ``source`` ``hubspot_contact`` (the contacts' suppression)
        is asked for by name."""
        out: dict[tuple[str, str], dict[str, FieldAudit]] = {}
        with self.store.session() as s:
            for row in s.exec(
                select(t.WriteAudit).where(
                    t.WriteAudit.run_id == run.run_id, col(t.WriteAudit.source).in_(sources)
                )
            ):
                record = (row.source, row.source_id)
                assert record not in out, f"two audit rows for one record write: {record}"
                out[record] = {
                    key: FieldAudit(old, new, row.outcome, row.reason)
                    for key, (old, new) in row.field_changes().items()
                }
        return out

    def account(self, crm: str, source_id: str) -> t.SourceAccount:
        with self.store.session() as s:
            account = s.get(t.SourceAccount, (crm, source_id))
        assert account is not None, (crm, source_id)
        return account

    def take_pair(self) -> tuple[str, str]:
        """(Salesforce Account id, HubSpot company id) of a customer in both CRMs that no other
        test of this module has changed. Only paying customers (a closed-won deal): a usage
        change shows in their health score, while prospects have none."""
        if not self._pairs:
            by_customer: dict[str, dict[str, str]] = {}
            for a in self.store.live(t.SourceAccount):
                if a.customer_id:
                    by_customer.setdefault(a.customer_id, {})[a.source] = a.source_id
            paying = {d.customer_id for d in self.store.live(t.Deal) if d.is_won}
            self._pairs = [
                (ids[SF], ids[HS])
                for cid, ids in sorted(by_customer.items())
                if SF in ids and HS in ids and cid in paying
            ]
            self._pairs.reverse()
        return self._pairs.pop()

    # ---- the CRMs, through their own APIs ------------------------------------------------
    def sf(self) -> Any:
        """A fresh simple-salesforce login (its sObject attributes are dynamic, hence Any)."""
        return salesforce_client(self.sb.info)

    def hs(self) -> Any:
        return hubspot_client(self.sb.info)

    def sf_hub_values(self) -> dict[str, dict[str, Any]]:
        """Account id -> hub key -> value, as Salesforce shows it now."""
        names = ", ".join(SF_NAMES.values())
        rows = self.sf().query_all(f"SELECT Id, {names} FROM Account")["records"]
        return {r["Id"]: {k: r[n] for k, n in SF_NAMES.items()} for r in rows}

    def hs_hub_values(self) -> dict[str, dict[str, Any]]:
        """Company id -> hub key -> value, as HubSpot shows it now (tiny: one batch read)."""
        ids = [r["id"] for r in self.sb.state.scan(HS, "companies")]
        assert len(ids) <= 100
        batch = self.hs().crm.companies.batch_api.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in ids], properties=list(HS_NAMES.values())
            )
        )
        return {c.id: {k: c.properties.get(n) for k, n in HS_NAMES.items()} for c in batch.results}

    def crm_values(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {SF: self.sf_hub_values(), HS: self.hs_hub_values()}

    # ---- source changes a user makes in the CRMs ------------------------------------------
    def change_sf_usage(self, account_id: str) -> None:
        """A customer-success manager updates the usage score on a Salesforce Account."""
        sf = self.sf()
        current = sf.Account.get(account_id).get("Usage_Score__c") or 0
        sf.Account.update(account_id, {"Usage_Score__c": 5.0 if current > 20 else 90.0})

    def change_hs_usage(self, company_id: str) -> None:
        """The same on a HubSpot company; the clock then passes the search index lag."""
        self.hs().crm.companies.basic_api.update(
            company_id, SimplePublicObjectInput(properties={"usage_score": "3"})
        )
        self.sb.state.advance_clock(2 * HS_LAG.total_seconds())

    def config_dir(self, mapping_yaml: str) -> Path:
        """A config folder with the repo's rules and this mapping file."""
        folder = self.tmp / f"config-{len(list(self.tmp.glob('config-*')))}"
        folder.mkdir()
        shutil.copy(REPO_CONFIG / "rules.yaml", folder / "rules.yaml")
        (folder / "mapping.yaml").write_text(mapping_yaml)
        return folder


def changed(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> dict[str, set[str]]:
    """Record id -> hub keys whose value differs between two CRM snapshots."""
    out: dict[str, set[str]] = {}
    for rid, values in after.items():
        diff = {k for k, v in values.items() if before.get(rid, {}).get(k) != v}
        if diff:
            out[rid] = diff
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A freshly seeded sandbox and an empty hub database, the CRMHUB_* variables pointing at
    them for the whole module."""
    tmp = tmp_path_factory.mktemp("writeback")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("CRMHUB_"):
                mp.delenv(key)
        with Sandbox(tmp / "sandbox") as sb:
            sb.seed("tiny", seed=7)
            for key, value in settings.sandbox_environment(sb.info).items():
                mp.setenv(key, value)
            db_url = f"sqlite:///{tmp / 'hub.db'}"
            mp.setenv("CRMHUB_DATABASE_URL", db_url)
            mp.setenv("CRMHUB_HOME", str(tmp / "home"))
            hub = Hub(sb=sb, db_url=db_url, tmp=tmp)
            yield hub
            if hub._store is not None:
                hub._store.dispose()


@pytest.fixture(scope="module")
def first_run(hub: Hub) -> Run:
    """The module's first sync: provisions the hub fields and writes every linked record."""
    run = hub.run()
    assert run.result.success, run.failures()
    return run


# --------------------------------------------------------------------------------------------
# provisioning, first write, no-op
# --------------------------------------------------------------------------------------------


def test_fields_ensure_dry_run_on_a_fresh_sandbox_creates_nothing(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    from crmhub.cli import main

    head = hub.sb.state.ledger_head()
    assert main(["fields", "ensure", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert {
        (crm, name) for crm, name, action, *_ in lines if action.startswith("would_create")
    } == {
        *((SF, n) for n in SF_NAMES.values()),
        *((HS, n) for n in HS_NAMES.values()),
        *((HS, n) for n in HS_CONTACT_NAMES.values()),
    }
    assert data_changes(hub.sb.state.ledger(head)) == []
    described = {f["name"] for f in hub.sf().Account.describe()["fields"]}
    assert not {n for n in described if n.startswith("Hub_")}
    properties = hub.hs().crm.properties.core_api.get_all(object_type="companies").results
    assert not [p.name for p in properties if p.name.startswith("crmhub")]


def test_first_run_provisions_the_hub_fields_and_writes_every_linked_record(
    hub: Hub, first_run: Run
) -> None:
    described = {f["name"]: f for f in hub.sf().Account.describe()["fields"]}
    for name in SF_NAMES.values():
        assert name in described and described[name]["updateable"], name
    hs = hub.hs()
    groups = {g.name for g in hs.crm.properties.groups_api.get_all(object_type="companies").results}
    assert "crmhub" in groups
    properties = {
        p.name: p for p in hs.crm.properties.core_api.get_all(object_type="companies").results
    }
    for name in HS_NAMES.values():
        assert name in properties and properties[name].group_name == "crmhub", name
    on_contacts = {
        p.name: p for p in hs.crm.properties.core_api.get_all(object_type="contacts").results
    }
    for name in HS_CONTACT_NAMES.values():
        assert name in on_contacts and on_contacts[name].group_name == "crmhub", name

    # one batch call per CRM writes every linked record (tiny: below one batch)
    assert len(first_run.record_writes(SF)) == 1
    assert len(first_run.record_writes(HS)) == 1
    linked = {(a.source, a.source_id): a for a in hub.store.live(t.SourceAccount) if a.customer_id}
    audit = hub.audit(first_run)
    assert set(audit) == set(linked)
    assert {row.outcome for rows in audit.values() for row in rows.values()} == {"ok"}
    # the HubSpot contacts of the customers in a late-stage negotiation got the suppression,
    # in batches of 100, and no other contact was written
    suppressed = {
        m.customer_id
        for m in hub.store.all(t.CustomerMetrics)
        if (m.values or {}).get("negotiation_flag")
    }
    flagged = {
        c.source_id
        for c in hub.store.live(t.Contact)
        if c.source == HS and c.customer_id in suppressed
    }
    contacts = hub.audit(first_run, (HUBSPOT_CONTACT,))
    assert {sid for _, sid in contacts} == flagged and flagged
    assert {row.new_value for rows in contacts.values() for row in rows.values()} >= {"true"}
    assert {row.outcome for rows in contacts.values() for row in rows.values()} == {"ok"}
    contact_calls = [r for r in first_run.requests if "/objects/contacts/batch/update" in r["path"]]
    assert len(contact_calls) == -(-len(flagged) // 100)
    statuses = {h.customer_id: h.status for h in hub.store.all(t.HandoverState)}
    crm = hub.crm_values()
    for (source, sid), account in linked.items():
        assert crm[source][sid]["customer_id"] == account.customer_id
        assert crm[source][sid]["handover_status"] == statuses[account.customer_id]
        assert statuses[account.customer_id] in HANDOVER_STATUSES
        assert crm[source][sid]["last_sync"]


def test_second_run_without_changes_makes_no_write_call(hub: Hub, first_run: Run) -> None:
    run = hub.run()
    assert run.result.success, run.failures()
    assert run.data_changes() == []
    for crm in (SF, HS):
        assert run.writeback_metadata(crm)["records_changed"] == 0
    assert hub.audit(run) == {}


# --------------------------------------------------------------------------------------------
# only the differences
# --------------------------------------------------------------------------------------------


def test_closing_a_critical_ticket_dry_run_shows_it_then_run_sends_exactly_the_changes(
    hub: Hub, first_run: Run
) -> None:
    sf = hub.sf()
    cases = sf.query_all(
        "SELECT Id, AccountId FROM Case WHERE IsClosed = false AND Priority = 'Critical' "
        "ORDER BY Id"
    )["records"]
    assert cases, "the tiny profile has open critical cases"
    case = cases[0]
    customer = hub.account(SF, case["AccountId"]).customer_id
    affected = {
        (a.source, a.source_id)
        for a in hub.store.live(t.SourceAccount)
        if a.customer_id == customer
    }
    sf.Case.update(case["Id"], {"Status": "Closed"})
    before = hub.crm_values()

    dry = hub.run(dry_run=True)
    assert dry.result.success, dry.failures()
    assert dry.data_changes() == []
    assert hub.audit(dry) == {}
    preview = dry.writeback_metadata(SF)["preview"]
    assert case["AccountId"] in preview and "open_critical_tickets" in preview
    for crm in (SF, HS):
        md = dry.writeback_metadata(crm)
        assert md["records_changed"] == sum(1 for src, _ in affected if src == crm)
        assert md["dry_run"] is True and md["write_calls"] == 0
    assert hub.crm_values() == before

    run = hub.run()
    assert run.result.success, run.failures()
    after = hub.crm_values()
    audit = hub.audit(run)
    assert set(audit) == affected
    for crm in (SF, HS):
        in_crm = sum(1 for src, _ in affected if src == crm)
        assert len(run.record_writes(crm)) == (1 if in_crm else 0)
        diff = changed(before[crm], after[crm])
        assert set(diff) == {sid for src, sid in affected if src == crm}
        for sid, keys in diff.items():
            sent = set(audit[(crm, sid)])
            assert sent == keys, (crm, sid)  # exactly the fields whose value changed
            assert {"open_critical_tickets", "last_sync"} <= sent
            assert (
                float(after[crm][sid]["open_critical_tickets"])
                == float(before[crm][sid]["open_critical_tickets"]) - 1
            )


# --------------------------------------------------------------------------------------------
# failures, deletions, manual edits
# --------------------------------------------------------------------------------------------


def test_partial_failures_are_audited_with_reasons_and_only_failed_records_are_resent(
    hub: Hub, first_run: Run
) -> None:
    pairs = [hub.take_pair() for _ in range(4)]
    for sf_id, _ in pairs:
        hub.change_sf_usage(sf_id)
    failing = {(SF, pairs[0][0]), (SF, pairs[1][0]), (HS, pairs[2][1])}
    hub.sb.servers[SF].faults.add(
        FaultRule(
            kind="partial",
            method="PATCH",
            path="/composite/sobjects",
            times=1,
            params={"ids": [pairs[0][0], pairs[1][0]]},
        )
    )
    hub.sb.servers[HS].faults.add(
        FaultRule(
            kind="partial",
            method="POST",
            path="/objects/companies/batch/update",
            times=1,
            params={"ids": [pairs[2][1]]},
        )
    )
    everyone = {(SF, s) for s, _ in pairs} | {(HS, h) for _, h in pairs}
    before = hub.crm_values()

    first = hub.run()
    assert first.result.success, first.failures()
    audit = hub.audit(first)
    assert set(audit) == everyone
    for record, rows in audit.items():
        outcomes = {row.outcome for row in rows.values()}
        if record in failing:
            assert outcomes == {"failed"}
            reason = next(iter(rows.values())).reason or ""
            code = "FIELD_CUSTOM_VALIDATION_EXCEPTION" if record[0] == SF else "VALIDATION_ERROR"
            assert code in reason, reason
        else:
            assert outcomes == {"ok"}
    assert first.writeback_metadata(SF)["failed"] == 2
    assert first.writeback_metadata(HS)["failed"] == 1
    after_first = hub.crm_values()
    for crm, sid in everyone:  # the failed records still show what the hub wrote before
        unchanged = after_first[crm][sid] == before[crm][sid]
        assert unchanged == ((crm, sid) in failing), (crm, sid)
    ok_modified = {(crm, sid): _modified(hub, crm, sid) for crm, sid in everyone - failing}

    second = hub.run()
    assert second.result.success, second.failures()
    audit = hub.audit(second)
    assert set(audit) == failing  # the successes are never sent again
    assert {row.outcome for rows in audit.values() for row in rows.values()} == {"ok"}
    assert len(second.record_writes(SF)) == 1 and len(second.record_writes(HS)) == 1
    for (crm, sid), modified in ok_modified.items():
        assert _modified(hub, crm, sid) == modified, (crm, sid)
    # complete: the failed records now hold the same new values as their customers' other record
    after = hub.crm_values()
    for sf_id, hs_id in pairs:
        for key in ("health_score", "handover_status", "handover_reasons"):
            assert _same(after[SF][sf_id][key], after[HS][hs_id][key]), key
    with hub.store.session() as s:
        now = dt.datetime.now(dt.UTC)
        assert plan_writeback(s, SF, WritebackConfig(), now) == []
        assert plan_writeback(s, HS, WritebackConfig(), now) == []


def _modified(hub: Hub, crm: str, sid: str) -> str:
    """When the CRM last changed a record (any write bumps it)."""
    record = hub.sb.state.get(crm, object_of(crm), sid)
    assert record is not None, (crm, sid)
    return str(record["modified"])


def _same(a: Any, b: Any) -> bool:
    """Salesforce and HubSpot render numbers differently (54.0 vs "54")."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return a == b


def test_record_deleted_in_the_crm_meanwhile_is_skipped_and_never_recreated(
    hub: Hub, first_run: Run
) -> None:
    (p_sf, p_hs), (q_sf, q_hs) = hub.take_pair(), hub.take_pair()
    # Each customer changes in one CRM while its record in the other CRM is purged for good
    # (emptied recycle bin / GDPR delete): no tombstone, so the hub still believes it exists.
    hub.change_sf_usage(p_sf)
    assert hub.sb.state.hard_delete(HS, "companies", p_hs)
    hub.change_hs_usage(q_hs)
    assert hub.sb.state.hard_delete(SF, "Account", q_sf)
    counts = {SF: hub.sb.state.count(SF, "Account"), HS: hub.sb.state.count(HS, "companies")}

    run = hub.run()
    assert run.result.success, run.failures()
    audit = hub.audit(run)
    for crm, sid in ((HS, p_hs), (SF, q_sf)):
        rows = audit[(crm, sid)]
        assert {row.outcome for row in rows.values()} == {"skipped"}
        assert "no longer exists" in (next(iter(rows.values())).reason or "")
        assert hub.sb.state.get(crm, object_of(crm), sid, include_deleted=True) is None
    for crm, sid in ((SF, p_sf), (HS, q_hs)):
        assert {row.outcome for row in audit[(crm, sid)].values()} == {"ok"}
    assert {SF: hub.sb.state.count(SF, "Account"), HS: hub.sb.state.count(HS, "companies")} == (
        counts
    )
    assert all(r in run.record_writes() for r in run.data_changes())  # no create, no upsert
    assert run.writeback_metadata(SF)["skipped"] == 1 and run.writeback_metadata(HS)["skipped"] == 1

    # the hub now knows they are gone: the next run does not try them again
    assert hub.account(HS, p_hs).deleted
    assert hub.account(SF, q_sf).deleted
    again = hub.run()
    assert again.result.success, again.failures()
    assert not {(HS, p_hs), (SF, q_sf)} & set(hub.audit(again))
    for crm in (SF, HS):
        assert again.writeback_metadata(crm)["skipped"] == 0


def test_manual_edit_of_a_hub_field_is_detected_and_corrected_on_the_next_run(
    hub: Hub, first_run: Run
) -> None:
    # soon after the first sync on purpose: the hub must read its own fields from the run
    # after it created them, not only after a periodic re-check
    sf_id, hs_id = hub.take_pair()
    sf, hs = hub.sf(), hub.hs()
    expected = {
        SF: sf.Account.get(sf_id)["Hub_Handover_Status__c"],
        HS: hs.crm.companies.basic_api.get_by_id(
            hs_id, properties=["crmhub_handover_status"]
        ).properties["crmhub_handover_status"],
    }
    assert expected[SF] == expected[HS]
    wrong = "new_sales" if expected[SF] != "new_sales" else "onboarding"
    sf.Account.update(sf_id, {"Hub_Handover_Status__c": wrong})
    hs.crm.companies.basic_api.update(
        hs_id, SimplePublicObjectInput(properties={"crmhub_handover_status": wrong})
    )
    hub.sb.state.advance_clock(2 * HS_LAG.total_seconds())

    run = hub.run()
    assert run.result.success, run.failures()
    audit = hub.audit(run)
    assert set(audit) == {(SF, sf_id), (HS, hs_id)}
    for record in audit:
        assert set(audit[record]) == {"handover_status", "last_sync"}
        assert audit[record]["handover_status"].new_value == expected[SF]
    assert len(run.record_writes(SF)) == 1 and len(run.record_writes(HS)) == 1
    assert hub.sf().Account.get(sf_id)["Hub_Handover_Status__c"] == expected[SF]
    company = hub.hs().crm.companies.basic_api.get_by_id(
        hs_id, properties=["crmhub_handover_status"]
    )
    assert company.properties["crmhub_handover_status"] == expected[HS]


# --------------------------------------------------------------------------------------------
# refusals: mapping, gate, limit
# --------------------------------------------------------------------------------------------


def test_stray_field_in_the_mapping_is_refused_at_start_and_nothing_is_written(
    hub: Hub, first_run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sf_id, hs_id = hub.take_pair()
    hub.change_sf_usage(sf_id)  # a pending change the run would otherwise write
    hub.pending |= {(SF, sf_id), (HS, hs_id)}
    folder = hub.config_dir("writeback:\n  salesforce_names:\n    handover_status: Name\n")
    monkeypatch.setenv("CRMHUB_CONFIG_DIR", str(folder))
    before = hub.sf_hub_values()

    run = hub.run()
    assert not run.result.success
    failures = run.failures()
    sf_steps = {k for k in failures if k.startswith("salesforce__")}
    assert sf_steps and sf_steps == {k for k in failures}
    for text in failures.values():
        assert "handover_status" in text and "names Name" in text and "Hub_" in text
    assert [r for r in run.requests if r["crm"] == SF] == []  # refused before the first call
    assert run.data_changes() == []
    assert not {"salesforce__writeback", "hubspot__writeback"} & run.steps_started()
    assert hub.audit(run) == {}
    assert hub.sf_hub_values() == before
    capsys.readouterr()
    assert print_sync_summary(run.result) == 1
    err = capsys.readouterr().err
    failed = err.split("Some steps failed (details: crmhub ui, or -v):\n")[1].splitlines()
    failed = [line for line in failed if not line.startswith("  not run because of that:")]
    assert len(failed) == 1  # eight steps failing for one cause are one line
    assert failed[0].startswith(f"  salesforce accounts and {len(failures) - 1} more steps: ")
    for line in failed:
        assert "MappingError: field mapping for hub field handover_status names Name" in line


def test_failed_blocking_check_keeps_the_writeback_from_running(hub: Hub, first_run: Run) -> None:
    # The real unification removes customers without accounts, so its checks pass by
    # construction; a concurrent writer (here a hook right after unify) is what can break them.
    store = hub.store

    @dg.success_hook(name="customer_without_source_appears")
    def orphan_after_unify(context: dg.HookContext) -> None:
        if context.step_key == "unified_customers":
            with store.session() as s:
                s.add(t.Customer(id="HUB-ORPHAN-1", name="Orphan Ltd"))
                s.commit()

    sf_id, hs_id = hub.take_pair()
    hub.change_sf_usage(sf_id)

    gated = hub.run(hooks={orphan_after_unify})
    assert not gated.result.success
    checks = {c.check_name: c.passed for c in gated.result.get_asset_check_evaluations()}
    assert checks["no_customer_without_source"] is False
    downstream = {"handover_status", "customer_kpis", "salesforce__writeback", "hubspot__writeback"}
    assert not downstream & gated.steps_started()
    assert gated.data_changes() == []
    assert hub.audit(gated) == {}

    # the next ordinary run unifies again (the orphan goes) and writes the pending changes
    run = hub.run()
    assert run.result.success, run.failures()
    with store.session() as s:
        assert s.get(t.Customer, "HUB-ORPHAN-1") is None
    assert set(hub.audit(run)) == {(SF, sf_id), (HS, hs_id)} | hub.pending
    hub.pending.clear()


def test_max_changed_records_aborts_the_writeback_with_a_clear_error(
    hub: Hub, first_run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for sf_id, _ in (hub.take_pair(), hub.take_pair()):
        hub.change_sf_usage(sf_id)
    folder = hub.config_dir("writeback:\n  max_changed_records: 1\n")
    monkeypatch.setenv("CRMHUB_CONFIG_DIR", str(folder))
    before = hub.crm_values()

    run = hub.run()
    assert not run.result.success
    failures = run.failures()
    assert set(failures) == {"salesforce__writeback", "hubspot__writeback"}
    for step, text in failures.items():
        crm = step.removesuffix("__writeback")
        message = f"WritebackAborted: {crm}: 2 records would change, above writeback."
        assert message + "max_changed_records=1" in text, step
    assert run.data_changes() == []
    assert hub.audit(run) == {}
    assert hub.crm_values() == before

    # what `crmhub sync` prints for this run: one line per failed step, the hub's own message
    capsys.readouterr()
    assert print_sync_summary(run.result) == 1
    err = capsys.readouterr().err
    failed = err.split("Some steps failed (details: crmhub ui, or -v):\n")[1].splitlines()
    assert sorted(line.split(":")[0].strip() for line in failed) == sorted(
        step.replace("__", " ") for step in failures
    )
    for line in failed:
        step, _, message = line.strip().partition(": ")
        crm = step.removesuffix(" writeback")
        assert message.startswith(
            f"WritebackAborted: {crm}: 2 records would change, above "
            "writeback.max_changed_records=1; "
        ), line
