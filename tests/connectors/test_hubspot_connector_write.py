"""The HubSpot connector provisions the hub's ``crmhub_*`` company properties idempotently, writes
only those (allow-list) in batches judged per id (a 207 is not success: deleted companies are
skipped, invalid values fail alone, transient per-id failures are re-sent), converts hub values
by field kind, and reads the hub's values back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import (  # noqa: F401
    FakeClock,
    ago,
    calls,
    connector,
    drain,
    sandbox_fixture,
    seed,
)

from connectors.errors import MappingError
from connectors.hubspot.connector import HubSpotConnector
from connectors.records import FieldUpdate, HubFieldSpec, WriteResult
from sandbox.http import FaultRule
from sandbox.runner import Sandbox
from sandbox.state import HS

SPECS = (
    HubFieldSpec(
        "handover_status",
        "Handover status",
        "enum",
        options=("new_sales", "onboarding", "ready_for_handover", "account_management"),
    ),
    HubFieldSpec("health_score", "Health score", "number"),
    HubFieldSpec("ready_since", "Ready for handover since", "date"),
    HubFieldSpec("negotiation_flag", "In late-stage negotiation", "bool"),
    HubFieldSpec("last_sync", "Last changed by crmhub", "datetime"),
    HubFieldSpec("reasons", "Handover blockers", "text"),
)
UPDATE = "/crm/v3/objects/companies/batch/update"


def _connector(sb: Sandbox, clock: FakeClock | None = None, **kw: object) -> HubSpotConnector:
    return connector(sb, clock, hub_fields=SPECS, **kw)  # type: ignore[arg-type]


def _companies(sb: Sandbox, *ids: str) -> None:
    for rid in ids:
        seed(sb.state, "companies", {"name": f"c{rid}"}, rid=rid, created=ago(sb, 3600))


def _data(sb: Sandbox, rid: str) -> dict[str, str]:
    row = sb.state.get(HS, "companies", rid, include_deleted=True)
    assert row is not None
    return row["data"]


def test_ensure_fields_creates_the_group_and_missing_properties_once(sb: Sandbox) -> None:
    conn = _connector(sb)
    dry = conn.ensure_fields(SPECS, dry_run=True)
    assert [(r.crm_name, r.action) for r in dry] == [
        (f"crmhub_{s.key}", "would_create") for s in SPECS
    ]
    assert calls(sb, 0) == [("GET", "/crm/v3/properties/companies", 200)]

    head = sb.state.ledger_head()
    created = conn.ensure_fields(SPECS)
    assert [r.action for r in created] == ["created"] * len(SPECS)
    assert calls(sb, head) == [
        ("GET", "/crm/v3/properties/companies", 200),
        ("POST", "/crm/v3/properties/companies/groups", 201),
        *[("POST", "/crm/v3/properties/companies", 201)] * len(SPECS),
    ]
    props = conn.client.api("properties")
    kinds = {
        s.key: (p.type, p.field_type, p.group_name, sorted(o.value for o in p.options))
        for s in SPECS
        for p in [props.get_by_name("companies", f"crmhub_{s.key}")]
    }
    assert kinds == {
        "handover_status": (
            "enumeration",
            "select",
            "crmhub",
            sorted(SPECS[0].options),
        ),
        "health_score": ("number", "number", "crmhub", []),
        "ready_since": ("date", "date", "crmhub", []),
        "negotiation_flag": ("enumeration", "booleancheckbox", "crmhub", ["false", "true"]),
        "last_sync": ("datetime", "date", "crmhub", []),
        "reasons": ("string", "textarea", "crmhub", []),
    }
    group = conn.client.api("groups").get_by_name("companies", "crmhub")
    assert group.label == "crmhub (integration hub)"

    head = sb.state.ledger_head()
    again = _connector(sb).ensure_fields(SPECS)
    assert [r.action for r in again] == ["exists"] * len(SPECS)
    assert len(calls(sb, head)) == 1


def test_write_judges_every_id_of_a_207_and_resends_transient_failures(sb: Sandbox) -> None:
    _companies(sb, "1", "2", "3", "5", "6")
    sb.state.soft_delete(HS, "companies", "3")
    clock = FakeClock()
    conn = _connector(sb, clock)
    conn.ensure_fields(SPECS)
    sb.servers["hubspot"].faults.add(
        FaultRule(
            kind="partial",
            path="/batch/update$",
            nth=1,
            params={"ids": ["5"], "category": "RATE_LIMITS"},
        )
    )
    head = sb.state.ledger_head()
    results = conn.write(
        [
            FieldUpdate(
                "1",
                {
                    "handover_status": "onboarding",
                    "health_score": "72.50",
                    "ready_since": "2024-05-01",
                    "negotiation_flag": "True",
                    "last_sync": "2024-05-02T10:00:00+02:00",
                    "reasons": "2 open critical tickets; module Billing not in use",
                },
            ),
            FieldUpdate("2", {"health_score": None, "handover_status": "account_management"}),
            FieldUpdate("3", {"health_score": "10"}),  # archived meanwhile
            FieldUpdate("99999", {"health_score": "10"}),  # never existed
            FieldUpdate("5", {"negotiation_flag": "false"}),  # rate-limited once per id
            FieldUpdate("6", {"health_score": "lots"}),  # not a number: never sent
        ]
    )
    assert [(r.source_id, r.outcome, r.retryable) for r in results] == [
        ("1", "ok", False),
        ("2", "ok", False),
        ("3", "skipped", False),
        ("99999", "skipped", False),
        ("5", "ok", False),
        ("6", "failed", False),
    ]
    assert "not a number" in (results[5].reason or "")
    assert calls(sb, head) == [("POST", UPDATE, 207), ("POST", UPDATE, 200)]
    assert clock.sleeps == [2.0]
    assert {k: v for k, v in _data(sb, "1").items() if k.startswith("crmhub_")} == {
        "crmhub_handover_status": "onboarding",
        "crmhub_health_score": "72.5",
        "crmhub_ready_since": "2024-05-01",
        "crmhub_negotiation_flag": "true",
        "crmhub_last_sync": "2024-05-02T08:00:00.000Z",
        "crmhub_reasons": "2 open critical tickets; module Billing not in use",
    }
    assert _data(sb, "2")["crmhub_health_score"] == ""  # None clears
    assert "crmhub_health_score" not in _data(sb, "3")  # never re-created or revived
    assert sb.state.get(HS, "companies", "99999", include_deleted=True) is None
    assert _data(sb, "5")["crmhub_negotiation_flag"] == "false"

    sb.servers["hubspot"].faults.add(
        FaultRule(
            kind="partial",
            path="/batch/update$",
            nth=1,
            params={"ids": ["2"], "category": "VALIDATION_ERROR"},
        )
    )
    results = conn.write(
        [FieldUpdate("1", {"health_score": "1"}), FieldUpdate("2", {"health_score": "2"})]
    )
    assert results[0] == WriteResult("1", "ok")
    assert (results[1].outcome, results[1].retryable) == ("failed", False)
    assert (results[1].reason or "").startswith("VALIDATION_ERROR: Could not update")


def test_whole_call_failures_are_retried_or_bisected_to_the_bad_record(sb: Sandbox) -> None:
    _companies(sb, "1", "2", "3", "4")
    clock = FakeClock()
    conn = _connector(sb, clock)
    conn.ensure_fields(SPECS)
    sb.servers["hubspot"].faults.add(
        FaultRule(kind="server_error", path="/batch/update$", nth=1, params={"status": 502})
    )
    head = sb.state.ledger_head()
    results = conn.write([FieldUpdate(i, {"health_score": i}) for i in ("1", "2", "3", "4")])
    assert {r.outcome for r in results} == {"ok"}
    # a 502 may follow an update HubSpot executed: read back, then send what did not land
    assert [(c[1].rsplit("/", 1)[-1], c[2]) for c in calls(sb, head)] == [
        ("update", 502),
        ("read", 200),
        ("update", 200),
    ]

    # A property whose HubSpot type differs from the hub's kind: HubSpot fails the whole batch
    # for the one bad value; the writer splits it until only that record fails.
    mistyped = connector(
        sb,
        clock,
        hub_fields=(HubFieldSpec("health_score", "Health score", "string"),),
    )
    head = sb.state.ledger_head()
    results = mistyped.write(
        [FieldUpdate(i, {"health_score": "high" if i == "3" else i}) for i in ("1", "2", "3", "4")]
    )
    assert [r.outcome for r in results] == ["ok", "ok", "failed", "ok"]
    assert "not a valid number" in (results[2].reason or "")
    # [1,2,3,4] 400 → [1,2] 200, [3,4] 400 → [3] 400, [4] 200
    assert [c[2] for c in calls(sb, head)] == [400, 200, 400, 400, 200]


def test_only_hub_owned_properties_can_ever_be_written(sb: Sandbox) -> None:
    with pytest.raises(MappingError, match="name, which is not a hub-owned field"):
        _connector(sb, hub_field_names={"handover_status": "name"})
    with pytest.raises(MappingError, match="website"):
        _connector(sb, hub_field_names={"health_score": "website"})
    conn = _connector(sb, hub_field_names={"health_score": "crmhub_health_v2"})
    with pytest.raises(MappingError, match="hub field website"):
        conn.write([FieldUpdate("1", {"health_score": "1"}), FieldUpdate("2", {"website": "x"})])
    assert calls(sb, 0) == []  # refused before any request
    _companies(sb, "1")
    with pytest.raises(MappingError, match="provisioning"):  # the property was never created
        conn.write([FieldUpdate("1", {"health_score": "1"})])


def test_hub_values_are_read_back_and_carried_on_company_records(sb: Sandbox) -> None:
    _companies(sb, "1", "2")
    conn = _connector(sb)
    records, _, _ = drain(conn.read("account", None))
    assert [r.hub_fields for r in records] == [{}, {}]  # type: ignore[union-attr]
    conn.ensure_fields(SPECS)
    conn.write([FieldUpdate("1", {"handover_status": "onboarding", "health_score": "40"})])
    head = sb.state.ledger_head()
    values = conn.read_hub_fields(["1", "2", "404"])
    assert values["1"]["handover_status"] == "onboarding"
    assert values["1"]["health_score"] == "40"
    assert values["2"] == {s.key: None for s in SPECS}
    assert set(values) == {"1", "2"}
    assert calls(sb, head) == [("POST", "/crm/v3/objects/companies/batch/read", 207)]
    sb.state.advance_clock(60)
    records, _, _ = drain(_connector(sb).read("account", None))
    by_id = {r.source_id: r for r in records}
    assert by_id["1"].hub_fields["handover_status"] == "onboarding"  # type: ignore[union-attr]
    assert by_id["2"].hub_fields["health_score"] is None  # type: ignore[union-attr]


def test_a_batch_answered_after_the_timeout_is_confirmed_by_read_back_not_written_twice(
    sb: Sandbox,
) -> None:
    """HubSpot executes a batch update but the answer never arrives (the client's timeout, a
    dropped connection): the writer reads the companies back and confirms the ones that hold the
    new values instead of sending the same batch again (a 502 whose update did not run is read
    back and re-sent: see the test above)."""
    _companies(sb, "1", "2", "3")
    clock = FakeClock()
    conn = _connector(sb, clock)
    conn.ensure_fields(SPECS)
    sb.servers["hubspot"].faults.add(
        FaultRule(kind="lost_answer", path="/batch/update$", nth=1, times=1)
    )
    head = sb.state.ledger_head()
    updates = [FieldUpdate(i, {"health_score": int(i) * 10}) for i in ("1", "2", "3")]
    results = conn.write(updates)
    assert [(r.source_id, r.outcome) for r in results] == [("1", "ok"), ("2", "ok"), ("3", "ok")]
    assert all("read" in (r.reason or "") for r in results)
    ledger = sb.state.ledger(since=head, crm=HS)
    updates_sent = [r for r in ledger if r["path"].split("?")[0].endswith("/batch/update")]
    assert len(updates_sent) == 1 and updates_sent[0]["note"] == "answer lost"
    assert [r["path"].split("?")[0].rsplit("/", 1)[-1] for r in ledger] == ["update", "read"]
    assert [_data(sb, i)["crmhub_health_score"] for i in ("1", "2", "3")] == ["10", "20", "30"]


CONTACT_SPECS = (
    HubFieldSpec("marketing_suppressed", "Suppress marketing (crmhub)", "bool"),
    HubFieldSpec("suppression_reason", "Marketing suppression reason (crmhub)", "text"),
)


def test_contacts_get_their_own_properties_and_batches_judged_per_id(sb: Sandbox) -> None:
    conn = _connector(sb, contact_hub_fields=CONTACT_SPECS)
    target = conn.contacts
    head = sb.state.ledger_head()
    created = target.ensure_fields(CONTACT_SPECS)
    assert [(r.crm_name, r.action) for r in created] == [
        ("crmhub_marketing_suppressed", "created"),
        ("crmhub_suppression_reason", "created"),
    ]
    # provisioned on contacts, in the hub's group there (HubSpot keeps groups per object)
    assert calls(sb, head) == [
        ("GET", "/crm/v3/properties/contacts", 200),
        ("POST", "/crm/v3/properties/contacts/groups", 201),
        *[("POST", "/crm/v3/properties/contacts", 201)] * 2,
    ]
    for rid in ("801", "802"):
        seed(sb.state, "contacts", {"email": f"c{rid}@x.example"}, rid=rid, created=ago(sb, 3600))
    reason = "open deal 'Renewal' in stage Negotiation/Review, seller Ann Smith, since 2026-11-03"
    head = sb.state.ledger_head()
    results = target.write(
        [
            FieldUpdate("801", {"marketing_suppressed": "true", "suppression_reason": reason}),
            FieldUpdate("802", {"marketing_suppressed": None, "suppression_reason": None}),
            FieldUpdate("999", {"marketing_suppressed": "true"}),  # deleted meanwhile
        ]
    )
    assert [(r.source_id, r.outcome) for r in results] == [
        ("801", "ok"),
        ("802", "ok"),
        ("999", "skipped"),
    ]
    assert results[2].reason == "the contact no longer exists in HubSpot (deleted or merged)"
    assert calls(sb, head) == [("POST", "/crm/v3/objects/contacts/batch/update", 207)]
    assert target.read_hub_fields(["801", "802", "999"]) == {
        "801": {"marketing_suppressed": "true", "suppression_reason": reason},
        "802": {"marketing_suppressed": None, "suppression_reason": None},
    }
    # the contact writer takes only its own keys: a company field is refused before any call
    head = sb.state.ledger_head()
    with pytest.raises(MappingError, match="HubSpot contact 801 names hub field health_score"):
        target.write([FieldUpdate("801", {"health_score": "3"})])
    assert calls(sb, head) == []
