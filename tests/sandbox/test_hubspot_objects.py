"""The HubSpot emulator's objects API answers the real hubspot-api-client (strict validation on)
exactly as HubSpot does: 201 on create, opaque keyset paging with ``paging`` absent on the last
page, ``null`` for requested-but-unset properties and ``""`` after a clear, 204 on archiving a
missing id, 400/409 error bodies, and 200/207 batch semantics."""

from __future__ import annotations

from typing import Any

import hubspot
import pytest
import requests
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.utils.objects import fetch_all

from sandbox.hubspot.client import API_EXCEPTIONS, sandbox_client
from sandbox.hubspot.testing import link, seed, seed_owner
from sandbox.runner import Sandbox
from sandbox.state import HS


@pytest.fixture
def client(sb: Sandbox) -> hubspot.Client:
    return sandbox_client(sb.info)


def raw(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.verify = sb.info.ca_bundle
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {sb.info.hs_token}"
    return session


def test_create_answers_201_so_the_client_returns_the_object(
    sb: Sandbox, client: hubspot.Client
) -> None:
    created = client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "Acme", "numberofemployees": 250})
    )
    assert created is not None
    assert created.properties["name"] == "Acme"
    assert created.properties["numberofemployees"] == "250"  # every value is a string
    assert created.properties["hs_object_id"] == created.id
    body = raw(sb).get(f"{sb.info.hubspot_url}/crm/v3/objects/companies/{created.id}").json()
    assert body["createdAt"].endswith("Z") and len(body["createdAt"]) == 24  # ….123Z
    assert body["properties"]["createdate"] == body["createdAt"]
    fetched = client.crm.companies.basic_api.get_by_id(
        created.id, properties=["name", "phone"], properties_with_history=["name", "phone"]
    )
    assert fetched.properties["name"] == "Acme"
    assert fetched.properties["phone"] is None  # requested but never set
    assert fetched.properties_with_history["name"][0].value == "Acme"
    assert fetched.properties_with_history["phone"] == []
    bad_json = raw(sb).put(
        f"{sb.info.hubspot_url}/crm/v4/objects/companies/{created.id}/associations/contacts/1",
        data=b"{not json",
    )
    assert bad_json.status_code == 400 and bad_json.json()["category"] == "VALIDATION_ERROR"


def test_list_pages_with_an_opaque_cursor_and_no_paging_on_the_last_page(
    sb: Sandbox, client: hubspot.Client
) -> None:
    ids = [seed(sb.state, "companies", {"name": f"Co {i}"}) for i in range(23)]
    api = client.crm.companies.basic_api
    page = api.get_page(limit=10, properties=["name", "industry"])
    seen = [r.id for r in page.results]
    assert page.paging.next.after and not page.paging.next.after.isdigit()
    # records created and archived mid-sync must not shift the cursor
    sb.state.soft_delete(HS, "companies", ids[3])
    late = seed(sb.state, "companies", {"name": "late"})
    while page.paging is not None:
        page = api.get_page(limit=10, after=page.paging.next.after, properties=["name"])
        seen.extend(r.id for r in page.results)
    assert seen == [*ids, late]
    assert [r.id for r in fetch_all(api, properties=["name"])] == [*ids[:3], *ids[4:], late]
    exact = api.get_page(limit=23)  # exactly the 23 live records: no further page
    assert len(exact.results) == 23 and exact.paging is None
    first = api.get_page(limit=1, properties=["name", "industry"]).results[0]
    assert first.properties["industry"] is None
    assert {"hs_object_id", "createdate", "hs_lastmodifieddate"} <= set(first.properties)
    default = api.get_page(limit=1).results[0]
    assert set(default.properties) == {
        "name",
        "domain",
        "hs_object_id",
        "createdate",
        "hs_lastmodifieddate",
    }


def test_list_archived_and_comma_separated_properties(sb: Sandbox, client: hubspot.Client) -> None:
    live = seed(sb.state, "contacts", {"email": "a@x.io", "firstname": "Ann"})
    gone = seed(sb.state, "contacts", {"email": "b@x.io"}, archived=True)
    archived = client.crm.contacts.basic_api.get_page(archived=True)
    assert [r.id for r in archived.results] == [gone]
    assert archived.results[0].archived is True and archived.results[0].archived_at is not None
    body = (
        raw(sb)
        .get(
            f"{sb.info.hubspot_url}/crm/v3/objects/contacts",
            params={"properties": "email,firstname", "archived": "false"},
        )
        .json()
    )
    assert [r["id"] for r in body["results"]] == [live]
    assert body["results"][0]["properties"]["firstname"] == "Ann"
    assert "lastmodifieddate" in body["results"][0]["properties"]  # contacts' own name
    assert "paging" not in body


