"""Handover dates from the CRMs' owner history, end to end through the sandbox (issue 15).

The hub first sees customers that were handed over before it went live. Where the CRM keeps the
owner's history (Salesforce ``AccountHistory`` on ``Owner``, HubSpot's versions of
``hubspot_owner_id``), the handover day is the day the account manager got the account, in the
business time zone; where it does not, the hub says "first seen on" and invents nothing. A later
owner change is read incrementally (one history query, only the new rows) and dates the
customer's new state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sandbox.mutate import reassign_owner
from sandbox.runner import Sandbox
from sandbox.state import HS, SF, parse_ts
from tests.e2e.hub_support import sandbox_hub
from unified_model import tables as t
from unified_model.handover import local_day
from unified_model.rules import HubRules
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e
RULES = HubRules()


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with sandbox_hub(tmp_path, monkeypatch, "demo", 7) as env:
        yield env


def _sync(instance: dg.DagsterInstance) -> None:
    from assets.definitions import build_definitions

    job = build_definitions().resolve_job_def("sync_job")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]


def _crm_assigned(sb: Sandbox, account: t.SourceAccount) -> dt.datetime | None:
    """When the sandbox's history says the account's current owner got it (None: no history)."""
    if account.source == "salesforce":
        rows = sb.state.execute(
            "SELECT created, json_extract(data, '$.NewValue') FROM records "
            "WHERE crm=? AND object='AccountHistory' AND deleted=0 "
            "AND json_extract(data, '$.AccountId')=? "
            "AND json_extract(data, '$.DataType')='EntityId' ORDER BY created DESC",
            (SF, account.source_id),
        )
        latest = rows[0] if rows else None
    else:
        versions = sb.state.history("companies", [account.source_id], ["hubspot_owner_id"])
        found = versions.get(account.source_id, {}).get("hubspot_owner_id", [])
        latest = (found[0]["timestamp"], found[0]["value"]) if found else None
    if latest is None or latest[1] != account.owner_id:
        return None
    return parse_ts(latest[0])


def test_first_seen_handovers_are_dated_by_the_owner_history(hub_env: dict[str, Any]) -> None:
    sb: Sandbox = hub_env["sandbox"]
    store = HubStore(hub_env["db_url"])
    with dg.DagsterInstance.ephemeral() as instance:
        _sync(instance)
        accounts = store.live(t.SourceAccount)
        by_customer: dict[str, list[t.SourceAccount]] = {}
        for a in accounts:
            by_customer.setdefault(a.customer_id or "", []).append(a)
        dated = {"salesforce": 0, "hubspot": 0}
        unknown = 0
        for h in store.all(t.HandoverState):
            basis = (h.date_basis or {}).get("handed_over_on")
            if basis == "crm_history":
                # the day the CRM's history names for one of the customer's accounts
                days = {
                    local_day(when, RULES)
                    for a in by_customer[h.customer_id]
                    if (when := _crm_assigned(sb, a)) is not None
                }
                assert local_day(h.handed_over_on, RULES) in days, h.customer_id
                if h.status == "account_management":  # the summary names the date's source
                    assert "owner change in the CRM history" in (h.summary or ""), h.summary
                for a in by_customer[h.customer_id]:
                    if a.owner_assigned_at is not None:
                        dated[a.source] += 1
            elif basis == "first_seen":
                # no history dates the current owner (none kept, or the owner was set when the
                # record was created or imported): no date, and the summary says so
                assert h.handed_over_on is None
                if h.status == "account_management":
                    assert "first seen on" in (h.summary or ""), h.summary
                unknown += 1
        assert dated["salesforce"] > 0 and dated["hubspot"] > 0, dated
        assert unknown > 0

        # An owner change after go-live, through the mutator as a user would make it: the next
        # sync reads just that history (one AccountHistory query) and stores when it happened.
        account = next(
            a for a in accounts if a.source == "salesforce" and a.owner_id and a.customer_id
        )
        other = next(
            o.source_id
            for o in store.all(t.Owner)
            if o.source == "salesforce" and o.source_id != account.owner_id and not o.deleted
        )
        sb.state.advance_clock(3600)
        changed_at = sb.state.now()
        reassign_owner(sb.state, SF, "Account", account.source_id, other)
        sb.state.advance_clock(3600)
        head = sb.state.ledger_head()
        _sync(instance)
        history_queries = [
            r
            for r in sb.state.ledger(head)
            if r["crm"] == SF
            and "AccountHistory" in str(r.get("path", "")) + str(r.get("query", ""))
        ]
        (after,) = [a for a in store.live(t.SourceAccount) if a.source_id == account.source_id]
        assert after.owner_id == other and after.owner_assigned_to == other
        assert after.owner_assigned_at is not None
        assert abs((after.owner_assigned_at - changed_at).total_seconds()) < 2
        assert len(history_queries) == 1, history_queries
    store.dispose()
    assert HS  # both CRMs were read (the HubSpot dates are checked above)
