"""The sandbox generator writes a deterministic data set that follows the catalogue and both CRMs' value
formats, whose references all resolve, whose truth table pairs the same real customers, and which
contains every lifecycle stage and the cross-CRM cases (negotiation touch, stale and unlogged deals,
name/domain traps) the hub's logic is built for."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.catalog import (
    HS_ASSOCIATION_TYPES,
    HS_DEAL_STAGES,
    SF_OBJECTS,
    SF_OPPORTUNITY_STAGES,
    hs_lastmodified_property,
    hs_properties,
    sf_fields,
)
from sandbox.formats import hs_new_id, sf_make_id, sf_new_id
from sandbox.generator import fast_sf_id, generate
from sandbox.runner import Sandbox
from sandbox.state import HS, SF, SandboxState, parse_ts

NOW = dt.datetime(2026, 6, 15, 10, 30, tzinfo=dt.UTC)
SF_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
HS_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
SF_SYSTEM = {"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"}
LATE_SF = {"Proposal/Price Quote", "Negotiation/Review"}


def make_state(
    directory: Path, seed: int = 42, profile: str = "tiny"
) -> tuple[SandboxState, dict[str, int]]:
    state = SandboxState(directory / "sandbox.db")
    state.set_clock(NOW)
    return state, generate(state, profile=profile, seed=seed)


def records(state: SandboxState, crm: str, obj: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT object, id, created, modified, deleted, data FROM records WHERE crm=?"
    params: list[Any] = [crm]
    if obj:
        sql += " AND object=?"
        params.append(obj)
    rows = state.execute(sql + " ORDER BY object, id", params)
    return [
        {
            "object": r["object"],
            "id": r["id"],
            "created": r["created"],
            "modified": r["modified"],
            "deleted": r["deleted"],
            "data": json.loads(r["data"]),
        }
        for r in rows
    ]


def dump(state: SandboxState) -> dict[str, Any]:
    return {
        "records": [
            tuple(r) for r in state.execute("SELECT * FROM records ORDER BY crm, object, id")
        ],
        "assoc": [tuple(r) for r in state.execute("SELECT * FROM assoc ORDER BY 1, 2, 3, 4, 5")],
        "truth": state.truth(),
        "counters": [
            tuple(r) for r in state.execute("SELECT * FROM meta WHERE key LIKE 'counter:%'")
        ],
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxState, dict[str, int]]]:
    state, counts = make_state(tmp_path_factory.mktemp("tiny"))
    yield state, counts
    state.close()


@pytest.fixture(scope="module")
def world(tiny: tuple[SandboxState, dict[str, int]]) -> dict[str, Any]:
    """The tiny data set indexed the way the assertions need it."""
    state, _ = tiny
    sf = records(state, SF)
    hs = records(state, HS)
    by_obj: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in sf:
        by_obj[(SF, r["object"])].append(r)
    for r in hs:
        by_obj[(HS, r["object"])].append(r)
    assoc: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for a in state.execute("SELECT from_object, from_id, to_object, to_id FROM assoc"):
        assoc[(a[0], a[1], a[2])].add(a[3])
    return {"state": state, "sf": sf, "hs": hs, "by_obj": by_obj, "assoc": assoc}


def host(website: str | None) -> str | None:
    if not website:
        return None
    h = website.strip().lower().split("://", 1)[-1].split("/", 1)[0]
    return h.removeprefix("www.")


# ---- determinism and volumes ----------------------------------------------------------------


def test_same_seed_same_data_other_seed_other_data(
    tmp_path: Path, tiny: tuple[SandboxState, dict[str, int]]
) -> None:
    again, _ = make_state(tmp_path / "again")
    other, _ = make_state(tmp_path / "other", seed=7)
    assert dump(again) == dump(tiny[0])
    names_42 = {r["data"]["Name"] for r in records(tiny[0], SF, "Account")}
    names_7 = {r["data"]["Name"] for r in records(other, SF, "Account")}
    assert names_42 != names_7
    assert dump(other)["records"] != dump(again)["records"]


def test_tiny_volumes_and_returned_counts(
    tmp_path: Path, tiny: tuple[SandboxState, dict[str, int]]
) -> None:
    state, counts = tiny
    for key, n in counts.items():
        if "/" in key:
            crm, obj = key.split("/")
            assert state.count(crm, obj) == n, key
    assert counts["truth"] == len(state.truth()) == 40
    assert counts["salesforce/Account"] == 30  # 45 % both + 30 % Salesforce only
    assert counts["hubspot/companies"] == 28  # 45 % both + 25 % HubSpot only
    expected = {f"salesforce/{o}" for o in SF_OBJECTS} | {
        f"hubspot/{o}" for o in ("companies", "contacts", "deals", "tickets", "emails", "owners")
    }
    assert expected <= {k for k, v in counts.items() if v > 0}
    total = sum(v for k, v in counts.items() if "/" in k)
    assert 400 <= total <= 2000
    fresh = SandboxState(tmp_path / "timed.db")
    fresh.set_clock(NOW)
    started = time.process_time()
    generate(fresh, "tiny", 1)
    assert time.process_time() - started < 2.0


def test_generate_resets_first_and_ids_continue_after_it(tmp_path: Path) -> None:
    state, _ = make_state(tmp_path)
    state.insert(SF, "Account", "001STALE", {"Name": "left over"})
    generate(state, "tiny", 42)
    assert state.get(SF, "Account", "001STALE") is None
    ids = {r[0] for r in state.execute("SELECT id FROM records")}
    for prefix in ("001", "003", "006", "00T", "500", "02s", "008", "00Q", "005"):
        assert sf_new_id(state, prefix) not in ids
    assert hs_new_id(state) not in ids
    numbers = [int(r["data"]["CaseNumber"]) for r in records(state, SF, "Case")]
    assert state.next_counter("sf:case_number") == max(numbers) + 1
    assert len(set(numbers)) == len(numbers)


def test_fast_ids_are_the_formats_ids() -> None:
    for n in [*range(100_000, 104_000), 62**5 - 1, 62**5, 62**6 + 17, 10**12]:
        assert fast_sf_id("006", n) == sf_make_id("006", n)


# ---- formats and catalogue -------------------------------------------------------------------


def check_sf_value(obj: str, f: Any, value: Any) -> None:
    where = f"{obj}.{f.name}={value!r}"
    if value is None:
        return
    if f.type == "datetime":
        assert isinstance(value, str) and SF_DATETIME.match(value), where
    elif f.type == "date":
        assert isinstance(value, str) and DATE.match(value), where
    elif f.type == "boolean":
        assert isinstance(value, bool), where
    elif f.type == "int":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif f.type in ("double", "currency", "percent"):
        assert isinstance(value, int | float) and not isinstance(value, bool), where
    elif f.type == "reference":
        assert isinstance(value, str) and len(value) == 18, where
    elif f.type == "address":
        assert isinstance(value, dict), where
    else:
        assert isinstance(value, str), where
    if f.type == "picklist" and f.picklist:
        assert value in f.picklist, where
    if f.type == "multipicklist":
        assert set(value.split(";")) <= set(f.picklist), where


def test_salesforce_records_hold_every_catalog_field_in_salesforce_form(
    world: dict[str, Any],
) -> None:
    for r in world["sf"]:
        fields = {f.name: f for f in sf_fields(r["object"])}
        assert set(r["data"]) == set(fields) - SF_SYSTEM, r["object"]
        for name, value in r["data"].items():
            check_sf_value(r["object"], fields[name], value)


def test_salesforce_derived_fields_are_consistent(world: dict[str, Any]) -> None:
    stages = {s[0]: s for s in SF_OPPORTUNITY_STAGES}
    sf_by_id = {r["id"]: r for r in world["sf"]}
    for r in world["sf"]:
        d = r["data"]
        if r["object"] in ("Contact", "Lead", "User"):
            assert d["Name"] == f"{d['FirstName']} {d['LastName']}"
        if r["object"] == "Opportunity":
            _, prob, closed, won = stages[d["StageName"]]
            assert (d["Probability"], d["IsClosed"], d["IsWon"]) == (prob, closed, won)
            assert d["LastStageChangeDate"] is not None
        if r["object"] == "Case":
            assert d["IsClosed"] == (d["Status"] == "Closed")
            assert (d["ClosedDate"] is not None) == d["IsClosed"]
            assert re.fullmatch(r"\d{8}", d["CaseNumber"])
        if r["object"] == "Task":
            what = sf_by_id[d["WhatId"]]
            expected = what["id"] if what["object"] == "Account" else what["data"]["AccountId"]
            assert d["AccountId"] == expected
        if r["object"] == "Account" and d["BillingAddress"] is not None:
            assert d["BillingAddress"]["city"] == d["BillingCity"]
            assert d["BillingAddress"]["street"] == d["BillingStreet"]
        if "CreatedById" in d and r["object"] != "User":
            assert sf_by_id[d["CreatedById"]]["object"] == "User"


def test_opportunity_history_has_one_row_per_stage_entered(world: dict[str, Any]) -> None:
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for h in world["by_obj"][(SF, "OpportunityHistory")]:
        history[h["data"]["OpportunityId"]].append(h)
    for opp in world["by_obj"][(SF, "Opportunity")]:
        rows = sorted(history[opp["id"]], key=lambda h: h["created"])
        assert rows, opp["id"]
        assert rows[0]["created"] == opp["created"]
        assert rows[-1]["data"]["StageName"] == opp["data"]["StageName"]
        assert parse_ts(rows[-1]["created"]) == parse_ts(opp["data"]["LastStageChangeDate"])
        order = [s[0] for s in SF_OPPORTUNITY_STAGES]
        entered = [order.index(h["data"]["StageName"]) for h in rows]
        assert entered == sorted(entered)
    assert len(history) == len(world["by_obj"][(SF, "Opportunity")])


def check_hs_value(obj: str, p: Any, value: Any) -> None:
    where = f"{obj}.{p.name}={value!r}"
    if value is None:
        return
    assert isinstance(value, str), where
    if p.type == "datetime":
        assert HS_DATETIME.match(value), where
    elif p.type == "date":
        assert DATE.match(value), where
    elif p.type == "number":
        float(value)
    elif p.type == "bool":
        assert value in ("true", "false"), where
    elif p.type == "enumeration" and p.options:
        assert set(value.split(";")) <= set(p.options), where


def test_hubspot_records_hold_catalog_properties_as_strings(world: dict[str, Any]) -> None:
    for r in world["hs"]:
        if r["object"] == "owners":
            assert {"email", "firstName", "lastName", "userId"} <= set(r["data"])
            continue
        props = {p.name: p for p in hs_properties(r["object"])}
        row_props = {"hs_object_id", "createdate", hs_lastmodified_property(r["object"])}
        assert set(r["data"]) == set(props) - row_props, r["object"]
        for name, value in r["data"].items():
            check_hs_value(r["object"], props[name], value)
    for deal in world["by_obj"][(HS, "deals")]:
        d = deal["data"]
        stage = next(s for s in HS_DEAL_STAGES if s[0] == d["dealstage"])
        assert (d["hs_is_closed"], d["hs_is_closed_won"]) == (
            str(stage[3]).lower(),
            str(stage[4]).lower(),
        )
        assert d[f"hs_v2_date_entered_{d['dealstage']}"] is not None


def test_timestamps_are_in_the_past_and_span_about_three_years(world: dict[str, Any]) -> None:
    oldest = NOW
    for r in world["sf"] + world["hs"]:
        created, modified = parse_ts(r["created"]), parse_ts(r["modified"])
        assert created <= modified <= NOW, (r["object"], r["id"])
        assert r["created"].endswith("Z") and not r["deleted"]
        oldest = min(oldest, created)
    assert dt.timedelta(days=700) < NOW - oldest < dt.timedelta(days=1300)


# ---- references ------------------------------------------------------------------------------


def test_every_salesforce_reference_points_to_a_live_record_of_the_right_object(
    world: dict[str, Any],
) -> None:
    objects = {r["id"]: r["object"] for r in world["sf"]}
    checked = 0
    for r in world["sf"]:
        for f in sf_fields(r["object"]):
            value = r["data"].get(f.name)
            if f.type == "reference" and value is not None:
                assert objects.get(value) in f.reference_to, (r["object"], f.name, value)
                checked += 1
    assert checked > 1000


def test_every_hubspot_association_and_owner_resolves(world: dict[str, Any]) -> None:
    state: SandboxState = world["state"]
    objects = {r["id"]: r["object"] for r in world["hs"]}
    rows = state.execute("SELECT * FROM assoc")
    pairs = {
        (r["from_object"], r["from_id"], r["to_object"], r["to_id"], r["type_id"]) for r in rows
    }
    assert rows
    for a in rows:
        key = (a["from_object"], a["to_object"])
        assert objects.get(a["from_id"]) == a["from_object"]
        assert objects.get(a["to_id"]) == a["to_object"]
        assert a["type_id"] in HS_ASSOCIATION_TYPES[key]
        plain, primary = HS_ASSOCIATION_TYPES[key]
        back_plain, back_primary = HS_ASSOCIATION_TYPES[(a["to_object"], a["from_object"])]
        back = back_plain if a["type_id"] == plain else back_primary
        assert (a["to_object"], a["to_id"], a["from_object"], a["from_id"], back) in pairs
        if a["type_id"] == primary:
            assert a["label"] == "Primary"
    owners = {r["id"] for r in world["by_obj"][(HS, "owners")]}
    for r in world["hs"]:
        owner = r["data"].get("hubspot_owner_id")
        assert owner is None or owner in owners
    # every contact, deal and ticket of a customer has a primary company
    for obj, type_id in (("contacts", 1), ("deals", 5), ("tickets", 26)):
        primaries = {p[1] for p in pairs if p[0] == obj and p[4] == type_id}
        with_company = {p[1] for p in pairs if p[0] == obj and p[2] == "companies"}
        assert with_company and primaries == with_company, obj


# ---- owners ----------------------------------------------------------------------------------


def test_sellers_and_account_managers_exist_in_both_crms(world: dict[str, Any]) -> None:
    users = [u["data"] for u in world["by_obj"][(SF, "User")]]
    owners = [o["data"] for o in world["by_obj"][(HS, "owners")]]
    assert {u["Department"] for u in users} >= {"Sales", "Account Management"}
    assert {o["teams"][0]["name"] for o in owners} == {"Sales", "Account Management"}
    sf_emails = {u["Email"] for u in users}
    assert sum(o["email"] in sf_emails for o in owners) >= len(owners) - 1


# ---- truth and identity ----------------------------------------------------------------------


def test_truth_pairs_exist_cover_every_account_and_are_the_same_customer(
    world: dict[str, Any],
) -> None:
    truth = world["state"].truth()
    accounts = {r["id"]: r["data"] for r in world["by_obj"][(SF, "Account")]}
    companies = {r["id"]: r["data"] for r in world["by_obj"][(HS, "companies")]}
    assert {t["sf_account_id"] for t in truth} - {None} == set(accounts)
    assert {t["hs_company_id"] for t in truth} - {None} == set(companies)
    kinds = [(t["sf_account_id"] is not None, t["hs_company_id"] is not None) for t in truth]
    assert (kinds.count((True, True)), kinds.count((True, False)), kinds.count((False, True))) == (
        18,
        12,
        10,
    )
    sf_emails = defaultdict(set)
    for c in world["by_obj"][(SF, "Contact")]:
        sf_emails[c["data"]["AccountId"]].add(c["data"]["Email"].lower())
    hs_emails = defaultdict(set)
    contacts = {c["id"]: c["data"] for c in world["by_obj"][(HS, "contacts")]}
    for cid, data in contacts.items():
        for company in world["assoc"][("contacts", cid, "companies")]:
            hs_emails[company].add(data["email"])
    cross_sf = cross_hs = renamed = 0
    for t in truth:
        sf_id, hs_id = t["sf_account_id"], t["hs_company_id"]
        if hs_id and companies[hs_id]["salesforceaccountid"] is not None:
            assert companies[hs_id]["salesforceaccountid"] == sf_id
            cross_hs += 1
        if sf_id and accounts[sf_id]["HubSpot_Company_Id__c"] is not None:
            assert accounts[sf_id]["HubSpot_Company_Id__c"] == hs_id
            cross_sf += 1
        if sf_id and hs_id:
            assert sf_emails[sf_id] & hs_emails[hs_id], t  # the same people work there
            web, dom = host(accounts[sf_id]["Website"]), host(companies[hs_id]["domain"])
            if web and dom:
                assert web == dom, t
            renamed += accounts[sf_id]["Name"] != companies[hs_id]["name"]
    # cross-CRM ids on only some records; names typed differently for several customers
    assert 0 < cross_hs < 18 and 0 < cross_sf < 18
    assert renamed >= 5


def test_false_match_traps_namesakes_and_shared_group_domains(world: dict[str, Any]) -> None:
    hosts: dict[str, set[str]] = defaultdict(set)
    for t in world["state"].truth():
        for crm, obj, rid, prop in (
            (SF, "Account", t["sf_account_id"], "Website"),
            (HS, "companies", t["hs_company_id"], "domain"),
            (HS, "companies", t["hs_company_id"], "website"),
        ):
            if rid:
                data = next(r["data"] for r in world["by_obj"][(crm, obj)] if r["id"] == rid)
                h = host(data[prop])
                if h:
                    hosts[t["customer_key"]].add(h)
    shared = [a for a in hosts for b in hosts if a < b and hosts[a] & hosts[b]]
    labels: dict[str, set[str]] = defaultdict(set)
    for key, hs in hosts.items():
        for h in hs:
            labels[h.split(".")[0]].add(key)
    namesakes = [lbl for lbl, keys in labels.items() if len(keys) > 1]
    assert shared, "a subsidiary should share its group's domain"
    assert namesakes, "two customers should carry the same name in different countries"


def test_websites_and_domains_are_typed_in_many_ways(world: dict[str, Any]) -> None:
    sites = [r["data"]["Website"] for r in world["by_obj"][(SF, "Account")] if r["data"]["Website"]]
    assert any(s.startswith("https://www.") for s in sites)
    assert any("://" not in s for s in sites)
    domains = [r["data"]["domain"] for r in world["by_obj"][(HS, "companies")]]
    assert all(d is None or "://" not in d for d in domains)
    emails = [c["data"]["Email"] for c in world["by_obj"][(SF, "Contact")]]
    free = [
        e
        for e in emails
        if e.lower().split("@")[1]
        in (
            "gmail.com",
            "outlook.com",
            "yahoo.com",
            "hotmail.com",
            "gmx.de",
            "web.de",
            "t-online.de",
            "icloud.com",
            "yahoo.co.uk",
            "orange.fr",
            "gmx.at",
            "bluewin.ch",
            "live.se",
            "hotmail.co.uk",
        )
    ]
    assert 0.05 < len(free) / len(emails) < 0.3
    hs_emails = [c["data"]["email"] for c in world["by_obj"][(HS, "contacts")]]
    assert len(hs_emails) == len(set(hs_emails))  # HubSpot's email is a unique property


# ---- business cases --------------------------------------------------------------------------


def customer_facts(world: dict[str, Any]) -> list[dict[str, Any]]:
    """Per true customer: deals, tickets, emails and the success fields, from both CRMs."""
    by_obj, assoc = world["by_obj"], world["assoc"]
    accounts = {r["id"]: r for r in by_obj[(SF, "Account")]}
    companies = {r["id"]: r for r in by_obj[(HS, "companies")]}
    opps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in by_obj[(SF, "Opportunity")]:
        opps[o["data"]["AccountId"]].append(o)
    cases: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in by_obj[(SF, "Case")]:
        cases[c["data"]["AccountId"]].append(c)
    sf_mail: dict[str, int] = defaultdict(int)
    opp_account = {o["id"]: o["data"]["AccountId"] for o in by_obj[(SF, "Opportunity")]}
    for e in by_obj[(SF, "EmailMessage")]:
        rel = e["data"]["RelatedToId"]
        sf_mail[opp_account.get(rel, rel)] += 1
    hs_objects = {r["id"]: r for r in world["hs"]}
    out = []
    for t in world["state"].truth():
        sf_id, hs_id = t["sf_account_id"], t["hs_company_id"]
        deals = list(opps.get(sf_id, [])) if sf_id else []
        tickets = list(cases.get(sf_id, [])) if sf_id else []
        emails = sf_mail.get(sf_id, 0) if sf_id else 0
        contacts = []
        if hs_id:
            deals += [hs_objects[i] for i in assoc[("companies", hs_id, "deals")]]
            tickets += [hs_objects[i] for i in assoc[("companies", hs_id, "tickets")]]
            emails += len(assoc[("companies", hs_id, "emails")])
            contacts = [hs_objects[i] for i in assoc[("companies", hs_id, "contacts")]]
        if sf_id:
            d = accounts[sf_id]["data"]
            done, contracted = d["Onboarding_Completed__c"], d["Contracted_Modules__c"]
            in_use, usage = d["Modules_In_Use__c"], d["Usage_Score__c"]
        else:
            d = companies[hs_id]["data"]
            done = (
                None if d["onboarding_completed"] is None else d["onboarding_completed"] == "true"
            )
            contracted, in_use = d["contracted_modules"], d["modules_in_use"]
            usage = None if d["usage_score"] is None else float(d["usage_score"])
        out.append(
            {
                "truth": t,
                "deals": deals,
                "tickets": tickets,
                "emails": emails,
                "hs_contacts": contacts,
                "done": done,
                "contracted": set((contracted or "").split(";")) - {""},
                "in_use": set((in_use or "").split(";")) - {""},
                "usage": usage,
            }
        )
    return out


def is_won(deal: dict[str, Any]) -> bool:
    return deal["data"].get("IsWon") is True or deal["data"].get("hs_is_closed_won") == "true"


def is_open(deal: dict[str, Any]) -> bool:
    return deal["data"].get("IsClosed") is False or deal["data"].get("hs_is_closed") == "false"


def severe_open(ticket: dict[str, Any]) -> bool:
    d = ticket["data"]
    if "Priority" in d:
        return not d["IsClosed"] and d["Priority"] in ("Critical", "High")
    return d["hs_pipeline_stage"] != "4" and d["hs_ticket_priority"] in ("URGENT", "HIGH")


def test_every_lifecycle_stage_is_present_in_the_data(world: dict[str, Any]) -> None:
    stages: dict[str, int] = defaultdict(int)
    for f in customer_facts(world):
        if not any(is_won(d) for d in f["deals"]):
            stages["prospect"] += 1
        elif not f["contracted"]:
            stages["unknown"] += 1
        elif f["done"] and (any(severe_open(t) for t in f["tickets"]) or f["usage"] < 50):
            stages["at_risk"] += 1
        elif f["done"] and f["contracted"] <= f["in_use"] and f["usage"] >= 60:
            stages["mature"] += 1
        else:
            stages["onboarding"] += 1
    assert stages["prospect"] == 14  # 35 % of 40
    assert stages["onboarding"] >= 1 and stages["mature"] >= 4 and stages["at_risk"] >= 1, stages


def test_marketing_touches_a_customer_in_late_stage_negotiation(world: dict[str, Any]) -> None:
    window = NOW - dt.timedelta(days=14)
    hits = []
    for f in customer_facts(world):
        late = [d for d in f["deals"] if d["data"].get("StageName") in LATE_SF and is_open(d)]
        touched = [
            c
            for c in f["hs_contacts"]
            if c["data"]["hs_email_last_send_date"]
            and parse_ts(c["data"]["hs_email_last_send_date"]) >= window
        ]
        if late and touched:
            hits.append(f["truth"]["customer_key"])
    assert len(hits) >= 2  # one per block of 20 customers


def test_stale_deals_and_customers_without_logged_emails_exist(world: dict[str, Any]) -> None:
    stale_before = NOW - dt.timedelta(days=60)
    facts = customer_facts(world)
    stale = [
        d
        for f in facts
        for d in f["deals"]
        if is_open(d) and parse_ts(d["modified"]) < stale_before
    ]
    unlogged = [f for f in facts if f["deals"] and not f["emails"]]
    assert stale and unlogged
    assert sum(1 for f in facts if f["emails"]) > 20


def test_email_threads_have_skewed_reply_times_and_some_go_unanswered(
    world: dict[str, Any],
) -> None:
    threads: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in world["by_obj"][(SF, "EmailMessage")]:
        threads[e["data"]["ThreadIdentifier"]].append(e["data"])
    delays, unanswered = [], 0
    for msgs in threads.values():
        msgs.sort(key=lambda m: m["MessageDate"])
        for a, b in itertools.pairwise(msgs):
            if a["Incoming"] and not b["Incoming"]:
                delays.append(parse_ts(b["MessageDate"]) - parse_ts(a["MessageDate"]))
        unanswered += msgs[-1]["Incoming"]
    assert min(delays) < dt.timedelta(hours=1) < dt.timedelta(days=1) < max(delays)
    assert unanswered >= 1
    directions = {e["data"]["hs_email_direction"] for e in world["by_obj"][(HS, "emails")]}
    assert directions == {"EMAIL", "INCOMING_EMAIL"}


def test_tickets_carry_severities_categories_handling_times_and_satisfaction(
    world: dict[str, Any],
) -> None:
    cases = [c["data"] for c in world["by_obj"][(SF, "Case")]]
    tickets = [t["data"] for t in world["by_obj"][(HS, "tickets")]]
    assert {c["Priority"] for c in cases} == {"Critical", "High", "Medium", "Low"}
    assert {"Defect", "User Error"} <= {c["Type"] for c in cases}
    assert {"USER_ERROR", "PRODUCT_ISSUE"} <= {t["hs_ticket_category"] for t in tickets}
    assert any(c["CSAT__c"] for c in cases) and any(t["hs_customer_satisfaction"] for t in tickets)
    assert any(not c["IsClosed"] for c in cases) and any(
        t["hs_pipeline_stage"] != "4" for t in tickets
    )
    calls = [t["data"] for t in world["by_obj"][(SF, "Task")] if t["data"]["TaskSubtype"] == "Call"]
    assert calls and all(c["CallDurationInSeconds"] > 0 for c in calls)
    leads = [r["data"] for r in world["by_obj"][(SF, "Lead")]]
    assert any(lead["IsConverted"] and lead["ConvertedAccountId"] for lead in leads)
    assert any(not lead["IsConverted"] for lead in leads)


# ---- through the control endpoint ------------------------------------------------------------


def test_seed_through_the_control_endpoint(tmp_path: Path) -> None:
    with Sandbox(tmp_path) as sandbox:
        info = sandbox.info
        session = requests.Session()
        session.verify = info.ca_bundle
        session.trust_env = False
        resp = session.post(
            f"{info.hubspot_url}/__sandbox/seed", json={"profile": "tiny", "seed": 3}, timeout=30
        )
        assert resp.status_code == 200
        stats = resp.json()["stats"]
        assert stats["truth"] == 40 and stats["salesforce/Account"] == 30
        pairs = session.get(f"{info.salesforce_url}/__sandbox/truth", timeout=10).json()["pairs"]
        assert len(pairs) == 40


def test_seeding_a_serving_sandbox_loads_without_its_indexes_and_puts_each_back(
    tmp_path: Path,
) -> None:
    """The emulators' own indexes on ``records`` (``sf_live``, the external-id and reference
    expression indexes) are dropped while the generator loads, like the state's, and come back
    with the same definition: kept during the load they made ``large`` seed 4x slower."""

    def indexes(state: SandboxState) -> dict[str, str]:
        rows = state.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
            " AND sql IS NOT NULL"
        )
        return {r[0]: r[1] for r in rows}

    with Sandbox(tmp_path) as sandbox:
        state = sandbox.state
        before = indexes(state)
        assert "sf_live" in before and any(n.startswith("sf_ext_") for n in before)
        during: list[set[str]] = []
        load = state.insert_many

        def watched(rows: Any) -> None:
            during.append(set(indexes(state)))
            load(rows)

        state.insert_many = watched  # type: ignore[method-assign]
        try:
            sandbox.seed("tiny", 5)
        finally:
            del state.insert_many
        assert during, "the generator loads through insert_many"
        # only what the load creates for its own lookups may be there, never the emulators'
        assert "sf_live" not in during[0] and "records_modified" not in during[0]
        assert indexes(state) == before