def test_create_errors_conflict_and_validation(client: hubspot.Client) -> None:
    api = client.crm.contacts.basic_api
    first = api.create(SimplePublicObjectInputForCreate(properties={"email": "Jo@Example.com"}))
    with pytest.raises(API_EXCEPTIONS) as conflict:
        api.create(SimplePublicObjectInputForCreate(properties={"email": "jo@example.com"}))
    assert conflict.value.status == 409
    assert '"category":"CONFLICT"' in conflict.value.body and first.id in conflict.value.body
    with pytest.raises(API_EXCEPTIONS) as unknown:
        api.create(SimplePublicObjectInputForCreate(properties={"shoe_size": "44"}))
    assert unknown.value.status == 400
    assert '"code":"PROPERTY_DOESNT_EXIST"' in unknown.value.body
    assert '"propertyName":["shoe_size"]' in unknown.value.body
    deals = client.crm.deals.basic_api
    with pytest.raises(API_EXCEPTIONS) as bad_number:
        deals.create(SimplePublicObjectInputForCreate(properties={"amount": "lots"}))
    assert '"code":"INVALID_INTEGER"' in bad_number.value.body
    with pytest.raises(API_EXCEPTIONS) as bad_option:
        deals.create(SimplePublicObjectInputForCreate(properties={"dealstage": "won-ish"}))
    assert '"code":"INVALID_OPTION"' in bad_option.value.body
    with pytest.raises(API_EXCEPTIONS) as read_only:
        deals.create(SimplePublicObjectInputForCreate(properties={"hs_object_id": "5"}))
    assert '"code":"READ_ONLY_VALUE"' in read_only.value.body


def test_update_clears_with_empty_string_and_404s_for_missing(
    sb: Sandbox, client: hubspot.Client
) -> None:
    rid = seed(sb.state, "companies", {"name": "Acme", "phone": "123"})
    api = client.crm.companies.basic_api
    updated = api.update(rid, SimplePublicObjectInput(properties={"phone": "", "city": "Oslo"}))
    assert updated.properties["phone"] == "" and updated.properties["city"] == "Oslo"
    assert "name" not in updated.properties  # only touched properties plus the defaults
    after = api.get_by_id(rid, properties=["phone", "zip"])
    assert after.properties["phone"] == ""  # cleared: empty string
    assert after.properties["zip"] is None  # never set: null
    assert after.updated_at >= after.created_at
    with pytest.raises(API_EXCEPTIONS) as missing:
        api.update("99999999", SimplePublicObjectInput(properties={"city": "Rome"}))
    assert missing.value.status == 404
    assert '"category":"OBJECT_NOT_FOUND"' in missing.value.body


def test_archive_answers_204_even_for_a_missing_id(sb: Sandbox, client: hubspot.Client) -> None:
    rid = seed(sb.state, "deals", {"dealname": "Big"})
    api = client.crm.deals.basic_api
    assert api.archive(rid) is None
    assert api.archive("424242") is None
    session = raw(sb)
    url = f"{sb.info.hubspot_url}/crm/v3/objects/deals"
    assert session.delete(f"{url}/424242").status_code == 204
    assert session.get(f"{url}/{rid}").status_code == 404
    archived = api.get_by_id(rid, archived=True)
    assert archived.archived is True


def test_get_by_unique_id_property(sb: Sandbox, client: hubspot.Client) -> None:
    rid = seed(sb.state, "contacts", {"email": "kim@example.com"})
    found = client.crm.contacts.basic_api.get_by_id("KIM@example.com", id_property="email")
    assert found.id == rid
    with pytest.raises(API_EXCEPTIONS) as not_unique:
        client.crm.contacts.basic_api.get_by_id("Kim", id_property="firstname")
    assert not_unique.value.status == 400


