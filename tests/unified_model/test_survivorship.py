"""The golden record takes, per field, the preferred CRM's non-empty value where a priority is set,
else the most recently modified non-empty value; an empty value never wins, the address survives
as a coherent unit, every value names its source record, and invalid policies name the setting."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from unified_model.survivorship import PolicyError, SurvivorshipPolicy, is_empty, survive
from unified_model.tables import Owner, SourceAccount

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NEW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
SF = "salesforce"
HS = "hubspot"


def account(source: str, source_id: str, modified_at: dt.datetime, **kw: Any) -> SourceAccount:
    return SourceAccount(source=source, source_id=source_id, modified_at=modified_at, **kw)


RECENCY_ONLY = SurvivorshipPolicy(source_priority={}, groups={})


@pytest.mark.parametrize(
    ("sf_modified", "hs_modified", "winner"),
    [(NEW, OLD, f"{SF}:001"), (OLD, NEW, f"{HS}:101")],
)
def test_most_recently_modified_value_wins(
    sf_modified: dt.datetime, hs_modified: dt.datetime, winner: str
) -> None:
    accounts = [
        account(SF, "001", sf_modified, name="Acme Corp", phone="+1 555 0100"),
        account(HS, "101", hs_modified, name="ACME", phone="+1 555 0199"),
    ]
    golden = survive("HUB-1", accounts, {}, RECENCY_ONLY, NOW)
    by_source = {f"{a.source}:{a.source_id}": a for a in accounts}
    assert golden.name == by_source[winner].name
    assert golden.phone == by_source[winner].phone
    assert golden.field_sources["name"] == winner
    assert golden.field_sources["phone"] == winner


def test_source_priority_beats_recency_by_default() -> None:
    accounts = [
        account(SF, "001", OLD, street="1 Main St", city="Boston", country="US",
                annual_revenue=5e6, employees=120, industry="Manufacturing",
                website="https://acme-old.com"),
        account(HS, "101", NEW, street="9 Side St", city="Cambridge", country="US",
                annual_revenue=1e6, employees=80, industry="Robotics",
                website="https://www.acme.com/", domain="acme.com"),
    ]  # fmt: skip
    golden = survive("HUB-1", accounts, {}, SurvivorshipPolicy(), NOW)
    assert (golden.street, golden.city, golden.annual_revenue, golden.employees) == (
        "1 Main St",
        "Boston",
        5e6,
        120,
    )
    assert (golden.industry, golden.website, golden.domain) == (
        "Robotics",
        "https://www.acme.com/",
        "acme.com",
    )
    assert golden.field_sources["street"] == golden.field_sources["annual_revenue"] == f"{SF}:001"
    assert golden.field_sources["industry"] == golden.field_sources["domain"] == f"{HS}:101"


def test_preferred_source_without_a_value_falls_back_to_the_other() -> None:
    accounts = [
        account(SF, "001", NEW, annual_revenue=None, employees=None),
        account(HS, "101", OLD, annual_revenue=2.5e6, employees=40),
    ]
    golden = survive("HUB-1", accounts, {}, SurvivorshipPolicy(), NOW)
    assert (golden.annual_revenue, golden.employees) == (2.5e6, 40)
    assert golden.field_sources["annual_revenue"] == f"{HS}:101"


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_value_never_wins(empty: str | None) -> None:
    accounts = [
        account(SF, "001", OLD, name="Acme Corp", phone="+358 40 123"),
        account(HS, "101", NEW, name=empty, phone=empty),
    ]
    golden = survive("HUB-1", accounts, {}, RECENCY_ONLY, NOW)
    assert golden.name == "Acme Corp"
    assert golden.phone == "+358 40 123"
    assert golden.field_sources["name"] == f"{SF}:001"


def test_empty_list_never_wins_and_lists_come_whole_from_the_winner() -> None:
    accounts = [
        account(SF, "001", OLD, contracted_modules=["Billing", "CRM"], modules_in_use=["CRM"]),
        account(HS, "101", NEW, contracted_modules=[], modules_in_use=["Billing", "Billing"]),
    ]
    golden = survive("HUB-1", accounts, {}, SurvivorshipPolicy(), NOW)
    assert golden.contracted_modules == ["Billing", "CRM"]
    assert golden.modules_in_use == ["Billing"]  # the newer list, not the union
    assert golden.field_sources["modules_in_use"] == f"{HS}:101"


def test_address_survives_as_a_unit_and_is_never_mixed_with_a_contradicting_one() -> None:
    accounts = [
        account(SF, "001", OLD, street="1 Main St", city="Boston", postal_code=None, country=None),
        account(HS, "101", NEW, street=None, city="Berlin", postal_code="10115", country="DE"),
        account(HS, "102", OLD, city="boston", postal_code="02108", country="US"),
    ]
    golden = survive("HUB-1", accounts, {}, SurvivorshipPolicy(), NOW)
    assert (golden.street, golden.city, golden.postal_code, golden.country) == (
        "1 Main St",
        "Boston",
        "02108",
        "US",
    )
    assert golden.field_sources["street"] == golden.field_sources["city"] == f"{SF}:001"
    assert golden.field_sources["postal_code"] == f"{HS}:102"


def test_owner_survives_from_salesforce_and_inactive_owners_do_not_count() -> None:
    owners = {
        (SF, "005-gone"): Owner(source=SF, source_id="005-gone", email="left@acme-vendor.com",
                                first_name="Old", last_name="Seller", active=False),
        (SF, "005-am"): Owner(source=SF, source_id="005-am", email="Kim.AM@Vendor.com",
                              first_name="Kim", last_name="Virtanen"),
        (HS, "77"): Owner(source=HS, source_id="77", email="mark@vendor.com", first_name="Mark"),
    }  # fmt: skip
    accounts = [
        account(SF, "001", NEW, owner_id="005-gone"),
        account(SF, "002", OLD, owner_id="005-am"),
        account(HS, "101", NEW, owner_id="77"),
    ]
    golden = survive("HUB-1", accounts, owners, SurvivorshipPolicy(), NOW)
    assert (golden.owner_email, golden.owner_name) == ("kim.am@vendor.com", "Kim Virtanen")
    assert golden.field_sources["owner_email"] == f"{SF}:002"

    only_hs = survive("HUB-1", accounts[:1] + accounts[2:], owners, SurvivorshipPolicy(), NOW)
    assert only_hs.owner_email == "mark@vendor.com"
    nobody = survive("HUB-1", accounts[:1], owners, SurvivorshipPolicy(), NOW)
    assert nobody.owner_email is None and "owner_email" not in nobody.field_sources


def test_golden_record_bookkeeping() -> None:
    accounts = [
        account(SF, "001", OLD, name="Acme", created_at=OLD - dt.timedelta(days=30)),
        account(HS, "101", NEW, name="Acme", created_at=OLD, deleted=True),
    ]
    golden = survive("HUB-0000042", accounts, {}, None, NOW)
    assert golden.id == "HUB-0000042"
    assert golden.updated_at == NOW
    assert golden.created_at == OLD - dt.timedelta(days=30)
    assert set(golden.field_sources.values()) == {f"{SF}:001"}  # the deleted record gives nothing


def test_ties_are_deterministic() -> None:
    a = account(HS, "101", NEW, name="Acme from HubSpot")
    b = account(SF, "001", NEW, name="Acme from Salesforce")
    assert survive("H", [a, b], {}, RECENCY_ONLY, NOW).name == "Acme from Salesforce"
    assert survive("H", [b, a], {}, RECENCY_ONLY, NOW).name == "Acme from Salesforce"


def test_policy_from_dict_overrides_defaults() -> None:
    policy = SurvivorshipPolicy.from_dict(
        {"source_priority": {"industry": ["salesforce"], "name": ["hubspot", "salesforce"]}}
    )
    assert policy.priority_of("industry") == ("salesforce",)
    assert policy.priority_of("street") == ("salesforce",)  # default kept
    accounts = [
        account(SF, "001", NEW, name="Acme Corp", industry="Manufacturing"),
        account(HS, "101", OLD, name="ACME", industry="Robotics"),
    ]
    golden = survive("HUB-1", accounts, {}, policy, NOW)
    assert (golden.name, golden.industry) == ("ACME", "Manufacturing")
    assert SurvivorshipPolicy.from_dict(None) == SurvivorshipPolicy()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"source_priority": {"industy": ["hubspot"]}}, "source_priority.industy"),
        ({"source_priority": {"industry": ["hubspott"]}}, "source_priority.industry[0]"),
        ({"source_priority": {"industry": "hubspot"}}, "source_priority.industry"),
        (
            {"source_priority": {"industry": ["hubspot", "hubspot"]}},
            "source_priority.industry[1]",
        ),
        ({"source_priority": {"city": ["hubspot"]}}, "source_priority.city"),
        ({"groups": {"address": ["street", "sity"]}}, "groups.address[1]"),
        ({"groups": {"a": ["name"], "b": ["name"]}}, "groups.b[0]"),
        ({"owner_must_be_active": "yes"}, "owner_must_be_active"),
        ({"sources": {}}, "sources"),
    ],
)
def test_invalid_policy_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        SurvivorshipPolicy.from_dict(data)
    assert err.value.field == field
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("value", "empty"),
    [(None, True), ("", True), (" ", True), ([], True), ((), True), ({}, True),
     (0, False), (False, False), ("x", False), (["a"], False)],
)  # fmt: skip
def test_is_empty(value: Any, empty: bool) -> None:
    assert is_empty(value) is empty


def test_the_row_unify_writes_is_the_golden_records_dump() -> None:
    """Unify writes ``survive_row`` (no table model per customer): every column of the golden
    record, defaults included, equal to the model's dump, with a fresh list or dict per row."""
    from unified_model.survivorship import survive_row
    from unified_model.tables import Customer

    owners = {(SF, "005"): Owner(source=SF, source_id="005", email="Kim@Vendor.com")}
    accounts = [
        account(SF, "001", OLD, name="Acme", owner_id="005", contracted_modules=["crm", "crm"],
                created_at=OLD, city="Boston", country="US"),
        account(HS, "101", NEW, name="ACME", website="https://acme.com", usage_score=71.5),
    ]  # fmt: skip
    for accs in (accounts, accounts[1:], []):
        row = survive_row("HUB-7", accs, owners, SurvivorshipPolicy(), NOW)
        assert row == survive("HUB-7", accs, owners, SurvivorshipPolicy(), NOW).model_dump()
        assert list(row) == list(Customer.model_fields)
    empty = survive_row("HUB-8", [], {}, None, NOW)
    empty["modules_in_use"].append("x")
    empty["field_sources"]["name"] = "x"
    again = survive_row("HUB-9", [], {}, None, NOW)
    assert (again["modules_in_use"], again["field_sources"]) == ([], {})
