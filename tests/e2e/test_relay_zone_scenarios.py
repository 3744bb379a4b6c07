"""Hand-computed handover scenarios built through the sandbox's Salesforce API and run through the
real Dagster sync job: the relay zone's earliest and latest day, overdue, a segment by customer
size, suppression from a late-stage deal naming deal, stage and seller, unanswered customer
emails, "first seen on" for a customer already with an account manager, and an at-risk change
dated by the case that caused it, a marketing email during the negotiation (HubSpot) as an alert,
cost of sale and contacts per month; read back from the records as a seller sees them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from simple_salesforce import Salesforce

from connectors.salesforce.fields import derived_name
from crmhub import settings
from sandbox.hubspot.client import sandbox_client as hubspot_client
from sandbox.hubspot.testing import link, seed
from sandbox.runner import Sandbox
from sandbox.salesforce.testing import sandbox_client, user
from unified_model import tables as t
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
BERLIN = ZoneInfo("Europe/Berlin")
RULES = """
handover:
  zone: {anchor: go_live, earliest_days: 30, latest_days: 120}
  segments:
    - name: SMB
      when: {employees_max: 50}
      rule: calendar_after_go_live
      days: 30
"""
FIELDS = (
    "handover_status",
    "handover_status_label",
    "handover_status_since",
    "handover_reasons",
    "handover_next_step",
    "handed_over_on",
    "negotiation_flag",
    "negotiation_detail",
    "marketing_alert",
    "marketing_alert_detail",
    "cost_of_sale",
    "contacts_per_month",
    "unanswered_inquiries",
    "oldest_unanswered_inquiry",
    "open_critical_tickets",
)


def _run(instance: dg.DagsterInstance) -> None:
    from assets.definitions import all_assets, build_resources, sync_job
    from assets.unify import unify_checks

    defs = dg.Definitions(
        assets=all_assets, asset_checks=unify_checks, jobs=[sync_job], resources=build_resources()
    )
    result = defs.resolve_job_def("sync_job").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]


class Portal:
    """The scenario's Salesforce org, written through the API, and the fields read back."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.sf: Salesforce = sandbox_client(sb.info)
        self.today = dt.datetime.now(dt.UTC).astimezone(BERLIN).date()
        st = sb.state
        self.seller = user(st, "Sam", "Seller", "sam@vendor.example", Department="Sales")
        self.am = user(st, "Ada", "Meyer", "ada@vendor.example", Department="Account Management")
        self.ids: dict[str, str] = {}

    def customer(
        self, key: str, *, live_days: int, owner: str, employees: int = 500, in_use: str = "Billing"
    ) -> str:
        """A signed customer: an Account with go-live ``live_days`` ago and a won opportunity."""
        acc = self.sf.Account.create(
            {
                "Name": f"{key} GmbH",
                "Website": f"https://{key.lower()}.example",
                "OwnerId": owner,
                "NumberOfEmployees": employees,
                "Go_Live_Date__c": (self.today - dt.timedelta(days=live_days)).isoformat(),
                "Onboarding_Completed__c": True,
                "Contracted_Modules__c": "Billing",
                "Modules_In_Use__c": in_use,
                "Usage_Score__c": 80,
            }
        )["id"]
        self.sf.Opportunity.create(
            {
                "Name": f"{key} subscription",
                "AccountId": acc,
                "StageName": "Closed Won",
                "CloseDate": (self.today - dt.timedelta(days=live_days + 10)).isoformat(),
                "Amount": 12000,
                "OwnerId": self.seller,
            }
        )
        self.ids[key] = acc
        return acc

    def fields(self, key: str) -> dict[str, Any]:
        row = self.sf.Account.get(self.ids[key])
        return {f: row.get(derived_name(f)) for f in FIELDS}

    def day(self, offset: int) -> str:
        return (self.today + dt.timedelta(days=offset)).isoformat()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("relay")
    saved = {k: v for k, v in os.environ.items() if k.startswith("CRMHUB_")}
    for key in saved:
        del os.environ[key]
    config = tmp / "config"
    config.mkdir()
    shutil.copy(REPO_CONFIG / "mapping.yaml", config / "mapping.yaml")
    (config / "rules.yaml").write_text(RULES)
    with Sandbox(tmp / "sandbox") as sb:
        os.environ.update(settings.sandbox_environment(sb.info))
        db_url = f"sqlite:///{tmp / 'hub.db'}"
        os.environ["CRMHUB_DATABASE_URL"] = db_url
        os.environ["CRMHUB_HOME"] = str(tmp / "home")
        os.environ["CRMHUB_CONFIG_DIR"] = str(config)
        portal = Portal(sb)
        p = portal
        p.customer("Early", live_days=14, owner=p.seller)
        zone = p.customer("Zone", live_days=45, owner=p.seller)
        p.customer("Late", live_days=121, owner=p.seller)
        p.customer("Small", live_days=31, owner=p.seller, employees=20, in_use="")
        p.customer("Kept", live_days=60, owner=p.am)
        # Zone: a second deal in negotiation (suppress marketing) and a customer email that
        # has waited two days without a reply
        p.sf.Opportunity.create(
            {
                "Name": "Zone expansion",
                "AccountId": zone,
                "StageName": "Negotiation/Review",
                "CloseDate": p.day(30),
                "OwnerId": p.seller,
            }
        )
        # marketing (HubSpot, the same company by domain): jane got a marketing email after the
        # deal entered Negotiation/Review (an alert), joe before it (no alert); the sandbox keeps
        # the read-only send date as HubSpot does, so it is seeded, an hour old for the search lag
        hour_ago = p.sb.state.now() - dt.timedelta(hours=1)
        after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        seed(
            p.sb.state,
            "companies",
            {"name": "Zone", "domain": "zone.example"},
            rid="701",
            created=hour_ago,
        )
        for rid, mail, sent in (("801", "jane", after), ("802", "joe", before)):
            props = {
                "email": f"{mail}@zone.example",
                "hs_email_last_send_date": sent.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
            seed(p.sb.state, "contacts", props, rid=rid, created=hour_ago)
            link(p.sb.state, "contacts", rid, "companies", "701")
        # a logged call of 30 minutes: cost 15 + 0.5 h x 80 = 55
        p.sf.Task.create(
            {
                "WhatId": zone,
                "Subject": "Call",
                "TaskSubtype": "Call",
                "ActivityDate": p.day(-3),
                "CallDurationInSeconds": 1800,
                "OwnerId": p.seller,
            }
        )
        two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        p.sf.EmailMessage.create(
            {
                "RelatedToId": zone,
                "Subject": "Invoice question",
                "Incoming": True,
                "FromAddress": "pia@zone.example",
                "ToAddress": "sam@vendor.example",
                "MessageDate": two_days_ago.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            }
        )
        instance = dg.DagsterInstance.ephemeral()
        _run(instance)
        yield {"portal": p, "instance": instance, "db_url": db_url, "two_days_ago": two_days_ago}
    for key in [k for k in os.environ if k.startswith("CRMHUB_")]:
        del os.environ[key]
    os.environ.update(saved)


def test_before_the_zone_opens_the_customer_stays_in_onboarding(world: dict[str, Any]) -> None:
    p: Portal = world["portal"]
    f = p.fields("Early")
    assert (f["handover_status"], f["handover_status_label"]) == ("onboarding", "Onboarding")
    assert f["handover_reasons"] == (
        f"blocked: day 14 after go-live: the handover zone (days 30–120) opens on {p.day(16)}, "
        f"in 16 days. Next: prepare the handover for {p.day(16)}"
    )
    assert f["handover_next_step"] == f"prepare the handover for {p.day(16)}"


def test_inside_the_zone_ready_with_days_left_suppressed_and_unanswered(
    world: dict[str, Any],
) -> None:
    p: Portal = world["portal"]
    f = p.fields("Zone")
    assert f["handover_status"] == "ready_for_handover"
    # go-live 45 days ago: 75 days left until day 120
    assert f["handover_reasons"] == (
        f"ready for handover (first seen on {p.day(0)}): owner Sam Seller (Sales) is not an "
        f"account manager; day 45 after go-live, inside the handover zone (days 30–120): 75 days "
        f"left, hand over by {p.day(75)}. Next: assign an account manager"
    )
    assert f["handover_next_step"] == "assign an account manager"
    # the open Negotiation/Review deal: suppression, whether or not marketing has emailed yet
    assert f["negotiation_flag"] is True
    assert f["negotiation_detail"] == (
        f"suppress marketing: 'Zone expansion' in Negotiation/Review since {p.day(0)}, "
        "seller Sam Seller"
    )
    # marketing emailed jane after the deal entered the stage: a separate alert naming her
    assert f["marketing_alert"] is True
    assert f["marketing_alert_detail"] == (
        f"marketing emailed jane@zone.example on {p.day(0)} during 'Zone expansion' "
        "(Negotiation/Review, seller Sam Seller)"
    )
    # the suppression reaches the HubSpot company as well
    company = hubspot_client(p.sb.info).crm.companies.basic_api.get_by_id(
        "701", properties=["crmhub_negotiation_flag", "crmhub_marketing_alert"]
    )
    assert company.properties["crmhub_negotiation_flag"] == "true"
    assert company.properties["crmhub_marketing_alert"] == "true"
    # one call (55) and, in the 90-day window, the call and the email: 2 x 30.4375 / 90
    assert f["cost_of_sale"] == 55
    assert f["contacts_per_month"] == 0.68
    # the inbound email of two days ago has no reply: one unanswered inquiry since that day
    assert f["unanswered_inquiries"] == 1
    assert (
        f["oldest_unanswered_inquiry"]
        == world["two_days_ago"].astimezone(BERLIN).date().isoformat()
    )


def test_past_the_latest_day_is_overdue_since_the_day_after_the_due_day(
    world: dict[str, Any],
) -> None:
    p: Portal = world["portal"]
    f = p.fields("Late")
    # go-live 121 days ago: due by day 120 (yesterday), overdue since today
    assert (f["handover_status"], f["handover_status_label"]) == ("overdue", "Handover overdue")
    assert f["handover_status_since"] == p.day(0)
    assert f["handover_reasons"] == (
        f"handover overdue since {p.day(0)}: owner Sam Seller (Sales) is not an account "
        "manager. Next: assign an account manager"
    )


def test_small_customer_segment_uses_its_calendar_rule(world: dict[str, Any]) -> None:
    p: Portal = world["portal"]
    f = p.fields("Small")
    # 20 employees: SMB, 30 days after go-live (31 have passed); module not in use does not
    # matter in this segment. Readiness is dated by the rule: go-live + 30 days = yesterday.
    assert f["handover_status"] == "ready_for_handover"
    assert f["handover_reasons"].startswith(f"ready for handover since {p.day(-1)}:")


def test_first_seen_with_an_account_manager_then_at_risk_dated_by_the_case(
    world: dict[str, Any],
) -> None:
    p: Portal = world["portal"]
    f = p.fields("Kept")
    assert f["handover_status"] == "account_management"
    assert f["handed_over_on"] is None  # not in any record: never invented
    assert f["handover_reasons"] == (
        f"account management (first seen on {p.day(0)}; handover date not in the CRM history)"
    )
    case = p.sf.Case.create(
        {"AccountId": p.ids["Kept"], "Subject": "Login fails", "Priority": "Critical"}
    )["id"]
    created = p.sf.Case.get(case)["CreatedDate"]
    _run(world["instance"])
    f = p.fields("Kept")
    assert (f["handover_status"], f["handover_status_label"]) == ("at_risk", "At risk")
    assert f["handover_next_step"] == f"close ticket {case}"
    assert f"1 new critical ticket since handover: {case} 'Login fails'" in f["handover_reasons"]
    assert f["open_critical_tickets"] == 1
    store = HubStore(world["db_url"])
    (moved,) = [x for x in store.all(t.HandoverTransition) if x.to_status == "at_risk"]
    store.dispose()
    opened = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(dt.UTC)
    assert moved.at == opened  # dated by the case, not by the run


def _contact_writes(p: Portal, since: int) -> list[dict[str, Any]]:
    """HubSpot contact batch updates the sandbox served after ledger row ``since``."""
    return [
        r
        for r in p.sb.state.ledger(since, crm="hubspot")
        if r["method"] == "POST" and "/objects/contacts/batch/update" in r["path"]
    ]


def test_suppression_reaches_the_hubspot_contacts_and_ends_when_the_deal_is_won(
    world: dict[str, Any],
) -> None:
    p: Portal = world["portal"]
    hs = hubspot_client(p.sb.info)
    props = ["crmhub_marketing_suppressed", "crmhub_suppression_reason"]
    # both contacts of the Zone company (jane and joe, whether or not marketing emailed them)
    # carry the flag marketers filter lists on, naming deal, stage, seller and since
    reason = (
        f"open deal 'Zone expansion' in stage Negotiation/Review, seller Sam Seller, "
        f"since {p.day(0)}"
    )
    for rid in ("801", "802"):
        held = hs.crm.contacts.basic_api.get_by_id(rid, properties=props).properties
        assert (held["crmhub_marketing_suppressed"], held["crmhub_suppression_reason"]) == (
            "true",
            reason,
        ), rid
    # provisioned like the company fields: a checkbox in the hub's group on contacts
    prop = hs.crm.properties.core_api.get_by_name("contacts", "crmhub_marketing_suppressed")
    assert (prop.group_name, prop.type, prop.field_type) == (
        "crmhub",
        "enumeration",
        "booleancheckbox",
    )
    # a sync with nothing new for the contacts sends them nothing
    head = p.sb.state.ledger_head()
    _run(world["instance"])
    assert _contact_writes(p, head) == []
    # the deal is won: the next sync clears the suppression, both contacts in one batch call
    (deal,) = p.sf.query("SELECT Id FROM Opportunity WHERE Name = 'Zone expansion'")["records"]
    p.sf.Opportunity.update(deal["Id"], {"StageName": "Closed Won"})
    head = p.sb.state.ledger_head()
    _run(world["instance"])
    writes = _contact_writes(p, head)
    assert len(writes) == 1, writes
    for rid in ("801", "802"):
        held = hs.crm.contacts.basic_api.get_by_id(rid, properties=props).properties
        assert held.get("crmhub_marketing_suppressed") in (None, ""), rid
        assert held.get("crmhub_suppression_reason") in (None, ""), rid
    # the ledger and the audit keep contacts apart from companies, one ok row per contact write
    store = HubStore(world["db_url"])
    audit = [a for a in store.all(t.WriteAudit) if a.source == "hubspot_contact"]
    store.dispose()
    assert sorted((a.source_id, a.outcome) for a in audit) == [
        ("801", "ok"),
        ("801", "ok"),
        ("802", "ok"),
        ("802", "ok"),
    ]
    assert p.fields("Zone")["negotiation_flag"] is False


def test_a_case_closed_then_reopened_counts_in_its_owners_reopen_rate(
    world: dict[str, Any],
) -> None:
    from unified_model.insights import compute_company_kpis
    from unified_model.rules import load_rules

    p: Portal = world["portal"]
    rita = user(p.sb.state, "Rita", "Support", "rita@vendor.example", Department="Support")
    common = {"AccountId": p.ids["Early"], "OwnerId": rita}
    # Rita's cases this month: one closed and later reopened, one closed for good, one open
    flipped = p.sf.Case.create({**common, "Subject": "Export wrong", "Status": "Closed"})["id"]
    p.sf.Case.create({**common, "Subject": "Password reset", "Status": "Closed"})
    p.sf.Case.create({**common, "Subject": "New report", "Status": "New"})
    _run(world["instance"])  # the hub sees both closed
    p.sf.Case.update(flipped, {"Status": "Working"})
    _run(world["instance"])  # ... and the first open again
    store = HubStore(world["db_url"])
    (row,) = [x for x in store.live(t.Ticket) if x.source_id == flipped]
    assert row.reopened_count == 1 and not row.is_closed
    report = compute_company_kpis(
        store,
        load_rules(Path(os.environ["CRMHUB_CONFIG_DIR"]) / "rules.yaml"),
        now=dt.datetime.now(dt.UTC),
    )
    (mine,) = [r for r in report.owner_rows if r["owner"] == "rita@vendor.example"]
    # closed at least once: the reopened one and the one closed for good; reopened: 1 -> 0.5
    assert (mine["tickets_opened"], mine["tickets_reopened"], mine["reopen_rate"]) == (3, 1, 0.5)
    assert "reopened" in report.owner_text().splitlines()[0]
    # per customer: Early's tickets are these three
    (early,) = [
        m
        for m in store.all(t.CustomerMetrics)
        if m.customer_id
        == next(a.customer_id for a in store.live(t.SourceAccount) if a.source_id == p.ids["Early"])
    ]
    store.dispose()
    assert (early.values["reopened_tickets"], early.values["reopen_rate"]) == (1, 0.5)