def test_batch_read_200_207_and_input_limit(sb: Sandbox, client: hubspot.Client) -> None:
    a = seed(sb.state, "companies", {"name": "A"})
    b = seed(sb.state, "companies", {"name": "B"})
    api = client.crm.companies.batch_api

    def read(ids: list[str]) -> Any:
        return api.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in ids], properties=["name"], properties_with_history=[]
            )
        )

    ok = read([a, b])
    assert ok.status == "COMPLETE" and sorted(r.id for r in ok.results) == sorted([a, b])
    assert not hasattr(ok, "num_errors") or ok.num_errors is None
    partial = read([a, "777"])
    assert partial.num_errors == 1 and [r.id for r in partial.results] == [a]
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["777"]}
    with pytest.raises(API_EXCEPTIONS) as too_many:
        read([str(i) for i in range(101)])
    assert too_many.value.status == 400


def test_batch_create_fails_whole_without_trace_ids_and_207_with_them(
    sb: Sandbox, client: hubspot.Client
) -> None:
    api = client.crm.companies.batch_api
    done = api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"name": "One"}}, {"properties": {"name": "Two"}}]
        )
    )
    assert done is not None and len(done.results) == 2  # a 200 here would have been None
    assert sb.state.count(HS, "companies") == 2
    with pytest.raises(API_EXCEPTIONS) as whole:
        api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[{"properties": {"name": "Three"}}, {"properties": {"bogus": "x"}}]
            )
        )
    assert whole.value.status == 400
    assert sb.state.count(HS, "companies") == 2  # nothing written
    mixed = api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"properties": {"name": "Three"}, "objectWriteTraceId": "t3"},
                {"properties": {"bogus": "x"}, "objectWriteTraceId": "t4"},
            ]
        )
    )
    assert mixed.num_errors == 1
    assert mixed.errors[0].context["objectWriteTraceId"] == ["t4"]
    assert [r.object_write_trace_id for r in mixed.results] == ["t3"]
    assert sb.state.count(HS, "companies") == 3


def test_batch_update_reports_unknown_and_archived_ids_as_207(
    sb: Sandbox, client: hubspot.Client
) -> None:
    live = seed(sb.state, "companies", {"name": "Live"})
    gone = seed(sb.state, "companies", {"name": "Gone"}, archived=True)
    api = client.crm.companies.batch_api
    result = api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {"id": live, "properties": {"city": "Turku"}},
                {"id": gone, "properties": {"city": "Turku"}},
                {"id": "123", "properties": {"city": "Turku"}},
            ]
        )
    )
    assert [r.id for r in result.results] == [live]
    assert result.errors[0].category == "OBJECT_NOT_FOUND"
    assert result.errors[0].context == {"ids": [gone, "123"]}
    stored = sb.state.get(HS, "companies", live)
    assert stored is not None and stored["data"]["city"] == "Turku"
    with pytest.raises(API_EXCEPTIONS) as invalid:
        api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[{"id": live, "properties": {"numberofemployees": "many"}}]
            )
        )
    assert invalid.value.status == 400


def test_batch_upsert_by_email_and_batch_archive(sb: Sandbox, client: hubspot.Client) -> None:
    existing = seed(sb.state, "contacts", {"email": "old@x.io", "firstname": "Old"})
    result = client.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {"id": "old@x.io", "idProperty": "email", "properties": {"firstname": "Renamed"}},
                {"id": "New@x.io", "idProperty": "email", "properties": {"firstname": "New"}},
            ]
        )
    )
    by_new = {r.new: r for r in result.results}
    assert by_new[False].id == existing and by_new[False].properties["firstname"] == "Renamed"
    assert by_new[True].properties["email"] == "new@x.io"
    archived = client.crm.contacts.batch_api.archive(
        BatchInputSimplePublicObjectId(inputs=[{"id": existing}, {"id": "31337"}])
    )
    assert archived is None
    assert sb.state.get(HS, "contacts", existing) is None


def test_v3_associations_on_list_and_get(sb: Sandbox, client: hubspot.Client) -> None:
    company = seed(sb.state, "companies", {"name": "Acme"})
    contact = seed(sb.state, "contacts", {"email": "c@acme.io"})
    other = seed(sb.state, "contacts", {"email": "d@acme.io"})
    link(sb.state, "contacts", contact, "companies", company, primary=True)
    got = client.crm.contacts.basic_api.get_by_id(contact, associations=["companies"])
    types = sorted(a.type for a in got.associations["companies"].results)
    assert types == ["contact_to_company", "contact_to_company_unlabeled"]
    assert {a.id for a in got.associations["companies"].results} == {company}
    page = client.crm.contacts.basic_api.get_page(associations=["companies"])
    by_id = {r.id: r for r in page.results}
    assert by_id[other].associations is None
    assert by_id[contact].associations["companies"].results[0].id == company


