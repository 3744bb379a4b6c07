"""``mutate`` simulates CRM users: it edits exactly the requested share of each object's records with
changes that keep each CRM's derived fields consistent, creates and soft-deletes the requested
number of records with resolvable references, bumps ``modified`` to the sandbox clock on every
change, and does the same thing again for the same seed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.catalog import (
    HS_DEAL_STAGES,
    SF_OPPORTUNITY_STAGES,
    hs_lastmodified_property,
    hs_properties,
    sf_fields,
)
from sandbox.generator import generate
from sandbox.mutate import DEFAULT_OBJECTS, MUTABLE_OBJECTS, mutate
from sandbox.runner import Sandbox
from sandbox.state import HS, SF, SandboxState, fmt_ts, parse_ts

NOW = dt.datetime(2026, 6, 15, 10, 30, tzinfo=dt.UTC)
SF_SYSTEM = {"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"}


def seeded(directory: Path) -> tuple[SandboxState, str]:
    """A tiny data set with the clock pinned, then one hour later: returns (state, that moment)."""
    state = SandboxState(directory / "sandbox.db")
    state.set_clock(NOW)
    generate(state, "tiny", 42)
    state.advance_clock(3600)
    return state, fmt_ts(state.now())


def snapshot(state: SandboxState) -> dict[tuple[str, str, str], dict[str, Any]]:
    rows = state.execute("SELECT * FROM records")
    return {
        (r["crm"], r["object"], r["id"]): {
            "created": r["created"],
            "modified": r["modified"],
            "deleted": r["deleted"],
            "deleted_at": r["deleted_at"],
            "data": json.loads(r["data"]),
        }
        for r in rows
    }


@pytest.fixture
def state(tmp_path: Path) -> tuple[SandboxState, str]:
    return seeded(tmp_path)


def test_edits_exactly_the_requested_share_and_bumps_modified(
    state: tuple[SandboxState, str],
) -> None:
    st, t0 = state
    before = snapshot(st)
    editable = {
        obj: sum(
            1
            for (crm, o, _), r in before.items()
            if o == obj and not r["deleted"] and not (obj == "Lead" and r["data"]["IsConverted"])
        )
        for obj in DEFAULT_OBJECTS
    }
    result = mutate(st, seed=4, share=0.25, creates=0, deletes=0)
    after = snapshot(st)
    assert set(after) - set(before) == {k for k in after if k[1] == "OpportunityHistory"} - set(
        before
    )
    total = 0
    for obj in DEFAULT_OBJECTS:
        crm = MUTABLE_OBJECTS[obj]
        changed = [
            k for k in before if k[1] == obj and after[k]["modified"] != before[k]["modified"]
        ]
        expected = max(1, round(0.25 * editable[obj]))
        assert len(changed) == expected == result[f"{crm}/{obj}/updated"], obj
        for key in changed:
            assert after[key]["modified"] >= t0
            assert after[key]["data"] != before[key]["data"], key  # something really changed
            assert after[key]["created"] == before[key]["created"]
        total += expected
    assert result["updated"] == total and result["created"] == result["deleted"] == 0


def test_changes_keep_each_crms_derived_fields_consistent(state: tuple[SandboxState, str]) -> None:
    st, t0 = state
    before = snapshot(st)
    objects = ["Opportunity", "deals", "Case", "tickets", "Account", "companies", "contacts"]
    result = mutate(st, seed=9, share=1.0, objects=objects, creates=0, deletes=0)
    after = snapshot(st)
    stages = {s[0]: s for s in SF_OPPORTUNITY_STAGES}
    history: dict[str, list[dict[str, Any]]] = {}
    for (_, obj, _), r in sorted(after.items(), key=lambda kv: kv[1]["created"]):
        if obj == "OpportunityHistory":
            history.setdefault(r["data"]["OpportunityId"], []).append(r)
    moved = 0
    for key, r in after.items():
        d = r["data"]
        if key[1] == "Opportunity":
            _, prob, closed, won = stages[d["StageName"]]
            assert (d["Probability"], d["IsClosed"], d["IsWon"]) == (prob, closed, won)
            assert history[key[2]][-1]["data"]["StageName"] == d["StageName"]
            if d["StageName"] != before[key]["data"]["StageName"]:
                moved += 1
                assert parse_ts(d["LastStageChangeDate"]) == parse_ts(r["modified"])
                assert history[key[2]][-1]["created"] == r["modified"]
        if key[1] == "deals":
            stage = next(s for s in HS_DEAL_STAGES if s[0] == d["dealstage"])
            assert (d["hs_is_closed"], d["hs_is_closed_won"]) == (
                str(stage[3]).lower(),
                str(stage[4]).lower(),
            )
            assert d[f"hs_v2_date_entered_{d['dealstage']}"] is not None
        if key[1] == "Case":
            assert d["IsClosed"] == (d["Status"] == "Closed") == (d["ClosedDate"] is not None)
        if key[1] == "tickets":
            assert (d["hs_pipeline_stage"] == "4") == (d["closed_date"] is not None)
        if key[1] == "Account" and d["BillingAddress"] is not None:
            assert d["BillingAddress"]["street"] == d["BillingStreet"]
        if key[1] == "Account":
            in_use = set((d["Modules_In_Use__c"] or "").split(";")) - {""}
            assert in_use <= set((d["Contracted_Modules__c"] or "").split(";"))
            assert d["LastModifiedById"] == d["OwnerId"]
    assert moved == result.get("salesforce/OpportunityHistory/created", 0) > 0
    sends = [
        r
        for k, r in after.items()
        if k[1] == "contacts"
        and r["data"]["hs_email_last_send_date"]
        and parse_ts(r["data"]["hs_email_last_send_date"]) >= parse_ts(t0)
    ]
    assert sends  # marketing emails went out


def live_references_resolve(state: SandboxState) -> None:
    """Live records reference live records; a converted lead's account may be in the bin."""
    rows = state.execute("SELECT object, id, deleted, data FROM records WHERE crm=?", (SF,))
    live = {r["id"]: r["object"] for r in rows if not r["deleted"]}
    anywhere = {r["id"]: r["object"] for r in rows}
    for r in rows:
        if r["deleted"]:
            continue
        data = json.loads(r["data"])
        for f in sf_fields(r["object"]):
            value = data.get(f.name)
            if f.type == "reference" and value is not None:
                known = anywhere if f.name == "ConvertedAccountId" else live
                assert known.get(value) in f.reference_to, (r["object"], r["id"], f.name)
    hs = {
        r["id"]: r["object"]
        for r in state.execute("SELECT object, id FROM records WHERE crm=?", (HS,))
    }
    for a in state.execute("SELECT * FROM assoc"):
        assert hs.get(a["from_id"]) == a["from_object"] and hs.get(a["to_id"]) == a["to_object"]


