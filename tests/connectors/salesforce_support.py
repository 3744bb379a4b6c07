"""Shared helpers for the Salesforce connector tests: a seeded sandbox org and ledger counting.

Not a test module. The data is small and fixed (one record of each interesting shape per
object) and written straight into the sandbox state in Salesforce's JSON storage form, so every
test can assert exact records and exact API call counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connectors.base import Page
from connectors.records import AnyRecord
from connectors.salesforce import ClientCredentialsAuth, SalesforceConfig, SalesforceConnector
from sandbox.formats import sf_datetime, sf_new_id
from sandbox.runner import Sandbox, SandboxInfo
from sandbox.state import SF, SandboxState

PREFIXES = {
    "User": "005",
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "Case": "500",
    "EmailMessage": "02s",
    "Task": "00T",
    "Event": "00U",
}


def make_config(info: SandboxInfo, **overrides: Any) -> SalesforceConfig:
    """A connector config pointed at the sandbox with its built-in client credentials."""
    values: dict[str, Any] = {
        "instance_url": info.salesforce_url,
        "token_url": f"{info.salesforce_url}/services/oauth2/token",
        "auth": ClientCredentialsAuth(info.sf_client_id, info.sf_client_secret),
        "ca_bundle": info.ca_bundle,
        "bulk_poll_seconds": 0.0,
    }
    values.update(overrides)
    return SalesforceConfig(**values)


@dataclass
class Sleeps:
    """An injected ``sleep`` that records instead of waiting (tests never sleep for real)."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_connector(
    info: SandboxInfo, sleeps: Sleeps | None = None, **overrides: Any
) -> SalesforceConnector:
    return SalesforceConnector(make_config(info, **overrides), sleep=sleeps or Sleeps())


def drain(
    connector: SalesforceConnector, kind: str, cursor: dict[str, Any] | None
) -> tuple[list[AnyRecord], dict[str, Any], list[Page]]:
    """All pages of one read: records, the last cursor, the pages."""
    pages = list(connector.read(kind, cursor))
    records = [r for p in pages for r in p.records]
    return records, (pages[-1].cursor if pages else dict(cursor or {})), pages


R = TypeVar("R")


def of_type(records: list[AnyRecord], cls: type[R]) -> list[R]:
    """The records as one record type (asserting they all are)."""
    assert all(isinstance(r, cls) for r in records)
    return [r for r in records if isinstance(r, cls)]


def api_calls(state: SandboxState, since: int) -> list[tuple[str, str]]:
    """Salesforce requests since a ledger position, as (method, path without query)."""
    return [(r["method"], r["path"].split("?")[0]) for r in state.ledger(since=since, crm=SF)]


def insert(
    state: SandboxState,
    obj: str,
    data: dict[str, Any],
    at: dt.datetime,
    *,
    created: dt.datetime | None = None,
    deleted: bool = False,
) -> str:
    rid = sf_new_id(state, PREFIXES[obj])
    state.insert(SF, obj, rid, data, created=created or at, modified=at, deleted=deleted)
    return rid


@dataclass
class Org:
    """Ids and times of the seeded records."""

    t0: dt.datetime
    ids: dict[str, str]


