"""Every HubSpot list endpoint that pages answers ``paging.next.link`` with the request's own query
(every parameter but ``after``, plus the new ``after``), so a client that follows the link with
plain ``requests``, as HubSpot's docs show, gets exactly the pages, page sizes, properties and
associations that ``after``-based paging through hubspot-api-client 12.0.0 gets: objects (old and
new types), owners and v4 associations alike."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from sandbox.hubspot.client import sandbox_client
from sandbox.hubspot.testing import link, seed, seed_owner
from sandbox.runner import Sandbox


def _session(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.verify, session.trust_env = sb.info.ca_bundle, False
    session.headers["Authorization"] = f"Bearer {sb.info.hs_token}"
    return session


def _follow(sb: Sandbox, url: str) -> list[dict[str, Any]]:
    """Every page of a list, following ``paging.next.link`` and nothing else."""
    session, pages = _session(sb), []
    while url:
        response = session.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        url = body.get("paging", {}).get("next", {}).get("link")
    return pages


def _portal(sb: Sandbox) -> tuple[list[str], list[str]]:
    companies = [
        seed(sb.state, "companies", {"name": f"Co {i}", "industry": "Retail", "city": "Oulu"})
        for i in range(11)
    ]
    contacts = [seed(sb.state, "contacts", {"email": f"p{i}@x.io"}) for i in range(11)]
    for company, contact in zip(companies, contacts, strict=True):
        link(sb.state, "contacts", contact, "companies", company, primary=True)
    return companies, contacts


@pytest.mark.parametrize("ot", ["companies", "calls"])
def test_following_the_link_equals_after_paging_through_the_sdk(sb: Sandbox, ot: str) -> None:
    ids = [seed(sb.state, ot, {"hs_timestamp": "2026-01-01T00:00:00.000Z"}) for _ in range(3)]
    companies, _ = _portal(sb)
    if ot == "calls":
        for call, company in zip(ids, companies, strict=False):
            link(sb.state, "calls", call, "companies", company)
        ids += [seed(sb.state, "calls", {"hs_call_title": f"c{i}"}) for i in range(11)]
    else:
        ids = ids + companies
        for extra in ids[:3]:
            link(sb.state, "companies", extra, "contacts", ids[3])
    props = ["name", "city"] if ot == "companies" else ["hs_call_title", "hs_timestamp"]
    query = f"limit=4&properties={props[0]}&properties={props[1]}&associations=contacts"
    query += "&associations=companies&archived=false"
    pages = _follow(sb, f"{sb.info.hubspot_url}/crm/v3/objects/{ot}?{query}")

    client = sandbox_client(sb.info)
    api = (
        client.crm.companies.basic_api if ot == "companies" else client.crm.objects.calls.basic_api
    )
    sdk_pages, after = [], None
    while True:
        page = api.get_page(
            limit=4, after=after, properties=props, associations=["contacts", "companies"]
        )
        sdk_pages.append(page)
        if page.paging is None:
            break
        after = page.paging.next.after

    assert [len(p["results"]) for p in pages] == [4, 4, 4, 2]
    assert [r["id"] for p in pages for r in p["results"]] == ids
    assert len(sdk_pages) == len(pages)
    for raw, typed in zip(pages, sdk_pages, strict=True):
        assert [r["id"] for r in raw["results"]] == [r.id for r in typed.results]
        for r, t in zip(raw["results"], typed.results, strict=True):
            assert set(props) <= set(r["properties"])  # not the default properties
            assert r["properties"] == t.properties
            got = {k: [a["id"] for a in v["results"]] for k, v in r.get("associations", {}).items()}
            want = {k: [a.id for a in v.results] for k, v in (t.associations or {}).items()}
            assert got == want
        if "paging" in raw:
            assert raw["paging"]["next"]["after"] == typed.paging.next.after
    assert any(r.get("associations") for p in pages for r in p["results"])
    first_link = pages[0]["paging"]["next"]["link"]
    parts = urlsplit(first_link)
    assert parts.path == f"/crm/v3/objects/{ot}"
    assert parse_qsl(parts.query) == [
        ("limit", "4"),
        ("properties", props[0]),
        ("properties", props[1]),
        ("associations", "contacts"),
        ("associations", "companies"),
        ("archived", "false"),
        ("after", pages[0]["paging"]["next"]["after"]),
    ]
    # a link followed from the second page replaces ``after``, never repeats it
    assert [k for k, _ in parse_qsl(urlsplit(pages[1]["paging"]["next"]["link"]).query)].count(
        "after"
    ) == 1


def test_owner_pages_keep_limit_and_archived_in_the_link(sb: Sandbox) -> None:
    owners = [seed_owner(sb.state, f"o{i}@x.io", "O", str(i), 100 + i) for i in range(7)]
    pages = _follow(sb, f"{sb.info.hubspot_url}/crm/v3/owners/?limit=3&archived=false")
    assert [len(p["results"]) for p in pages] == [3, 3, 1]
    assert [o["id"] for p in pages for o in p["results"]] == owners
    query = dict(parse_qsl(urlsplit(pages[0]["paging"]["next"]["link"]).query))
    assert query["limit"] == "3" and query["archived"] == "false"
    sdk = sandbox_client(sb.info).crm.owners.owners_api
    first = sdk.get_page(limit=3)
    second = sdk.get_page(limit=3, after=first.paging.next.after)
    assert [o.id for o in second.results] == [o["id"] for o in pages[1]["results"]]


def test_v4_association_pages_carry_a_link_with_the_limit(sb: Sandbox) -> None:
    company = seed(sb.state, "companies", {"name": "Acme"})
    contacts = [seed(sb.state, "contacts", {"email": f"p{i}@x.io"}) for i in range(5)]
    for contact in contacts:
        link(sb.state, "companies", company, "contacts", contact)
    base = f"{sb.info.hubspot_url}/crm/v4/objects/companies/{company}/associations/contacts"
    pages = _follow(sb, f"{base}?limit=2")
    assert [len(p["results"]) for p in pages] == [2, 2, 1]
    assert [str(r["toObjectId"]) for p in pages for r in p["results"]] == contacts
    api = sandbox_client(sb.info).crm.associations.v4.basic_api
    page = api.get_page("companies", company, "contacts", limit=2)
    assert page.paging.next.link == pages[0]["paging"]["next"]["link"]
