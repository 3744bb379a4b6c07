"""The HubSpot emulator serves calls, meetings, notes, tasks, products, line items and quotes,
pipelines and custom object schemas to the unmodified hubspot-api-client 12.0.0 (strict
validation on) with the same fidelity as companies or contacts: list pages with inline
associations, reads, batch reads with 207s, search with filters, creates answering 201, the
objects' own properties, v4 associations, scopes, rate limits, the request ledger and injected
faults; and the generator seeds them realistically (activities with the customer's contacts and
company, line items that add up to the deal amount, quotes on deals at the contract stage)."""

from __future__ import annotations

import importlib
import json
from collections import defaultdict
from typing import Any

import hubspot
import pytest
import requests

from sandbox.catalog import HS_DEAL_STAGES, HS_EXTRA_OBJECTS, HS_TICKET_STAGES, hs_properties
from sandbox.control import set_config
from sandbox.generator import generate
from sandbox.http import FaultRule
from sandbox.hubspot.client import sandbox_client
from sandbox.runner import Sandbox
from sandbox.state import HS

#: object type -> (SDK model module, SDK discovery attribute path, a filterable enum property)
SDK: dict[str, tuple[str, str]] = {
    "calls": ("hubspot.crm.objects.calls", "objects.calls"),
    "meetings": ("hubspot.crm.objects.meetings", "objects.meetings"),
    "notes": ("hubspot.crm.objects.notes", "objects.notes"),
    "tasks": ("hubspot.crm.objects.tasks", "objects.tasks"),
    "products": ("hubspot.crm.products", "products"),
    "line_items": ("hubspot.crm.line_items", "line_items"),
    "quotes": ("hubspot.crm.quotes", "quotes"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One seeded tiny portal shared by the read-only tests of this module."""
    with Sandbox(tmp_path_factory.mktemp("hs-more")) as sandbox:
        generate(sandbox.state, "tiny", 42)
        yield sandbox


def _api(client: hubspot.Client, ot: str) -> Any:
    node: Any = client.crm
    for part in SDK[ot][1].split("."):
        node = getattr(node, part)
    return node


def _models(ot: str) -> Any:
    return importlib.import_module(SDK[ot][0])


def _session(sb: Sandbox) -> requests.Session:
    """Plain ``requests`` with the sandbox token, for what the SDK hides (status, raw body)."""
    session = requests.Session()
    session.verify, session.trust_env = sb.info.ca_bundle, False
    session.headers["Authorization"] = f"Bearer {sb.info.hs_token}"
    return session


def _ids(sb: Sandbox, ot: str) -> list[str]:
    rows = sb.state.execute(
        "SELECT id FROM records WHERE crm=? AND object=? AND deleted=0 ORDER BY CAST(id AS INT)",
        (HS, ot),
    )
    return [r["id"] for r in rows]


def test_the_catalogue_lists_exactly_the_sdk_objects() -> None:
    assert set(HS_EXTRA_OBJECTS) == set(SDK)


@pytest.mark.parametrize("ot", list(SDK))
def test_list_read_batch_read_and_properties_through_the_sdk(world: Sandbox, ot: str) -> None:
    client = sandbox_client(world.info)
    api = _api(client, ot)
    ids = _ids(world, ot)
    assert len(ids) >= 5, f"the generator seeds {ot}"
    names = [p.name for p in hs_properties(ot)]
    seen: list[str] = []
    page = api.basic_api.get_page(limit=3, properties=names[4:7])
    while True:
        seen.extend(r.id for r in page.results)
        assert all(set(names[4:7]) <= set(r.properties) for r in page.results)
        if page.paging is None:
            break
        page = api.basic_api.get_page(limit=3, after=page.paging.next.after, properties=names[4:7])
    assert seen == ids
    one = api.basic_api.get_by_id(ids[0], properties=names)
    assert one.properties["hs_object_id"] == ids[0]
    assert all(v is None or isinstance(v, str) for v in one.properties.values())
    m = _models(ot)
    batch = api.batch_api.read(
        m.BatchReadInputSimplePublicObjectId(
            inputs=[m.SimplePublicObjectId(id=i) for i in (ids[1], "999999999")],
            properties=names[4:6],
            properties_with_history=[],
        )
    )
    assert [r.id for r in batch.results] == [ids[1]]
    assert batch.num_errors == 1 and batch.errors[0].category == "OBJECT_NOT_FOUND"
    props = client.crm.properties.core_api.get_all(ot)
    assert {p.name for p in props.results} >= set(names)


@pytest.mark.parametrize(
    ("ot", "prop", "value"),
    [
        ("calls", "hs_call_direction", "OUTBOUND"),
        ("meetings", "hs_meeting_outcome", "COMPLETED"),
        ("tasks", "hs_task_status", "COMPLETED"),
        ("products", "hs_sku", "CRMH-BIL"),
        ("quotes", "hs_currency", "EUR"),
    ],
)
def test_search_filters_on_the_objects_own_properties(
    world: Sandbox, ot: str, prop: str, value: str
) -> None:
    m = _models(ot)
    api = _api(sandbox_client(world.info), ot)
    found = api.search_api.do_search(
        m.PublicObjectSearchRequest(
            filter_groups=[
                m.FilterGroup(filters=[m.Filter(property_name=prop, operator="EQ", value=value)])
            ],
            properties=[prop],
            limit=200,
        )
    )
    expected = [
        r["id"]
        for r in world.state.execute(
            "SELECT id FROM records WHERE crm=? AND object=? AND deleted=0 "
            "AND json_extract(data, ?) = ? ORDER BY CAST(id AS INT)",
            (HS, ot, f"$.{prop}", value),
        )
    ]
    assert expected and found.total == len(expected)
    assert sorted(r.id for r in found.results) == sorted(expected)
    assert {r.properties[prop] for r in found.results} == {value}


def test_activities_carry_their_contact_company_and_deal_inline(world: Sandbox) -> None:
    client = sandbox_client(world.info)
    for ot, singular in (("calls", "call"), ("meetings", "meeting"), ("notes", "note")):
        page = _api(client, ot).basic_api.get_page(
            limit=100, associations=["contacts", "companies", "deals"]
        )
        assert page.results
        for record in page.results:
            assoc = record.associations
            assert set(assoc) >= {"contacts", "companies"}
            assert {a.type for a in assoc["contacts"].results} == {f"{singular}_to_contact"}
            assert {a.type for a in assoc["companies"].results} == {f"{singular}_to_company"}
        one = _api(client, ot).basic_api.get_by_id(page.results[0].id, associations=["companies"])
        assert set(one.associations) == {"companies"}


def test_line_items_add_up_to_the_deal_amount_and_quotes_sit_on_contract_deals(
    world: Sandbox,
) -> None:
    client = sandbox_client(world.info)
    v4 = client.crm.associations.v4.basic_api
    deals = {
        r["id"]: r["data"]
        for r in world.state.execute(
            "SELECT id, json(data) AS data FROM records WHERE crm=? AND object='deals'", (HS,)
        )
    }
    items = client.crm.line_items.basic_api.get_page(
        limit=100, properties=["amount", "hs_product_id"], associations=["deals"]
    ).results
    assert items
    products = {p.id for p in client.crm.products.basic_api.get_page(limit=100).results}
    totals: dict[str, float] = defaultdict(float)
    for item in items:
        assert item.properties["hs_product_id"] in products
        (deal,) = [a.id for a in item.associations["deals"].results]
        totals[deal] += float(item.properties["amount"])
    for deal, total in totals.items():
        assert total == pytest.approx(float(json.loads(deals[deal])["amount"]), abs=0.01)
        back = v4.get_page("deals", deal, "line_items", limit=500)
        assert len(back.results) >= 1
    quotes = client.crm.quotes.basic_api.get_page(limit=100, associations=["deals"]).results
    assert quotes
    for quote in quotes:
        (deal,) = [a.id for a in quote.associations["deals"].results]
        assert json.loads(deals[deal])["dealstage"] in ("contractsent", "closedwon")


def test_create_answers_201_and_derives_calculated_values(sb: Sandbox) -> None:
    client = sandbox_client(sb.info)
    company = client.crm.companies.basic_api.create(
        importlib.import_module("hubspot.crm.companies").SimplePublicObjectInputForCreate(
            properties={"name": "Acme"}
        )
    )
    m = _models("calls")
    call = client.crm.objects.calls.basic_api.create(
        m.SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": "2026-01-05T10:00:00.000Z",
                "hs_call_direction": "OUTBOUND",
                "hs_call_duration": "60000",
            },
            associations=[
                m.PublicAssociationsForObject(
                    to=m.PublicObjectId(id=company.id),
                    types=[
                        m.AssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=182
                        )
                    ],
                )
            ],
        )
    )
    assert call is not None and call.properties["hs_call_direction"] == "OUTBOUND"
    linked = client.crm.objects.calls.basic_api.get_by_id(call.id, associations=["companies"])
    assert [a.id for a in linked.associations["companies"].results] == [company.id]
    li = _models("line_items")
    item = client.crm.line_items.basic_api.create(
        li.SimplePublicObjectInputForCreate(
            properties={"name": "Billing", "quantity": "3", "price": "100", "discount": "10"}
        )
    )
    assert item.properties["amount"] == "270.00"
    with pytest.raises(li.ApiException) as bad:
        client.crm.line_items.basic_api.create(
            li.SimplePublicObjectInputForCreate(properties={"no_such_property": "1"})
        )
    assert bad.value.status == 400 and "PROPERTY_DOESNT_EXIST" in bad.value.body
    t = _models("tasks")
    task = client.crm.objects.tasks.basic_api.create(
        t.SimplePublicObjectInputForCreate(properties={"hs_task_status": "NOT_STARTED"})
    )
    done = client.crm.objects.tasks.basic_api.update(
        task.id, t.SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"})
    )
    assert done.properties["hs_task_status"] == "COMPLETED"
    again = client.crm.objects.tasks.basic_api.get_by_id(
        task.id, properties=["hs_task_completion_date"]
    )
    assert again.properties["hs_task_completion_date"]


def test_pipelines_are_the_default_deal_and_ticket_pipelines(sb: Sandbox) -> None:
    client = sandbox_client(sb.info)
    api = client.crm.pipelines.pipelines_api
    (deals,) = api.get_all("deals").results
    assert deals.id == "default"
    assert [s.id for s in deals.stages] == [s[0] for s in HS_DEAL_STAGES]
    won = next(s for s in deals.stages if s.id == "closedwon")
    assert won.metadata == {"isClosed": "true", "probability": "1.0"}
    (tickets,) = api.get_all("tickets").results
    assert [s.id for s in tickets.stages] == list(HS_TICKET_STAGES)
    assert tickets.stages[-1].metadata == {"ticketState": "CLOSED"}
    assert api.get_by_id("deals", "default").label == "Sales Pipeline"
    stages = client.crm.pipelines.pipeline_stages_api
    assert len(stages.get_all("0-3", "default").results) == len(HS_DEAL_STAGES)
    assert stages.get_by_id("tickets", "0", "4").label == "Closed"
    exc = importlib.import_module("hubspot.crm.pipelines").ApiException
    with pytest.raises(exc) as missing:
        api.get_by_id("deals", "nope")
    assert missing.value.status == 404
    with pytest.raises(exc) as unsupported:
        api.get_all("contacts")
    assert unsupported.value.status == 400


def test_the_portal_has_no_custom_object_schemas(sb: Sandbox) -> None:
    client = sandbox_client(sb.info)
    assert client.crm.schemas.core_api.get_all().results == []
    exc = importlib.import_module("hubspot.crm.schemas").ApiException
    with pytest.raises(exc) as missing:
        client.crm.schemas.core_api.get_by_id("2-123456")
    assert missing.value.status == 404
    documented = _session(sb).get(f"{sb.info.hubspot_url}/crm/v3/schemas")
    assert documented.status_code == 200 and documented.json() == {"results": []}


def test_scopes_faults_rate_limits_and_the_ledger_apply_to_the_new_objects(sb: Sandbox) -> None:
    sb.state.add_token("contacts-only", HS, ["crm.objects.contacts.read"])
    narrow = sandbox_client(sb.info, access_token="contacts-only")
    assert narrow.crm.objects.calls.basic_api.get_page().results == []  # contacts' scope
    with pytest.raises(_models("products").ApiException) as denied:
        narrow.crm.products.basic_api.get_page()
    assert denied.value.status == 403 and "MISSING_SCOPES" in denied.value.body
    with pytest.raises(importlib.import_module("hubspot.crm.schemas").ApiException) as no_schema:
        narrow.crm.schemas.core_api.get_all()
    assert no_schema.value.status == 403
    set_config(sb.state, HS, {"retry_after_seconds": 0})
    sb.servers["hubspot"].faults.add(
        FaultRule(kind="rate_limit", path="/crm/v3/objects/meetings", times=1)
    )
    head = len(sb.state.ledger(crm=HS))
    limited = _session(sb).get(f"{sb.info.hubspot_url}/crm/v3/objects/meetings")
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    # the SDK's urllib3 honours Retry-After on its own: the next call goes through
    assert sandbox_client(sb.info).crm.objects.meetings.basic_api.get_page().results == []
    ledger = [(r["path"].split("?")[0], r["status"]) for r in sb.state.ledger(since=head, crm=HS)]
    assert ledger == [("/crm/v3/objects/meetings", 429), ("/crm/v3/objects/meetings", 200)]