def test_emails_generic_objects_and_owner_validation(sb: Sandbox, client: hubspot.Client) -> None:
    owner = seed_owner(sb.state, "sam@corp.io", "Sam", "Seller", 501)
    email = client.crm.objects.emails.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": "1714550400000",  # epoch ms are accepted and stored as ISO
                "hs_email_direction": "INCOMING_EMAIL",
                "hubspot_owner_id": owner,
            }
        )
    )
    assert email.properties["hs_timestamp"] == "2024-05-01T08:00:00.000Z"
    generic = client.crm.objects.basic_api.get_page("emails", properties=["hs_email_direction"])
    assert generic.results[0].properties["hs_email_direction"] == "INCOMING_EMAIL"
    with pytest.raises(API_EXCEPTIONS) as bad_owner:
        client.crm.companies.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"hubspot_owner_id": "1"})
        )
    assert '"code":"INVALID_OWNER_ID"' in bad_owner.value.body


def test_deal_stage_changes_maintain_calculated_properties(client: hubspot.Client) -> None:
    api = client.crm.deals.basic_api
    deal = api.create(
        SimplePublicObjectInputForCreate(
            properties={"dealname": "D", "dealstage": "contractsent", "closedate": "2024-06-30"}
        )
    )
    assert deal.properties["hs_is_closed"] == "false"
    assert deal.properties["closedate"] == "2024-06-30T00:00:00.000Z"
    won = api.update(deal.id, SimplePublicObjectInput(properties={"dealstage": "closedwon"}))
    assert won.properties["hs_is_closed_won"] == "true"
    assert won.properties["hs_v2_date_entered_closedwon"].endswith("Z")


def test_inline_associations_stop_at_100_per_type_with_a_next_page(
    sb: Sandbox, client: hubspot.Client
) -> None:
    # HubSpot pages inline associations beyond 100 per type (changelog of Oct 2020): a record
    # with more carries ``paging.next`` on that type; the rest is one per-record call away.
    big = seed(sb.state, "companies", {"name": "Big"})
    exact = seed(sb.state, "companies", {"name": "Exactly 100"})
    contacts = [seed(sb.state, "contacts", {"email": f"c{i}@big.io"}) for i in range(250)]
    for contact in contacts:
        link(sb.state, "companies", big, "contacts", contact)
    for contact in contacts[:100]:
        link(sb.state, "companies", exact, "contacts", contact)
    page = client.crm.companies.basic_api.get_page(associations=["contacts"])
    by_id = {r.id: r for r in page.results}
    cut = by_id[big].associations["contacts"]
    assert [a.id for a in cut.results] == contacts[:100]
    assert cut.paging is not None and cut.paging.next.after
    whole = by_id[exact].associations["contacts"]
    assert len(whole.results) == 100 and whole.paging is None
    # The same cut on a single read; the link continues after the last id kept.
    got = client.crm.companies.basic_api.get_by_id(big, associations=["contacts"])
    assert got.associations["contacts"].paging.next.after == cut.paging.next.after
    rest = raw(sb).get(cut.paging.next.link).json()
    assert [str(r["toObjectId"]) for r in rest["results"]] == contacts[100:]


def test_an_inline_association_cut_never_splits_one_target_s_types(
    sb: Sandbox, client: hubspot.Client
) -> None:
    deal = seed(sb.state, "deals", {"dealname": "D"})
    companies = [seed(sb.state, "companies", {"name": f"n{i}"}) for i in range(100)]
    for company in companies[:99]:
        link(sb.state, "deals", deal, "companies", company)
    # The 100th company is the primary one: two types (deal_to_company and …_unlabeled), items
    # 100 and 101, so it moves to the next page whole.
    link(sb.state, "deals", deal, "companies", companies[99], primary=True)
    got = client.crm.deals.basic_api.get_by_id(deal, associations=["companies"])
    block = got.associations["companies"]
    assert [a.id for a in block.results] == companies[:99]
    assert block.paging.next.after
    rest = raw(sb).get(block.paging.next.link).json()
    assert [str(r["toObjectId"]) for r in rest["results"]] == [companies[99]]
    assert len(rest["results"][0]["associationTypes"]) == 2
