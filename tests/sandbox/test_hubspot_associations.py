"""The HubSpot emulator's v4 associations API works with the real client under strict
validation: batch read (≤1,000 ids, 200/207, ``toObjectId`` a JSON number), per-record paging,
create (201) / create_default (200) / archive (204) stored in both directions, and the batch
create/associate-default/archive calls; links to archived records are not reported."""

from __future__ import annotations

from typing import Any

import hubspot
import pytest
import requests
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
)

from sandbox.hubspot.client import API_EXCEPTIONS, sandbox_client
from sandbox.hubspot.testing import link, seed
from sandbox.runner import Sandbox
from sandbox.state import HS


@pytest.fixture
def client(sb: Sandbox) -> hubspot.Client:
    return sandbox_client(sb.info)


def read(client: hubspot.Client, frm: str, to: str, ids: list[str]) -> Any:
    return client.crm.associations.v4.batch_api.get_page(
        frm, to, BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": i} for i in ids])
    )


def test_batch_read_200_then_207_for_ids_without_links(sb: Sandbox, client: hubspot.Client) -> None:
    company = seed(sb.state, "companies", {"name": "Acme"})
    lonely = seed(sb.state, "companies", {"name": "Lonely"})
    contacts = [seed(sb.state, "contacts", {"email": f"{i}@acme.io"}) for i in range(3)]
    link(sb.state, "companies", company, "contacts", contacts[0], primary=True)
    link(sb.state, "companies", company, "contacts", contacts[1])
    ok = read(client, "companies", "contacts", [company])
    assert ok.status == "COMPLETE" and ok.results[0]._from.id == company
    targets = {
        t.to_object_id: sorted(a.type_id for a in t.association_types) for t in ok.results[0].to
    }
    assert targets == {contacts[0]: [2, 280], contacts[1]: [280]}
    labels = {a.label for t in ok.results[0].to for a in t.association_types}
    assert labels == {"Primary", None}
    partial = read(client, "companies", "contacts", [company, lonely])
    assert partial.num_errors == 1
    assert partial.errors[0].context == {"fromObjectId": [lonely]}
    # the reverse direction is there too, and the wire format has numeric toObjectId
    session = requests.Session()
    session.verify = sb.info.ca_bundle
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {sb.info.hs_token}"
    body = session.post(
        f"{sb.info.hubspot_url}/crm/v4/associations/contacts/companies/batch/read",
        json={"inputs": [{"id": contacts[0]}]},
    ).json()
    assert body["results"][0]["to"][0]["toObjectId"] == int(company)
    assert isinstance(body["results"][0]["to"][0]["toObjectId"], int)
    with pytest.raises(API_EXCEPTIONS) as too_many:
        read(client, "companies", "contacts", [str(i) for i in range(1001)])
    assert too_many.value.status == 400


def test_links_to_archived_records_are_hidden(sb: Sandbox, client: hubspot.Client) -> None:
    company = seed(sb.state, "companies", {"name": "Acme"})
    deal = seed(sb.state, "deals", {"dealname": "D"})
    link(sb.state, "companies", company, "deals", deal)
    assert len(read(client, "companies", "deals", [company]).results) == 1
    sb.state.soft_delete(HS, "deals", deal)
    assert read(client, "companies", "deals", [company]).num_errors == 1


def test_get_page_pages_and_omits_paging_on_the_last_page(
    sb: Sandbox, client: hubspot.Client
) -> None:
    company = seed(sb.state, "companies", {"name": "Acme"})
    contacts = [seed(sb.state, "contacts", {"email": f"{i}@acme.io"}) for i in range(5)]
    for contact in contacts:
        link(sb.state, "companies", company, "contacts", contact)
    api = client.crm.associations.v4.basic_api
    page = api.get_page("companies", company, "contacts", limit=2)
    seen = [r.to_object_id for r in page.results]
    while page.paging is not None:
        page = api.get_page("companies", company, "contacts", limit=2, after=page.paging.next.after)
        seen.extend(r.to_object_id for r in page.results)
    assert seen == contacts


