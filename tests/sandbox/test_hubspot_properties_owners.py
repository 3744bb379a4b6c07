"""The HubSpot emulator's properties and owners APIs satisfy the real client's strict models:
catalogue properties render as complete ``ModelProperty`` objects; groups and properties are
created with 201 (409 when the name exists, 400 for an unknown group), read, updated and
archived; objects accept values for new properties and reject archived ones; owners page from
``/crm/v3/owners/`` and can be fetched by id."""

from __future__ import annotations

import hubspot
import pytest
from hubspot.crm.companies import SimplePublicObjectInput
from hubspot.crm.properties import (
    PropertyCreate,
    PropertyGroupCreate,
    PropertyGroupUpdate,
    PropertyUpdate,
)

from sandbox.hubspot.client import API_EXCEPTIONS, sandbox_client
from sandbox.hubspot.testing import seed, seed_owner
from sandbox.runner import Sandbox
from sandbox.state import HS


@pytest.fixture
def client(sb: Sandbox) -> hubspot.Client:
    return sandbox_client(sb.info)


def test_catalogue_properties_are_complete_models(sb: Sandbox, client: hubspot.Client) -> None:
    owner = seed_owner(sb.state, "sam@corp.io", "Sam", "Seller", 7)
    results = client.crm.properties.core_api.get_all("companies").results
    by_name = {p.name: p for p in results}
    assert {"name", "domain", "hs_object_id", "hs_lastmodifieddate", "usage_score"} <= set(by_name)
    assert by_name["hs_object_id"].modification_metadata.read_only_value is True
    assert by_name["name"].hubspot_defined is True
    assert by_name["usage_score"].hubspot_defined is None  # custom: key absent
    assert [o.value for o in by_name["lifecyclestage"].options][:2] == ["subscriber", "lead"]
    assert [o.value for o in by_name["hubspot_owner_id"].options] == [owner]
    tickets = client.crm.properties.core_api.get_all("tickets").results
    assert "hs_ticket_priority" in {p.name for p in tickets}


def test_group_and_property_lifecycle(sb: Sandbox, client: hubspot.Client) -> None:
    groups = client.crm.properties.groups_api
    group = groups.create(
        "companies", PropertyGroupCreate(name="crmhub", label="crmhub", display_order=5)
    )
    assert group is not None and group.archived is False  # 201
    assert groups.get_by_name("companies", "crmhub").label == "crmhub"
    assert "crmhub" in {g.name for g in groups.get_all("companies").results}
    with pytest.raises(API_EXCEPTIONS) as dup_group:
        groups.create("companies", PropertyGroupCreate(name="crmhub", label="again"))
    assert dup_group.value.status == 409
    renamed = groups.update("companies", "crmhub", PropertyGroupUpdate(label="crmhub fields"))
    assert renamed.label == "crmhub fields" and renamed.display_order == 5
    groups.create("companies", PropertyGroupCreate(name="crmhub_tmp", label="tmp"))
    assert groups.archive("companies", "crmhub_tmp") is None
    with pytest.raises(API_EXCEPTIONS) as archived_group:
        groups.get_by_name("companies", "crmhub_tmp")
    assert archived_group.value.status == 404

    core = client.crm.properties.core_api
    spec = PropertyCreate(
        name="crmhub_handover_status",
        label="Handover status",
        type="enumeration",
        field_type="select",
        group_name="crmhub",
        options=[
            {"label": "Onboarding", "value": "onboarding", "hidden": False},
            {"label": "Account management", "value": "account_management", "hidden": False},
        ],
    )
    created = core.create("companies", spec)
    assert created is not None and created.display_order == -1
    assert created.hubspot_defined is None and created.created_at is not None
    with pytest.raises(API_EXCEPTIONS) as exists:
        core.create("companies", spec)
    assert exists.value.status == 409
    with pytest.raises(API_EXCEPTIONS) as bad_group:
        core.create(
            "companies",
            PropertyCreate(
                name="crmhub_x", label="x", type="string", field_type="text", group_name="nope"
            ),
        )
    assert bad_group.value.status == 400
    assert core.get_by_name("companies", "crmhub_handover_status").label == "Handover status"

    company = seed(sb.state, "companies", {"name": "Acme"})
    objects = client.crm.companies.basic_api
    objects.update(
        company, SimplePublicObjectInput(properties={"crmhub_handover_status": "onboarding"})
    )
    with pytest.raises(API_EXCEPTIONS) as bad_option:
        objects.update(company, SimplePublicObjectInput(properties={"crmhub_handover_status": "x"}))
    assert '"code":"INVALID_OPTION"' in bad_option.value.body

    updated = core.update(
        "companies", "crmhub_handover_status", PropertyUpdate(label="Handover (hub)")
    )
    assert updated.label == "Handover (hub)" and len(updated.options) == 2
    with pytest.raises(API_EXCEPTIONS) as read_only:
        core.update("companies", "name", PropertyUpdate(label="Renamed"))
    assert read_only.value.status == 400

    assert core.archive("companies", "crmhub_handover_status") is None
    with pytest.raises(API_EXCEPTIONS) as gone:
        core.get_by_name("companies", "crmhub_handover_status")
    assert gone.value.status == 404
    archived = core.get_all("companies", archived=True).results
    assert [p.name for p in archived] == ["crmhub_handover_status"]
    with pytest.raises(API_EXCEPTIONS) as archived_write:
        objects.update(
            company, SimplePublicObjectInput(properties={"crmhub_handover_status": "onboarding"})
        )
    assert '"code":"PROPERTY_DOESNT_EXIST"' in archived_write.value.body
    assert sb.state.schema(HS, "companies", "property")[0]["archived"] is True


def test_owners_page_and_get_by_id(sb: Sandbox, client: hubspot.Client) -> None:
    owners = [
        seed_owner(sb.state, f"o{i}@corp.io", f"First{i}", f"Last{i}", 100 + i) for i in range(5)
    ]
    api = client.crm.owners.owners_api
    page = api.get_page(limit=2)
    seen = [o.id for o in page.results]
    assert page.results[0].type == "PERSON" and page.results[0].user_id == 100
    while page.paging is not None:
        page = api.get_page(limit=2, after=page.paging.next.after)
        seen.extend(o.id for o in page.results)
    assert seen == owners
    by_email = api.get_page(email="O3@corp.io")
    assert [o.id for o in by_email.results] == [owners[3]]
    assert api.get_by_id(int(owners[1])).email == "o1@corp.io"
    with pytest.raises(API_EXCEPTIONS) as missing:
        api.get_by_id(1)
    assert missing.value.status == 404
