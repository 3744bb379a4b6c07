"""A HubSpot first sync through the list endpoint (the default ``first_sync_plan``) stores exactly
what a first sync through search stores, associations included, without one search; inline
association lists HubSpot cut at 100 are completed through the v4 batch read; a list pass killed
mid-way (SIGKILL between fetch and store, and between store and cursor) resumes from the list's own
``after`` token and loses nothing; the window's ``upper`` is frozen from the portal's clock at the
pass's first page, so the next sync (a search window) reads what changed during the pass and
nothing else; properties beyond one request's share are still filled in."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import ago, calls, connector, drain, link, sandbox_fixture, seed  # noqa: F401

from assets.extract import HS_KINDS
from connectors.errors import ConnectorError
from connectors.hubspot import HubSpotConfig
from connectors.records import ContactRecord, DealRecord
from sandbox.generator import generate
from sandbox.runner import Sandbox
from sandbox.state import HS, fmt_ts
from unified_model import tables as t
from unified_model.store import HubStore
from unified_model.sync import extract

ROOT = Path(__file__).resolve().parents[2]
#: Hub-clock columns (when the hub stored a row), not what the CRM said: they differ run to run.
HUB_TIME_COLUMNS = {"changed_at", "hub_fields_at"}


def _store(path: Path) -> HubStore:
    store = HubStore(f"sqlite:///{path}")
    store.migrate()
    return store


def _rows(store: HubStore, kinds: tuple[str, ...] = tuple(HS_KINDS)) -> dict[str, list[Any]]:
    """The stored HubSpot rows of every kind, without the hub-clock columns, in id order."""
    out: dict[str, list[Any]] = {}
    with store.engine.connect() as conn:
        for kind in kinds:
            table = t.SOURCE_TABLES[kind].__table__  # type: ignore[attr-defined]
            columns = [c for c in table.columns if c.name not in HUB_TIME_COLUMNS]
            query = sa.select(*columns).where(table.c.source == HS).order_by(table.c.source_id)
            out[kind] = list(conn.execute(query))
    return out


def _many_contacts(sb: Sandbox, deal: str, n: int) -> list[str]:
    """``n`` contacts linked to ``deal``, an hour old."""
    ids = [
        seed(sb.state, "contacts", {"email": f"p{i}@x.io"}, created=ago(sb, 3600)) for i in range(n)
    ]
    for contact in ids:
        link(sb.state, "deals", deal, "contacts", contact)
    return ids


def test_list_and_search_first_syncs_store_the_same_rows(sb: Sandbox, tmp_path: Path) -> None:
    generate(sb.state, "tiny", 42)
    # One deal with more contacts than HubSpot puts inline, one contact with a primary company
    # and more companies than fit inline (the primary one last by id): both cut, both completed.
    deal = seed(sb.state, "deals", {"dealname": "Big"}, created=ago(sb, 3600))
    contacts = _many_contacts(sb, deal, 130)
    companies = [
        seed(sb.state, "companies", {"name": f"co{i}"}, created=ago(sb, 3600)) for i in range(101)
    ]
    for company in companies[:100]:
        link(sb.state, "contacts", contacts[0], "companies", company)
    link(sb.state, "contacts", contacts[0], "companies", companies[100], primary=True)
    sb.state.advance_clock(120)  # every record older than the 30 s lag margin

    stored: dict[str, dict[str, list[Any]]] = {}
    paths: dict[str, list[str]] = {}
    for plan in ("list", "search"):
        store = _store(tmp_path / f"{plan}.db")
        conn = connector(sb, first_sync_plan=plan)
        head = sb.state.ledger_head()
        for kind in HS_KINDS:
            stats = extract(store, conn, kind)  # type: ignore[arg-type]
            assert stats.stopped is None
        paths[plan] = [p for _, p, _ in calls(sb, head)]
        stored[plan] = _rows(store)
        store.dispose()

    assert stored["list"] == stored["search"]
    deals = {r.source_id: r for r in stored["list"]["deal"]}
    assert len(deals) > 1 and sorted(deals[deal].contact_source_ids) == sorted(contacts)
    by_contact = {r.source_id: r for r in stored["list"]["contact"]}
    assert by_contact[contacts[0]].account_source_ids[0] == companies[100]  # primary first
    assert len(by_contact[contacts[0]].account_source_ids) == 101
    assert not [p for p in paths["list"] if p.endswith("/search")]
    # The only association reads of the list plan: the two cut records, one call each.
    assert [p for p in paths["list"] if "/associations/" in p] == [
        "/crm/v4/associations/contacts/companies/batch/read",
        "/crm/v4/associations/deals/contacts/batch/read",
    ]
    assert [p for p in paths["search"] if p.endswith("/search")]


def test_cut_inline_associations_are_completed_through_the_v4_batch_read(sb: Sandbox) -> None:
    deal = seed(sb.state, "deals", {"dealname": "Big"}, created=ago(sb, 3600))
    small = seed(sb.state, "deals", {"dealname": "Small"}, created=ago(sb, 3600))
    contacts = _many_contacts(sb, deal, 150)
    link(sb.state, "deals", small, "contacts", contacts[0])
    conn = connector(sb)
    head = sb.state.ledger_head()
    records, _, _ = drain(conn.read("deal", None))
    by_id = {r.source_id: r for r in records if isinstance(r, DealRecord)}
    assert by_id[deal].contact_ids == tuple(sorted(contacts, key=int))  # all 150, not 100
    assert by_id[small].contact_ids == (contacts[0],)
    assert calls(sb, head) == [
        ("GET", "/crm/v3/properties/deals", 200),
        ("GET", "/crm/v3/objects/deals", 200),
        # only the cut record, only the cut type (its companies were inline and complete)
        ("POST", "/crm/v4/associations/deals/contacts/batch/read", 200),
    ]


_CHILD = """
import sys
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.limiter import PortalLimiter
from unified_model.store import HubStore
from unified_model.sync import extract
url, ca, token, db = sys.argv[1:5]
config = HubSpotConfig(base_url=url, ca_bundle=ca, access_token=token, list_page_size=10,
                       association_batch_size=10)