def test_create_default_create_and_archive_single(sb: Sandbox, client: hubspot.Client) -> None:
    contact = seed(sb.state, "contacts", {"email": "c@acme.io"})
    company = seed(sb.state, "companies", {"name": "Acme"})
    api = client.crm.associations.v4.basic_api
    default = api.create_default("contacts", contact, "companies", company)
    assert default is not None and len(default.results) == 2  # both directions
    assert {r.association_spec.association_type_id for r in default.results} == {279, 280}
    labelled = api.create(
        "contacts",
        contact,
        "companies",
        company,
        [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)],
    )
    assert labelled is not None and labelled.labels == ["Primary"]  # 201, else None
    reverse = sb.state.associations("companies", company, "contacts")
    assert sorted(r["type_id"] for r in reverse) == [2, 280]
    with pytest.raises(API_EXCEPTIONS) as wrong_type:
        api.create(
            "contacts",
            contact,
            "companies",
            company,
            [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=341)],
        )
    assert wrong_type.value.status == 400
    assert api.archive("contacts", contact, "companies", company) is None
    assert sb.state.associations("companies", company, "contacts") == []
    assert api.get_page("contacts", contact, "companies").results == []


def test_batch_create_default_and_archive(sb: Sandbox, client: hubspot.Client) -> None:
    deal = seed(sb.state, "deals", {"dealname": "D"})
    companies = [seed(sb.state, "companies", {"name": n}) for n in ("A", "B")]
    batch = client.crm.associations.v4.batch_api
    created = batch.create(
        "deals",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                {
                    "from": {"id": deal},
                    "to": {"id": companies[0]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}],
                }
            ]
        ),
    )
    assert created is not None and created.results[0].labels == ["Primary"]
    partial = batch.create(
        "deals",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                {
                    "from": {"id": deal},
                    "to": {"id": "999"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}],
                }
            ]
        ),
    )
    assert partial.num_errors == 1 and partial.results == []
    default = batch.create_default(
        "deals",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[{"from": {"id": deal}, "to": {"id": companies[1]}}]
        ),
    )
    assert len(default.results) == 2
    linked = read(client, "deals", "companies", [deal]).results[0].to
    assert sorted(t.to_object_id for t in linked) == companies
    archived = batch.archive(
        "deals",
        "companies",
        BatchInputPublicAssociationMultiArchive(
            inputs=[{"from": {"id": deal}, "to": [{"id": c} for c in companies]}]
        ),
    )
    assert archived is None
    assert sb.state.associations("deals", deal, "companies") == []
    assert sb.state.associations("companies", companies[0], "deals") == []


def test_create_with_associations_on_the_objects_api(sb: Sandbox, client: hubspot.Client) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    company = seed(sb.state, "companies", {"name": "Acme"})
    contact = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"email": "new@acme.io"},
            associations=[
                {
                    "to": {"id": company},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ],
        )
    )
    assert [r["to_id"] for r in sb.state.associations("companies", company, "contacts")] == [
        contact.id
    ]
    with pytest.raises(API_EXCEPTIONS) as dangling:
        client.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"email": "x@acme.io"},
                associations=[
                    {
                        "to": {"id": "12345"},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}
                        ],
                    }
                ],
            )
        )
    assert dangling.value.status == 400
    assert sb.state.count(HS, "contacts") == 1


def test_batch_archive_labels_keeps_the_unlabelled_link(
    sb: Sandbox, client: hubspot.Client
) -> None:
    contact = seed(sb.state, "contacts", {"email": "c@acme.io"})
    company = seed(sb.state, "companies", {"name": "Acme"})
    link(sb.state, "contacts", contact, "companies", company, primary=True)
    answer = client.crm.associations.v4.batch_api.archive_labels(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                {
                    "from": {"id": contact},
                    "to": {"id": company},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                }
            ]
        ),
    )
    assert answer is None
    assert [r["type_id"] for r in sb.state.associations("contacts", contact, "companies")] == [279]
    assert [r["type_id"] for r in sb.state.associations("companies", company, "contacts")] == [280]
