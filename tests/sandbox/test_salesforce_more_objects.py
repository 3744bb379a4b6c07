"""The Salesforce emulator serves the standard objects every org has beyond the hub's own (Event,
Campaign, CampaignMember, OpportunityLineItem, OpportunityContactRole, Product2, Pricebook2,
PricebookEntry, UserRole) to the unmodified simple-salesforce client: global and per-object
describe, SOQL with parent relationships and paging, reads, creates with the values an org
derives (an Event's AccountId, an opportunity product's product fields and total), validation
errors; and the generator seeds them realistically (products and price books, opportunity
products adding up to the amount, a primary contact role per opportunity, meetings with the
customer's contacts, campaigns and their members)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.catalog import SF_EXTRA_OBJECTS, sf_fields
from sandbox.generator import generate
from sandbox.runner import Sandbox
from sandbox.salesforce import testing as t

PREFIXES = {
    "UserRole": "00E",
    "Product2": "01t",
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
    "OpportunityLineItem": "00k",
    "OpportunityContactRole": "00K",
    "Campaign": "701",
    "CampaignMember": "00v",
    "Event": "00U",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A seeded tiny org and a logged-in client, shared by the read-only tests."""
    with Sandbox(tmp_path_factory.mktemp("sf-more")) as sandbox:
        generate(sandbox.state, "tiny", 42)
        yield sandbox, t.sandbox_client(sandbox.info)


def test_every_standard_object_is_described(world: Any) -> None:
    _, sf = world
    assert set(SF_EXTRA_OBJECTS) == set(PREFIXES)
    listed = {o["name"]: o for o in sf.describe()["sobjects"]}
    for obj, prefix in PREFIXES.items():
        assert listed[obj]["keyPrefix"] == prefix and listed[obj]["queryable"]
        described = getattr(sf, obj).describe()
        assert described["name"] == obj
        assert [f["name"] for f in described["fields"]] == [f.name for f in sf_fields(obj)]


@pytest.mark.parametrize("obj", list(PREFIXES))
def test_each_object_is_seeded_queryable_and_readable(world: Any, obj: str) -> None:
    _, sf = world
    names = [f.name for f in sf_fields(obj) if f.type != "address"]
    rows = sf.query_all(f"SELECT {', '.join(names)} FROM {obj} ORDER BY Id")["records"]
    assert rows, f"the generator seeds {obj}"
    assert all(r["Id"].startswith(PREFIXES[obj]) for r in rows)
    one = getattr(sf, obj).get(rows[0]["Id"])
    assert {k: one[k] for k in names} == {k: rows[0][k] for k in names}
    count = sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"]
    assert count == len(rows)


def test_opportunity_products_add_up_and_come_from_the_price_book(world: Any) -> None:
    _, sf = world
    items = sf.query_all(
        "SELECT OpportunityId, Opportunity.Amount, TotalPrice, ListPrice, Product2.Name, "
        "PricebookEntry.Pricebook2.IsStandard, PricebookEntry.UnitPrice FROM OpportunityLineItem"
    )["records"]
    totals: dict[str, float] = defaultdict(float)
    for item in items:
        totals[item["OpportunityId"]] += item["TotalPrice"]
        assert item["ListPrice"] == item["PricebookEntry"]["UnitPrice"]
        assert item["PricebookEntry"]["Pricebook2"]["IsStandard"] is True
        assert item["Product2"]["Name"].endswith(" module")
    amounts = {i["OpportunityId"]: i["Opportunity"]["Amount"] for i in items}
    for opp, total in totals.items():
        assert total == pytest.approx(amounts[opp], abs=0.01)
    roles = sf.query_all(
        "SELECT OpportunityId, Contact.AccountId, Opportunity.AccountId, IsPrimary "
        "FROM OpportunityContactRole"
    )["records"]
    primaries: dict[str, int] = defaultdict(int)
    for role in roles:
        assert role["Contact"]["AccountId"] == role["Opportunity"]["AccountId"]
        primaries[role["OpportunityId"]] += role["IsPrimary"]
    assert primaries and set(primaries.values()) == {1}