def test_creates_and_soft_deletes_the_requested_numbers(state: tuple[SandboxState, str]) -> None:
    st, t0 = state
    before = snapshot(st)
    result = mutate(st, seed=2, share=0.0, creates=14, deletes=5)
    after = snapshot(st)
    assert (result["updated"], result["created"], result["deleted"]) == (0, 14, 5)
    new = {k: r for k, r in after.items() if k not in before}
    main_new = [k for k in new if k[1] != "OpportunityHistory"]
    assert len(main_new) == 14
    for (crm, obj, _), r in new.items():
        assert r["created"] == r["modified"] >= t0 and not r["deleted"]
        if crm == SF:
            assert set(r["data"]) == {f.name for f in sf_fields(obj)} - SF_SYSTEM
        else:
            row_props = {"hs_object_id", "createdate", hs_lastmodified_property(obj)}
            assert set(r["data"]) == {p.name for p in hs_properties(obj)} - row_props
            assert all(v is None or isinstance(v, str) for v in r["data"].values())
    for crm, obj, rid in main_new:
        if crm == HS and obj in ("deals", "tickets"):
            assert st.associations(obj, rid, "companies"), (obj, rid)
    deleted = [k for k in before if after[k]["deleted"] and not before[k]["deleted"]]
    assert len(deleted) >= 5
    for key in deleted:
        assert after[key]["deleted_at"] == after[key]["modified"] >= t0
        assert after[key]["data"] == before[key]["data"]
    live_references_resolve(st)


def test_deleting_an_account_takes_its_children_with_it(state: tuple[SandboxState, str]) -> None:
    st, _ = state
    result = mutate(st, seed=1, share=0.0, objects=["Account"], creates=0, deletes=1)
    assert result["salesforce/Account/deleted"] == 1
    assert result.get("salesforce/Contact/deleted", 0) >= 1
    live_references_resolve(st)


def changes_of(state: SandboxState, since: str) -> dict[tuple[str, str, str], Any]:
    """What a mutation did, with its own timestamps masked (they are the clock's now)."""
    out = {}

    def mask(v: Any) -> Any:
        is_now = isinstance(v, str) and len(v) > 20 and v.replace("+0000", "Z") >= since
        return "<now>" if is_now else v

    for r in state.execute("SELECT * FROM records WHERE modified >= ?", (since,)):
        data = {k: mask(v) for k, v in json.loads(r["data"]).items()}
        out[(r["crm"], r["object"], r["id"])] = (r["deleted"], data)
    return out


def test_same_seed_same_changes_other_seed_other_changes(tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        st, t0 = seeded(tmp_path / name)
        result = mutate(st, seed=seed, share=0.2)
        runs.append((result, changes_of(st, t0)))
        st.close()
    assert runs[0] == runs[1]
    assert runs[0][1].keys() != runs[2][1].keys()


def test_rejects_unknown_objects_and_bad_shares(state: tuple[SandboxState, str]) -> None:
    st, _ = state
    with pytest.raises(ValueError, match="Invoice"):
        mutate(st, objects=["Invoice"])
    with pytest.raises(ValueError):
        mutate(st, share=1.5)


def test_mutate_through_the_control_endpoint(tmp_path: Path) -> None:
    with Sandbox(tmp_path) as sandbox:
        sandbox.state.set_clock(NOW)
        sandbox.seed("tiny", 42)
        contacts = sandbox.state.count(HS, "contacts")
        session = requests.Session()
        session.verify = sandbox.info.ca_bundle
        session.trust_env = False
        body = {"seed": 3, "share": 0.1, "objects": ["contacts"], "creates": 2, "deletes": 1}
        resp = session.post(f"{sandbox.info.hubspot_url}/__sandbox/mutate", json=body, timeout=30)
        assert resp.status_code == 200
        changes = resp.json()["changes"]
        assert changes["hubspot/contacts/updated"] == round(0.1 * contacts)
        assert (changes["created"], changes["deleted"]) == (2, 1)
        assert sandbox.state.count(HS, "contacts") == contacts + 2 - 1