def seed_org(state: SandboxState) -> Org:
    """One small org: a record of each shape the mapping must handle, modified a day ago."""
    t0 = (state.now() - dt.timedelta(days=1)).replace(microsecond=0)

    def at(seconds: int) -> dt.datetime:
        return t0 + dt.timedelta(seconds=seconds)

    ids: dict[str, str] = {}
    ids["u1"] = insert(
        state,
        "User",
        {
            "Username": "ann@acme.example",
            "Email": "ann@acme.example",
            "FirstName": "Ann",
            "LastName": "Seller",
            "Name": "Ann Seller",
            "IsActive": True,
            "Department": "Sales",
        },
        at(1),
    )
    ids["u2"] = insert(
        state,
        "User",
        {
            "Username": "bob@acme.example",
            "Email": "bob@acme.example",
            "FirstName": "Bob",
            "LastName": "Farmer",
            "Name": "Bob Farmer",
            "IsActive": False,
            "Department": "Account Management",
        },
        at(2),
    )
    ids["a1"] = insert(
        state,
        "Account",
        {
            "Name": "Nordwind Logistics AB",
            "Website": "https://www.nordwind.se/",
            "Phone": "+46 8 123 45",
            "Industry": "Logistics",
            "BillingStreet": "Hamngatan 1",
            "BillingCity": "Stockholm",
            "BillingState": None,
            "BillingPostalCode": "111 47",
            "BillingCountry": "Sweden",
            "NumberOfEmployees": 250,
            "AnnualRevenue": 12500000,
            "OwnerId": ids["u1"],
            "HubSpot_Company_Id__c": "10000042",
            "Go_Live_Date__c": "2025-03-01",
            "Onboarding_Completed__c": True,
            "Contracted_Modules__c": "Billing;Reporting;Payroll",
            "Modules_In_Use__c": "Billing;Reporting",
            "Usage_Score__c": 72.5,
        },
        at(3),
        created=at(-1000),
    )
    ids["a2"] = insert(state, "Account", {"Name": "Nova Systems", "OwnerId": ids["u2"]}, at(4))
    ids["a3"] = insert(state, "Account", {"Name": "Gone Ltd"}, at(5), deleted=True)
    ids["c1"] = insert(
        state,
        "Contact",
        {
            "AccountId": ids["a1"],
            "FirstName": "Eva",
            "LastName": "Berg",
            "Name": "Eva Berg",
            "Email": "eva@nordwind.se",
            "Phone": "+46 70 1",
            "Title": "CFO",
            "OwnerId": ids["u1"],
        },
        at(6),
    )
    ids["l1"] = insert(
        state,
        "Lead",
        {
            "FirstName": "Max",
            "LastName": "Muster",
            "Name": "Max Muster",
            "Company": "Muster GmbH",
            "Email": "max@muster.de",
            "Website": "muster.de",
            "Status": "Open - Not Contacted",
            "IsConverted": False,
            "OwnerId": ids["u1"],
        },
        at(7),
    )
    ids["l2"] = insert(
        state,
        "Lead",
        {
            "FirstName": "Nils",
            "LastName": "Nova",
            "Name": "Nils Nova",
            "Company": "Nova Systems",
            "Email": "nils@nova.example",
            "Status": "Closed - Converted",
            "IsConverted": True,
            "ConvertedAccountId": ids["a2"],
            "OwnerId": ids["u1"],
        },
        at(8),
    )
    ids["o1"] = insert(
        state,
        "Opportunity",
        {
            "AccountId": ids["a1"],
            "Name": "Nordwind - Billing",
            "StageName": "Closed Won",
            "Amount": 48000,
            "Probability": 100,
            "CloseDate": "2025-01-15",
            "IsClosed": True,
            "IsWon": True,
            "Type": "New Business",
            "LastStageChangeDate": sf_datetime(at(-500)),
            "Contract_Term_Months__c": 24,
            "OwnerId": ids["u1"],
        },
        at(9),
        created=at(-900),
    )
    ids["h1"] = insert(
        state,
        "OpportunityHistory",
        {"OpportunityId": ids["o1"], "StageName": "Proposal/Price Quote", "Amount": 48000},
        at(10),
        created=at(-800),
    )
    ids["h2"] = insert(
        state,
        "OpportunityHistory",
        {"OpportunityId": ids["o1"], "StageName": "Closed Won", "Amount": 48000},
        at(11),
        created=at(-500),
    )
    ids["k1"] = insert(
        state,
        "Case",
        {
            "CaseNumber": "00001001",
            "AccountId": ids["a1"],
            "ContactId": ids["c1"],
            "Subject": "Invoices fail",
            "Status": "Closed",
            "Priority": "Critical",
            "Type": "Defect",
            "Origin": "Email",
            "IsClosed": True,
            "ClosedDate": sf_datetime(at(-100)),
            "CSAT__c": 4,
            "OwnerId": ids["u2"],
        },
        at(12),
        created=at(-300),
    )
    ids["e1"] = insert(
        state,
        "EmailMessage",
        {
            "RelatedToId": ids["a1"],
            "ThreadIdentifier": "thread-1",
            "Subject": "Question about invoices",
            "FromAddress": "eva@nordwind.se",
            "ToAddress": "ann@acme.example; support@acme.example",
            "Incoming": True,
            "MessageDate": sf_datetime(at(-200)),
            "CreatedById": ids["u1"],
        },
        at(13),
    )
    ids["e2"] = insert(
        state,
        "EmailMessage",
        {
            "RelatedToId": ids["o1"],
            "Subject": "Your offer",
            "FromAddress": "ann@acme.example",
            "ToAddress": "eva@nordwind.se",
            "Incoming": False,
            "MessageDate": None,
            "CreatedById": ids["u1"],
        },
        at(14),
        created=at(-150),
    )
    ids["t1"] = insert(
        state,
        "Task",
        {
            "WhatId": ids["o1"],
            "AccountId": ids["a1"],
            "Subject": "Call",
            "TaskSubtype": "Call",
            "ActivityDate": "2025-01-10",
            "Status": "Completed",
            "CallDurationInSeconds": 300,
            "OwnerId": ids["u1"],
        },
        at(15),
    )
    ids["t2"] = insert(
        state,
        "Task",
        {"WhatId": ids["a1"], "AccountId": ids["a1"], "Subject": "Follow up", "OwnerId": ids["u2"]},
        at(16),
        created=at(-50),
    )
    ids["ev1"] = insert(
        state,
        "Event",
        {
            "WhatId": ids["o1"],
            "AccountId": ids["a1"],
            "Subject": "Demo",
            "Type": "Meeting",
            "StartDateTime": "2025-01-12T09:00:00.000+0000",
            "ActivityDateTime": "2025-01-12T09:00:00.000+0000",
            "ActivityDate": "2025-01-12",
            "DurationInMinutes": 45,
            "OwnerId": ids["u1"],
        },
        at(17),
    )
    return Org(t0=t0, ids=ids)


def sandbox(tmp_path: Any) -> Iterator[Sandbox]:
    """Body of a module-scoped sandbox fixture: both emulators on ephemeral ports.

    Starting and stopping the emulators takes about a second; tests share one per module and
    :func:`fresh` empties it before each test instead.
    """
    with Sandbox(tmp_path) as sb:
        yield sb


def fresh(sb: Sandbox) -> Sandbox:
    """Empty the sandbox for the next test: records, schema additions, ledger, faults, config."""
    sb.state.reset()
    sb.state.set_json(f"config:{SF}", {})
    for server in sb.servers.values():
        server.faults.clear()
    return sb