connector = HubSpotConnector(config, limiter=PortalLimiter(10_000, 10.0, 10_000))
store = HubStore(db)
stats = extract(store, connector, "contact")
print(stats.pages, stats.upserted, flush=True)
"""


def _child(sb: Sandbox, db: str, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CRMHUB_CRASH_AT"}
    env["PYTHONPATH"] = str(ROOT)
    if crash_at:
        env["CRMHUB_CRASH_AT"] = crash_at
    info = sb.info
    return subprocess.run(
        [sys.executable, "-c", _CHILD, info.hubspot_url, info.ca_bundle, info.hs_token, db],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_list_pass_killed_mid_way_resumes_from_its_after_token_and_loses_nothing(
    sb: Sandbox, tmp_path: Path
) -> None:
    company = seed(sb.state, "companies", {"name": "Acme"}, created=ago(sb, 3600))
    ids = [
        seed(sb.state, "contacts", {"email": f"c{i}@acme.io"}, created=ago(sb, 3600))
        for i in range(45)
    ]
    for contact in ids[::2]:
        link(sb.state, "contacts", contact, "companies", company)
    reference = _store(tmp_path / "reference.db")
    reference.dispose()
    done = _child(sb, f"sqlite:///{tmp_path / 'reference.db'}", None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "45"]  # 45 contacts in pages of 10

    killed = _store(tmp_path / "killed.db")
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    # Page 3 stored, its cursor not: the restart must read page 3 again, not skip it.
    run = _child(sb, url, "extract.after_store:3")
    assert run.returncode == -signal.SIGKILL, run.stderr
    cursor = killed.get_cursor(HS, "contact")
    assert cursor is not None and cursor["in_list"]["after"] and cursor.get("upper") is None
    frozen = cursor["in_list"]["upper"]
    # Killed again on the resumed pass, after fetching its second page (nothing stored of it).
    run = _child(sb, url, "extract.after_fetch:2")
    assert run.returncode == -signal.SIGKILL, run.stderr
    head = sb.state.ledger_head()
    run = _child(sb, url, None)
    assert run.returncode == 0, run.stderr
    assert [p for _, p, _ in calls(sb, head)] == ["/crm/v3/objects/contacts"] * 2  # pages 4, 5
    final = killed.get_cursor(HS, "contact")
    assert final is not None and not final.get("in_list") and final["upper"] == frozen
    reference = HubStore(f"sqlite:///{tmp_path / 'reference.db'}")
    assert _rows(killed, ("contact",)) == _rows(reference, ("contact",))
    assert {r.source_id for r in _rows(killed, ("contact",))["contact"]} == set(ids)
    killed.dispose()
    reference.dispose()


def test_the_sync_after_a_list_first_sync_searches_and_reads_what_changed_during_it(
    sb: Sandbox,
) -> None:
    ids = [
        seed(sb.state, "contacts", {"email": f"c{i}@x.io"}, created=ago(sb, 3600)) for i in range(5)
    ]
    conn = connector(sb, list_page_size=2, association_batch_size=2)
    pages = conn.read("contact", None)
    first = next(pages)
    assert [r.source_id for r in first.records] == ids[:2]
    at_first_page = conn.usage().server_time
    assert at_first_page is not None
    # Edited while the pass runs: one already read, one not yet read.
    sb.state.advance_clock(5)
    sb.state.update(HS, "contacts", ids[0], {"firstname": "Edited"})
    sb.state.update(HS, "contacts", ids[4], {"firstname": "Later"})
    rest, cursor, _ = drain(pages)
    assert [r.source_id for r in rest] == ids[2:]
    assert isinstance(rest[-1], ContactRecord) and rest[-1].first_name == "Later"
    assert cursor is not None and cursor["in_list"] is None
    # Frozen at the first page (the portal's clock minus the 30 s lag margin), not at the end.
    assert cursor["upper"] == fmt_ts(at_first_page - dt.timedelta(seconds=30))
    assert cursor["archived_checked_at"] == cursor["upper"]

    sb.state.advance_clock(120)
    head = sb.state.ledger_head()
    changed, cursor2, _ = drain(conn.read("contact", cursor))
    # Both edits lie after the frozen upper, so the search window finds both; the one the list
    # read after its edit comes back unchanged and is dropped (``seen_recent``), the one read
    # before its edit is read again. Nothing else.
    assert [(r.source_id, r.first_name) for r in changed if isinstance(r, ContactRecord)] == [
        (ids[0], "Edited")
    ]
    assert len(changed) == 1
    assert calls(sb, head) == [
        ("POST", "/crm/v3/objects/contacts/search", 200),
        ("POST", "/crm/v4/associations/contacts/companies/batch/read", 207),  # no company
    ]
    sb.state.advance_clock(400)  # past the overlap: nothing left to re-read
    head = sb.state.ledger_head()
    nothing, _, _ = drain(conn.read("contact", cursor2))
    assert nothing == []
    assert calls(sb, head) == [("POST", "/crm/v3/objects/contacts/search", 200)]


def test_a_pass_in_progress_finishes_the_way_it_started(sb: Sandbox) -> None:
    ids = [seed(sb.state, "companies", {"name": f"n{i}"}, created=ago(sb, 3600)) for i in range(5)]
    small: dict[str, Any] = {
        "list_page_size": 2,
        "search_page_size": 2,
        "association_batch_size": 2,
    }
    listing = iter(connector(sb, first_sync_plan="list", **small).read("account", None))
    page = next(listing)  # the run ends here (the generator is dropped)
    # The setting changed between two runs: the list pass in progress still ends as a list.
    head = sb.state.ledger_head()
    rest, cursor, _ = drain(
        connector(sb, first_sync_plan="search", **small).read("account", page.cursor)
    )
    assert [r.source_id for r in page.records + rest] == ids
    assert {p for _, p, _ in calls(sb, head)} == {"/crm/v3/objects/companies"}
    assert cursor is not None and cursor["upper"] == page.cursor["in_list"]["upper"]


@pytest.mark.parametrize("plan", ["list", "search"])
def test_properties_beyond_one_request_s_share_are_filled_in(sb: Sandbox, plan: str) -> None:
    seed(
        sb.state,
        "contacts",
        {"email": "pia@acme.fi", "firstname": "Pia", "lastname": "Aho", "jobtitle": "CFO"},
        rid="201",
        created=ago(sb, 3600),
    )
    whole, _, _ = drain(connector(sb, first_sync_plan=plan).read("contact", None))
    conn = connector(sb, first_sync_plan=plan, max_properties_per_request=3)
    head = sb.state.ledger_head()
    split, _, _ = drain(conn.read("contact", None))
    assert split == whole and isinstance(split[0], ContactRecord)
    assert (split[0].first_name, split[0].last_name, split[0].title) == ("Pia", "Aho", "CFO")
    assert "/crm/v3/objects/contacts/batch/read" in [p for _, p, _ in calls(sb, head)]


def test_an_unknown_first_sync_plan_is_one_clear_line(sb: Sandbox) -> None:
    with pytest.raises(ConnectorError) as err:
        HubSpotConfig(access_token="x", first_sync_plan="bulk")  # type: ignore[arg-type]
    assert str(err.value) == (
        "HubSpot first_sync_plan must be one of list, search, got 'bulk'; fix "
        "CRMHUB_HS_FIRST_SYNC_PLAN"
    )
