"""The HubSpot emulator's search API behaves like HubSpot's for the real client: OR-of-AND filter
groups with every operator, numeric comparison of ``hs_object_id``, epoch-ms or ISO datetimes,
one sort in either form, a numeric ``after`` offset with ``total`` and no ``link``, the
10,000-result ceiling and filter-count limits as 400s, default properties only, archived records
left out, and an indexing lag on the sandbox clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hubspot
import pytest
import requests
from hubspot.crm.companies import PublicObjectSearchRequest

from sandbox.control import set_config
from sandbox.hubspot.client import API_EXCEPTIONS, sandbox_client
from sandbox.hubspot.testing import seed
from sandbox.runner import Sandbox
from sandbox.state import HS

T0 = dt.datetime(2024, 1, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path) as sandbox:
        # these tests search in quick succession; the per-second limit has its own test
        set_config(sandbox.state, HS, {"search_per_second": 1000})
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> hubspot.Client:
    return sandbox_client(sb.info)


@pytest.fixture
def companies(sb: Sandbox) -> dict[str, str]:
    """Five companies with chosen ids (9 and 10 tell numeric from text order) and times."""
    rows = {
        "9": ({"name": "Alpha Oy", "domain": "alpha.fi", "numberofemployees": "9"}, 0),
        "10": ({"name": "Beta AB", "domain": "beta.se", "numberofemployees": "120"}, 1),
        "11": ({"name": "Gamma GmbH", "industry": "Retail", "numberofemployees": "45"}, 2),
        "12": ({"name": "Delta Inc", "domain": "delta.com", "industry": "Finance"}, 3),
        "13": ({"name": "Epsilon", "domain": "eps.io", "numberofemployees": "1000"}, 4),
    }
    for rid, (props, day) in rows.items():
        seed(sb.state, "companies", props, rid=rid, created=T0 + dt.timedelta(days=day))
    seed(sb.state, "companies", {"name": "Archived Alpha"}, rid="14", archived=True, created=T0)
    return {rid: props["name"] for rid, (props, _) in rows.items()}


def ids(client: hubspot.Client, **kw: Any) -> list[str]:
    result = client.crm.companies.search_api.do_search(PublicObjectSearchRequest(**kw))
    return [r.id for r in result.results]


def one(prop: str, op: str, **kw: Any) -> list[dict[str, Any]]:
    return [{"filters": [{"propertyName": prop, "operator": op, **kw}]}]


def test_operators(client: hubspot.Client, companies: dict[str, str]) -> None:
    assert ids(client, filter_groups=one("domain", "EQ", value="BETA.se")) == ["10"]
    assert ids(client, filter_groups=one("industry", "NEQ", value="retail")) == [
        "9",
        "10",
        "12",
        "13",
    ]
    assert ids(client, filter_groups=one("numberofemployees", "GT", value="100")) == ["10", "13"]
    assert ids(client, filter_groups=one("numberofemployees", "LTE", value="45")) == ["9", "11"]
    assert ids(
        client, filter_groups=one("numberofemployees", "BETWEEN", value="10", highValue="200")
    ) == ["10", "11"]
    assert ids(client, filter_groups=one("domain", "IN", values=["alpha.fi", "eps.io"])) == [
        "9",
        "13",
    ]
    assert ids(client, filter_groups=one("domain", "NOT_IN", values=["alpha.fi", "eps.io"])) == [
        "10",
        "11",
        "12",
    ]
    assert ids(client, filter_groups=one("industry", "HAS_PROPERTY")) == ["11", "12"]
    assert ids(client, filter_groups=one("industry", "NOT_HAS_PROPERTY")) == ["9", "10", "13"]
    assert ids(client, filter_groups=one("name", "CONTAINS_TOKEN", value="gmbh")) == ["11"]
    assert ids(client, filter_groups=one("domain", "CONTAINS_TOKEN", value="*.se")) == ["10"]
    assert ids(client, filter_groups=one("name", "NOT_CONTAINS_TOKEN", value="a")) == ["13"]


def test_groups_are_ored_and_filters_anded(
    client: hubspot.Client, companies: dict[str, str]
) -> None:
    groups = [
        {
            "filters": [
                {"propertyName": "numberofemployees", "operator": "GTE", "value": "9"},
                {"propertyName": "numberofemployees", "operator": "LT", "value": "50"},
            ]
        },
        {"filters": [{"propertyName": "industry", "operator": "EQ", "value": "Finance"}]},
    ]
    assert ids(client, filter_groups=groups) == ["9", "11", "12"]


def test_object_id_compares_numerically_and_sorts_both_forms(
    client: hubspot.Client, companies: dict[str, str]
) -> None:
    assert ids(client, filter_groups=one("hs_object_id", "GT", value="9")) == [
        "10",
        "11",
        "12",
        "13",
    ]
    assert ids(client, sorts=["-hs_object_id"], limit=2) == ["13", "12"]
    descending = [{"propertyName": "numberofemployees", "direction": "DESCENDING"}]
    assert ids(client, sorts=descending, limit=3) == ["13", "10", "11"]


def test_datetime_filters_accept_epoch_ms_and_iso(
    client: hubspot.Client, companies: dict[str, str]
) -> None:
    since = T0 + dt.timedelta(days=2)
    epoch = str(int(since.timestamp() * 1000))
    assert ids(client, filter_groups=one("createdate", "GTE", value=epoch)) == ["11", "12", "13"]
    assert ids(
        client, filter_groups=one("hs_lastmodifieddate", "LT", value="2024-01-11T12:00Z")
    ) == ["9"]


def test_offset_paging_total_and_default_properties(
    client: hubspot.Client, companies: dict[str, str]
) -> None:
    api = client.crm.companies.search_api
    first = api.do_search(PublicObjectSearchRequest(limit=2, sorts=["hs_object_id"]))
    assert first.total == 5 and first.paging.next.after == "2"
    assert first.paging.next.link is None
    assert set(first.results[0].properties) == {
        "name",
        "domain",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }
    last = api.do_search(
        PublicObjectSearchRequest(limit=2, after="4", properties=["industry", "numberofemployees"])
    )
    assert [r.id for r in last.results] == ["13"] and last.paging is None
    assert last.results[0].properties["industry"] is None
    assert last.results[0].properties["numberofemployees"] == "1000"
    assert "name" not in last.results[0].properties


def test_ten_thousand_result_ceiling_and_limits_are_400(
    sb: Sandbox, client: hubspot.Client
) -> None:
    api = client.crm.companies.search_api
    with pytest.raises(API_EXCEPTIONS) as capped:
        api.do_search(PublicObjectSearchRequest(after="9950", limit=100))
    assert capped.value.status == 400 and "10000" in capped.value.body
    assert api.do_search(PublicObjectSearchRequest(after="9900", limit=100)).total == 0
    with pytest.raises(API_EXCEPTIONS) as big_page:
        api.do_search(PublicObjectSearchRequest(limit=201))
    assert big_page.value.status == 400
    filt = {"propertyName": "name", "operator": "HAS_PROPERTY"}
    too_many = [
        ([{"filters": [filt]}] * 6),  # groups
        ([{"filters": [filt] * 11}]),  # filters in one group
        ([{"filters": [filt] * 9}] * 3),  # filters in total
    ]
    for groups in too_many:
        with pytest.raises(API_EXCEPTIONS) as rejected:
            api.do_search(PublicObjectSearchRequest(filter_groups=groups))
        assert rejected.value.status == 400
    with pytest.raises(API_EXCEPTIONS) as two_sorts:
        api.do_search(PublicObjectSearchRequest(sorts=["name", "domain"]))
    assert two_sorts.value.status == 400
    with pytest.raises(API_EXCEPTIONS) as unknown:
        api.do_search(PublicObjectSearchRequest(filter_groups=one("nope", "EQ", value="x")))
    assert unknown.value.status == 400


def test_raw_search_has_no_link_and_accepts_query(sb: Sandbox, companies: dict[str, str]) -> None:
    session = requests.Session()
    session.verify = sb.info.ca_bundle
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {sb.info.hs_token}"
    url = f"{sb.info.hubspot_url}/crm/v3/objects/companies/search"
    body = session.post(url, json={"limit": 1}).json()
    assert body["paging"] == {"next": {"after": "1"}}
    found = session.post(url, json={"query": "delta"}).json()
    assert [r["id"] for r in found["results"]] == ["12"]


def test_index_lag_hides_fresh_writes_until_the_clock_moves(
    sb: Sandbox, client: hubspot.Client
) -> None:
    set_config(sb.state, HS, {"search_lag_seconds": 30})
    old = seed(
        sb.state, "companies", {"name": "Old"}, created=sb.state.now() - dt.timedelta(hours=1)
    )
    fresh = seed(sb.state, "companies", {"name": "Fresh"})
    assert ids(client) == [old]
    sb.state.advance_clock(31)
    assert ids(client) == [old, fresh]
