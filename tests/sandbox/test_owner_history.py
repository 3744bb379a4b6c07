"""The emulators keep owner history as the real CRMs do, read through the unmodified clients.

Salesforce: an Account's owner change (REST update, Bulk API 2.0 update) writes two
``AccountHistory`` rows at the change's instant (``Field = 'Owner'``; ids with DataType
``EntityId``, names with ``Text``), queryable by SOQL with the incremental filter and order the
hub uses, paged with ``queryMore``; nothing for an update that keeps the owner. HubSpot: every
change of a company's ``hubspot_owner_id`` (create, update, batch update, the mutator) is a
version in ``propertiesWithHistory`` (newest first, ``value``/``timestamp``/``sourceType``), on
get, batch read and list (50 a page when history is asked for); a property whose versions the
sandbox does not keep has an empty list, never an invented version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import hubspot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from sandbox.hubspot.client import sandbox_client
from sandbox.hubspot.testing import seed, seed_owner
from sandbox.mutate import reassign_owner
from sandbox.runner import Sandbox
from sandbox.salesforce import testing as sft
from sandbox.state import HS, SF

OWNER_HISTORY = (
    "SELECT Id, AccountId, Field, DataType, OldValue, NewValue, CreatedDate FROM AccountHistory "
    "WHERE Field = 'Owner' AND CreatedDate > {since} ORDER BY CreatedDate, Id"
)


def _sf_stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}Z"
    )


def test_salesforce_owner_change_through_the_api_writes_two_history_rows(
    sb: Sandbox, sf: Any
) -> None:
    seller = sft.user(sb.state, "Sam", "Seller", "sam@vendor.example", Department="Sales")
    am = sft.user(sb.state, "Ada", "Manager", "ada@vendor.example", Department="Account Management")
    account = sft.account(sb.state, "Owned GmbH", OwnerId=seller)
    before = sb.state.now() - dt.timedelta(seconds=1)
    sb.state.advance_clock(3600)
    changed_at = sb.state.now()

    assert sf.Account.update(account, {"OwnerId": am}) == 204
    assert sf.Account.update(account, {"Phone": "+49 30 1234"}) == 204  # owner kept: no row

    rows = sf.query_all(OWNER_HISTORY.format(since=_sf_stamp(before)))["records"]
    mine = [r for r in rows if r["AccountId"] == account]
    assert {(r["DataType"], r["OldValue"], r["NewValue"]) for r in mine} == {
        ("EntityId", seller, am),
        ("Text", "Sam Seller", "Ada Manager"),
    }
    assert len(mine) == 2
    assert {r["Field"] for r in mine} == {"Owner"}
    assert {r["CreatedDate"] for r in mine} == {mine[0]["CreatedDate"]}
    stamp = dt.datetime.fromisoformat(mine[0]["CreatedDate"])
    assert abs((stamp - changed_at).total_seconds()) < 5  # the sandbox clock, not the wall clock
    assert mine[0]["CreatedDate"].endswith("+0000")
    # The cursor moves on: nothing after the change's instant.
    later = sf.query_all(OWNER_HISTORY.format(since=mine[-1]["CreatedDate"].replace("+0000", "Z")))
    assert [r for r in later["records"] if r["AccountId"] == account] == []


def test_salesforce_bulk_owner_changes_are_history_paged_with_query_more(
    sb: Sandbox, sf: Any
) -> None:
    seller = sft.user(sb.state, "Sam", "Seller", "sam@vendor.example")
    am = sft.user(sb.state, "Ada", "Manager", "ada@vendor.example")
    ids = [sft.account(sb.state, f"Bulk {i} AG", OwnerId=seller) for i in range(110)]
    since = sb.state.now() - dt.timedelta(seconds=1)
    sb.state.advance_clock(60)
    results = sf.bulk2.Account.update(records=[{"Id": i, "OwnerId": am} for i in ids], wait=0)
    assert sum(int(r["numberRecordsProcessed"]) for r in results) == 110
    query = OWNER_HISTORY.format(since=_sf_stamp(since))
    first = sf.query(query, headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["totalSize"] == 220 and not first["done"]
    assert first["nextRecordsUrl"].startswith("/services/data/")
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    rows = first["records"] + rest["records"]
    assert rest["done"] and len(rows) == 220
    assert {r["AccountId"] for r in rows} == set(ids)
    assert sorted(r["NewValue"] for r in rows if r["DataType"] == "EntityId") == [am] * 110


def test_salesforce_mutator_reassign_and_seeded_history(sb: Sandbox, sf: Any) -> None:
    sb.seed("tiny")
    seeded = sf.query_all("SELECT AccountId, NewValue FROM AccountHistory WHERE Field = 'Owner'")
    # Seeded handovers: some account managers' accounts have history, never all of them.
    accounts = sf.query_all("SELECT Id FROM Account")["records"]
    assert 0 < len({r["AccountId"] for r in seeded["records"]}) < len(accounts)
    target = accounts[0]["Id"]
    users = sf.query_all("SELECT Id FROM User")["records"]
    owner = sf.Account.get(target)["OwnerId"]
    new_owner = next(u["Id"] for u in users if u["Id"] != owner)
    reassign_owner(sb.state, SF, "Account", target, new_owner)
    assert sf.Account.get(target)["OwnerId"] == new_owner
    rows = sf.query_all(
        "SELECT NewValue, OldValue FROM AccountHistory WHERE Field = 'Owner' AND "
        f"AccountId = '{target}' AND DataType = 'EntityId' ORDER BY CreatedDate DESC LIMIT 1"
    )["records"]
    assert rows == [{"attributes": rows[0]["attributes"], "NewValue": new_owner, "OldValue": owner}]


def _versions(obj: Any, name: str = "hubspot_owner_id") -> list[tuple[str, str, dt.datetime]]:
    return [(v.value, v.source_type, v.timestamp) for v in obj.properties_with_history[name]]


def test_hubspot_owner_versions_newest_first_through_the_client(sb: Sandbox) -> None:
    client: hubspot.Client = sandbox_client(sb.info, client_side_validation=True)
    seller = seed_owner(sb.state, "sam@vendor.example", "Sam", "Seller", 1)
    am = seed_owner(sb.state, "ada@vendor.example", "Ada", "Manager", 2)
    created = client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "Acme", "hubspot_owner_id": seller})
    )
    t0 = sb.state.now()
    sb.state.advance_clock(86_400)
    client.crm.companies.basic_api.update(
        created.id, SimplePublicObjectInput(properties={"hubspot_owner_id": am})
    )
    client.crm.companies.basic_api.update(  # same owner again: no new version
        created.id, SimplePublicObjectInput(properties={"hubspot_owner_id": am})
    )
    sb.state.advance_clock(3600)
    client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": created.id, "properties": {"name": "Acme AG"}}]
        )
    )
    got = client.crm.companies.basic_api.get_by_id(
        created.id,
        properties=["hubspot_owner_id"],
        properties_with_history=["hubspot_owner_id", "name"],
    )
    versions = _versions(got)
    assert [(v, s) for v, s, _ in versions] == [(am, "API"), (seller, "API")]
    assert versions[0][2] > versions[1][2]  # newest first
    assert abs((versions[1][2] - t0).total_seconds()) < 5
    assert abs((versions[0][2] - t0 - dt.timedelta(days=1)).total_seconds()) < 5
    # The sandbox keeps no versions of "name": an empty list, not an invented one.
    assert got.properties_with_history["name"] == []

    read = client.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": created.id}],
            properties=["hubspot_owner_id"],
            properties_with_history=["hubspot_owner_id"],
        )
    )
    assert _versions(read.results[0]) == versions

    reassign_owner(sb.state, HS, "companies", created.id, seller)  # a user in the portal
    again = client.crm.companies.basic_api.get_by_id(
        created.id, properties_with_history=["hubspot_owner_id"]
    )
    assert [(v, s) for v, s, _ in _versions(again)] == [
        (seller, "CRM_UI"),
        (am, "API"),
        (seller, "API"),
    ]


def test_hubspot_list_with_history_holds_50_a_page(sb: Sandbox) -> None:
    client: hubspot.Client = sandbox_client(sb.info, client_side_validation=True)
    for i in range(60):
        seed(sb.state, "companies", {"name": f"Co {i}"})
    page = client.crm.companies.basic_api.get_page(
        limit=100, properties=["name"], properties_with_history=["hubspot_owner_id"]
    )
    assert len(page.results) == 50 and page.paging.next.after
    assert all(r.properties_with_history == {"hubspot_owner_id": []} for r in page.results)
    plain = client.crm.companies.basic_api.get_page(limit=100, properties=["name"])
    assert len(plain.results) == 60


def test_hubspot_seeded_companies_carry_owner_versions(sb: Sandbox) -> None:
    sb.seed("tiny")
    rows = sb.state.execute(
        "SELECT id, json_extract(data, '$.hubspot_owner_id') AS owner FROM records "
        "WHERE crm = ? AND object = 'companies' AND deleted = 0",
        (HS,),
    )
    owned = {r["id"]: r["owner"] for r in rows if r["owner"]}
    history = sb.state.history("companies", list(owned), ["hubspot_owner_id"])
    # Every owned company has versions, and the newest is its current owner.
    assert set(history) == set(owned)
    assert all(h["hubspot_owner_id"][0]["value"] == owned[i] for i, h in history.items())
    changed = [i for i, h in history.items() if len(h["hubspot_owner_id"]) > 1]
    imported = [i for i, h in history.items() if h["hubspot_owner_id"][0]["sourceType"] == "IMPORT"]
    assert changed  # handed over from a seller to an account manager
    assert not set(changed) & set(imported)