def test_events_are_with_the_customers_contacts_and_campaigns_count_members(world: Any) -> None:
    _, sf = world
    events = sf.query_all(
        "SELECT AccountId, WhatId, Who.Name, StartDateTime, EndDateTime, DurationInMinutes "
        "FROM Event WHERE Type = 'Meeting'"
    )["records"]
    assert events
    for event in events:
        assert event["AccountId"] == event["WhatId"] and event["Who"]["Name"]
        assert event["StartDateTime"] < event["EndDateTime"]
    members = sf.query_all("SELECT CampaignId, HasResponded FROM CampaignMember")["records"]
    campaigns = sf.query_all(
        "SELECT Id, NumberOfContacts, NumberOfLeads, NumberOfResponses FROM Campaign"
    )["records"]
    for campaign in campaigns:
        mine = [m for m in members if m["CampaignId"] == campaign["Id"]]
        assert campaign["NumberOfContacts"] + campaign["NumberOfLeads"] == len(mine)
        assert campaign["NumberOfResponses"] == sum(m["HasResponded"] for m in mine)
    roles = sf.query("SELECT Name, ParentRole.Name FROM UserRole WHERE Name = 'Account Manager'")
    assert roles["records"][0]["ParentRole"]["Name"] == "VP Customer Success"


def test_creates_derive_what_an_org_derives_and_validate_like_one(sb: Sandbox, sf: Any) -> None:
    aid = t.account(sb.state, "Acme GmbH")
    product = sf.Product2.create({"Name": "Billing module", "ProductCode": "B-1"})["id"]
    book = sf.Pricebook2.create({"Name": "Standard", "IsActive": True})["id"]
    entry = sf.PricebookEntry.create(
        {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 1200.0, "IsActive": True}
    )["id"]
    assert sf.PricebookEntry.get(entry)["ProductCode"] == "B-1"
    opp = sf.Opportunity.create(
        {
            "Name": "Acme new",
            "AccountId": aid,
            "StageName": "Prospecting",
            "CloseDate": "2026-06-30",
        }
    )["id"]
    item = sf.OpportunityLineItem.create(
        {"OpportunityId": opp, "PricebookEntryId": entry, "Quantity": 3, "Discount": 10}
    )["id"]
    got = sf.OpportunityLineItem.get(item)
    assert (got["Product2Id"], got["ListPrice"], got["UnitPrice"]) == (product, 1200.0, 1200.0)
    assert got["TotalPrice"] == 3240.0 and got["Name"] == "Billing module"
    contact = sf.Contact.create({"LastName": "Pia", "AccountId": aid})["id"]
    event = sf.Event.create(
        {
            "Subject": "Kickoff",
            "WhoId": contact,
            "StartDateTime": "2026-01-05T10:00:00.000+0000",
            "EndDateTime": "2026-01-05T11:00:00.000+0000",
            "DurationInMinutes": 60,
        }
    )["id"]
    assert sf.Event.get(event)["AccountId"] == aid
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Event.create({"Subject": "x", "WhoId": aid})  # an Account is not a "Who"
    assert bad.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.CampaignMember.create({"ContactId": contact})
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.Event.update(event, {"Nope__c": 1})
    assert unknown.value.content[0]["message"] == (
        "No such column 'Nope__c' on sobject of type Event"
    )


def test_deletes_cascade_to_line_items_contact_roles_and_memberships(sb: Sandbox, sf: Any) -> None:
    """Deleting an Opportunity, Contact or Campaign takes its dependent rows to the bin."""
    generate(sb.state, "tiny", 42)
    item = sf.query("SELECT Id, OpportunityId FROM OpportunityLineItem LIMIT 1")["records"][0]
    opp = item["OpportunityId"]
    roles = sf.query(f"SELECT Id FROM OpportunityContactRole WHERE OpportunityId = '{opp}'")
    sf.Opportunity.delete(opp)
    gone = sf.query_all(
        f"SELECT Id, IsDeleted FROM OpportunityLineItem WHERE OpportunityId = '{opp}'",
        include_deleted=True,
    )["records"]
    assert gone and all(r["IsDeleted"] for r in gone)
    assert (
        sf.query(f"SELECT COUNT() FROM OpportunityContactRole WHERE OpportunityId = '{opp}'")[
            "totalSize"
        ]
        == 0
        < roles["totalSize"]
    )
    member = sf.query("SELECT Id, CampaignId FROM CampaignMember LIMIT 1")["records"][0]
    sf.Campaign.delete(member["CampaignId"])
    left = f"SELECT COUNT() FROM CampaignMember WHERE CampaignId = '{member['CampaignId']}'"
    assert sf.query(left)["totalSize"] == 0
